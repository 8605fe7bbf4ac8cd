//! How a worker run ended, and the process exit code for each ending: a supervisor
//! (systemd's `Restart=on-failure` with `RestartForceExitStatus=`) restarts the worker
//! after a requested restart but leaves it stopped after a requested `offline`.

/// Exit code of a worker the manager asked to restart (BSD's EX_TEMPFAIL: "try again").
pub const RESTART_EXIT_CODE: u8 = 75;

/// Why the worker stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// Its shutdown token fired (a signal, or the embedding program).
    Stopped,
    /// The manager sent it `offline`: exit 0, stay stopped.
    Offline,
    /// The manager sent it `restart`: exit with [`RESTART_EXIT_CODE`].
    Restart,
}

impl WorkerExit {
    /// The process exit code for this ending.
    pub fn exit_code(self) -> u8 {
        match self {
            WorkerExit::Stopped | WorkerExit::Offline => 0,
            WorkerExit::Restart => RESTART_EXIT_CODE,
        }
    }
}
