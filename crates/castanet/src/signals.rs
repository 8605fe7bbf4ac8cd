//! Waiting for Ctrl-C or SIGTERM, the two ways a service is asked to stop.
//!
//! The handlers are installed when `StopSignals::install` is called, not when the wait is
//! first polled: a process that prints "listening" and is then sent SIGTERM straight away
//! must stop cleanly, not die of the default action.

pub struct StopSignals {
    #[cfg(unix)]
    handlers: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    /// Installs the handlers now; a signal that arrives before `requested` is awaited is kept.
    pub fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let handlers = match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
                (Ok(term), Ok(interrupt)) => Some((term, interrupt)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(
                        "cannot listen for SIGTERM ({e}); only Ctrl-C stops this process"
                    );
                    None
                }
            };
            Self { handlers }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Completes when the process is asked to stop.
    pub async fn requested(&mut self) {
        #[cfg(unix)]
        if let Some((term, interrupt)) = &mut self.handlers {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}
