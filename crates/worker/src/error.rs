//! The errors `castanet_worker::run` can end with.

use std::path::PathBuf;

/// Why the worker stopped with an error (a clean shutdown is `Ok`).
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The configuration cannot work (bad URL, zero slots, ...).
    #[error("invalid worker configuration: {0}")]
    InvalidConfig(String),
    /// The worker must register but was given no secret.
    #[error(
        "no registration secret: pass --registration-secret or set CASTANET_REGISTRATION_SECRET"
    )]
    NoRegistrationSecret,
    /// The manager refused the registration (usually a wrong secret).
    #[error("the manager refused to register this worker: {0}")]
    RegistrationRejected(String),
    /// The manager rejected a call in a way retrying cannot fix.
    #[error("the manager rejected {call}: {status}")]
    Rejected {
        call: &'static str,
        status: Box<tonic::Status>,
    },
    /// The manager's TLS certificate is not the trusted one (changed, unknown, or not
    /// signed by the configured CA); retrying cannot fix that.
    #[error("refusing the manager: {0}")]
    ManagerCertificate(String),
    /// Reading or writing the credentials file failed.
    #[error("credentials file {path}: {source}")]
    Credentials {
        path: PathBuf,
        #[source]
        source: crate::credentials::CredentialsError,
    },
}

impl WorkerError {
    pub(crate) fn rejected(call: &'static str, status: tonic::Status) -> Self {
        Self::Rejected {
            call,
            status: Box::new(status),
        }
    }
}
