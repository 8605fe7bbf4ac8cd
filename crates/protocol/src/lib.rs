//! Castanet's worker protocol (proto/castanet/v1), generated at build time, plus the
//! names and helpers both sides share.

/// Generated messages and services of `castanet.v1`.
pub mod v1 {
    tonic::include_proto!("castanet.v1");
}

/// Content hashes (SHA-256 of files), the same on both sides.
pub mod content;
/// File system helpers: free space, and removing leftover partial transfers.
pub mod disk;
/// Mirror paths: how workers without shared storage name the farm's files.
pub mod mirror;
/// The one command-line splitting rule, shared by the job compiler and the worker.
pub mod shell;

pub use v1::worker_service_client::WorkerServiceClient;
pub use v1::worker_service_server::{WorkerService, WorkerServiceServer};

/// Metadata key carrying the worker's UUID on every call after Register.
pub const WORKER_ID_HEADER: &str = "x-castanet-worker-id";
/// Metadata key carrying `Bearer <token>`.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// The largest instruction a worker decodes (tonic's default, which the worker keeps): the
/// manager refuses tasks that could not fit rather than handing them out forever.
pub const MAX_INSTRUCTION_BYTES: usize = 4 * 1024 * 1024;

/// Status names as the REST API and the database spell them.
impl v1::WorkerStatus {
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::Starting => "starting",
            Self::Awake => "awake",
            Self::Asleep => "asleep",
            Self::Error => "error",
            Self::Testing => "testing",
            Self::Offline => "offline",
            Self::Restart => "restart",
        }
    }

    pub fn from_api_name(name: &str) -> Option<Self> {
        Some(match name {
            "starting" => Self::Starting,
            "awake" => Self::Awake,
            "asleep" => Self::Asleep,
            "error" => Self::Error,
            "testing" => Self::Testing,
            "offline" => Self::Offline,
            "restart" => Self::Restart,
            _ => return None,
        })
    }
}

impl v1::FaultClass {
    /// The fault class as the REST API and CLI show it.
    pub fn api_name(self) -> &'static str {
        match self {
            Self::Unspecified => "",
            Self::MissingInput => "missing-input",
            Self::MissingExecutable => "missing-executable",
            Self::DiskFull => "disk-full",
            Self::CodecError => "codec-error",
            Self::Timeout => "timeout",
            Self::Hung => "hung",
            Self::Crashed => "crashed",
            Self::Canceled => "canceled",
            Self::NonzeroExit => "nonzero-exit",
            Self::InvalidCommand => "invalid-command",
            Self::MissingOutput => "missing-output",
            Self::OutputUnwritable => "output-unwritable",
            Self::SelfCheck => "self-check",
        }
    }
}
