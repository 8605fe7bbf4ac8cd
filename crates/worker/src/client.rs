//! The gRPC client for the manager: one lazily connected channel, with the worker's
//! credentials added to every call, plus how the worker reads a call's error.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use castanet_protocol::{AUTHORIZATION_HEADER, WORKER_ID_HEADER, WorkerServiceClient};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use crate::credentials::Credentials;
use crate::error::WorkerError;
use crate::failover::FailoverChannel;
use crate::tls::{Fingerprint, ManagerTrust, TlsConnector};

/// How long a unary call may take before it counts as failed (and is retried).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The generated client with the credentials interceptor.
pub type Api = WorkerServiceClient<InterceptedService<FailoverChannel, AuthInterceptor>>;

/// A cheap-to-clone handle on the manager connection; clones share the credentials.
#[derive(Clone)]
pub struct ManagerClient {
    api: Api,
    auth: Arc<RwLock<Option<AuthHeaders>>>,
    /// How the manager's certificate is checked (https:// only).
    trust: Option<ManagerTrust>,
    /// Which of the worker's managers calls go to.
    channel: FailoverChannel,
}

#[derive(Clone)]
struct AuthHeaders {
    worker_id: MetadataValue<Ascii>,
    authorization: MetadataValue<Ascii>,
}

/// Adds `x-castanet-worker-id` and `authorization: Bearer …` once the worker has credentials.
#[derive(Clone)]
pub struct AuthInterceptor {
    auth: Arc<RwLock<Option<AuthHeaders>>>,
}

impl Interceptor for AuthInterceptor {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let auth = self.auth.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(headers) = auth.as_ref() {
            let metadata = request.metadata_mut();
            metadata.insert(WORKER_ID_HEADER, headers.worker_id.clone());
            metadata.insert(AUTHORIZATION_HEADER, headers.authorization.clone());
        }
        Ok(request)
    }
}

impl ManagerClient {
    /// Prepares a channel to `url`; nothing connects until the first call, and a broken
    /// connection is re-established by the next call.
    #[cfg(test)]
    pub fn new(url: &str) -> Result<Self, WorkerError> {
        Self::with_trust(url, None)
    }

    /// Like [`new`](Self::new); an https:// manager's certificate is checked with `trust`
    /// (without it, the first certificate seen is trusted and pinned). `urls` may list several
    /// managers, comma-separated: managers sharing one database, of which one is active.
    pub fn with_trust(urls: &str, trust: Option<ManagerTrust>) -> Result<Self, WorkerError> {
        let https = urls.split(',').any(crate::tls::is_https);
        let trust = match trust {
            Some(trust) => Some(trust),
            None if https => Some(
                ManagerTrust::new(None, None, true)
                    .map_err(|e| WorkerError::InvalidConfig(e.to_string()))?,
            ),
            None => None,
        };
        let mut channels = Vec::new();
        for url in urls.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            channels.push((url.to_string(), channel_to(url, trust.as_ref())?));
        }
        if channels.is_empty() {
            return Err(WorkerError::InvalidConfig(
                "the manager URL is empty".into(),
            ));
        }
        let channel = FailoverChannel::new(channels);
        let auth = Arc::new(RwLock::new(None));
        let interceptor = AuthInterceptor { auth: auth.clone() };
        // A big job's input list (a Shaman checkout of many files) is one answer.
        let api = WorkerServiceClient::with_interceptor(channel.clone(), interceptor)
            .max_decoding_message_size(64 * 1024 * 1024);
        Ok(Self {
            api,
            auth,
            trust,
            channel,
        })
    }

    /// The manager URL calls go to now.
    pub fn manager_url(&self) -> &str {
        self.channel.current_url()
    }

    /// Moves on to the next manager of the list, if there are several; its URL.
    pub fn next_manager(&self) -> Option<&str> {
        self.channel.has_others().then(|| self.channel.next())
    }

    /// Uses these credentials on every following call.
    pub fn set_credentials(&self, creds: &Credentials) -> Result<(), WorkerError> {
        let invalid = |what: &str| {
            WorkerError::InvalidConfig(format!(
                "the stored {what} contains characters not allowed in gRPC metadata"
            ))
        };
        let headers = AuthHeaders {
            worker_id: creds.worker_id.parse().map_err(|_| invalid("worker_id"))?,
            authorization: format!("Bearer {}", creds.token)
                .parse()
                .map_err(|_| invalid("token"))?,
        };
        *self.auth.write().unwrap_or_else(PoisonError::into_inner) = Some(headers);
        Ok(())
    }

    /// Stops sending credentials (before registering anew).
    pub fn clear_credentials(&self) {
        *self.auth.write().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The manager certificate's pinned fingerprint (TLS only).
    pub fn pinned_fingerprint(&self) -> Option<Fingerprint> {
        self.trust.as_ref().and_then(ManagerTrust::pinned)
    }

    /// Why the manager's certificate was last refused, if it was (asked once per refusal).
    pub fn take_tls_refusal(&self) -> Option<String> {
        self.trust.as_ref().and_then(ManagerTrust::take_refusal)
    }

    /// The generated client, for one call.
    pub fn api(&self) -> Api {
        self.api.clone()
    }
}

/// A lazily connected channel to one manager.
fn channel_to(url: &str, trust: Option<&ManagerTrust>) -> Result<Channel, WorkerError> {
    let endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|e| WorkerError::InvalidConfig(format!("manager URL {url:?}: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        // Notice a vanished manager host even while the instruction stream is quiet.
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true);
    match trust.filter(|_| crate::tls::is_https(url)) {
        Some(trust) => {
            let connector =
                TlsConnector::new(trust).map_err(|e| WorkerError::InvalidConfig(e.to_string()))?;
            Ok(endpoint.connect_with_connector_lazy(connector))
        }
        None => Ok(endpoint.connect_lazy()),
    }
}

/// A request for a unary call, with the standard deadline.
pub fn unary<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.set_timeout(CALL_TIMEOUT);
    request
}

/// Whether a failed call is worth retrying later: the manager is unreachable, restarting or
/// overloaded, as opposed to having rejected the call.
pub fn is_transient(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable
            | Code::Unknown
            | Code::DeadlineExceeded
            | Code::Cancelled
            | Code::Aborted
            | Code::ResourceExhausted
            | Code::Internal
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn interceptor_adds_credentials_once_known() -> Result<(), Box<dyn std::error::Error>> {
        let client = ManagerClient::new("http://127.0.0.1:1")?;
        let mut interceptor = AuthInterceptor {
            auth: client.auth.clone(),
        };
        let bare = interceptor.call(Request::new(()))?;
        assert!(bare.metadata().get(WORKER_ID_HEADER).is_none());

        client.set_credentials(&Credentials {
            worker_id: "w-1".into(),
            token: "tok".into(),
            manager_url: String::new(),
            manager_fingerprint: None,
        })?;
        let request = interceptor.call(Request::new(()))?;
        assert_eq!(
            request
                .metadata()
                .get(WORKER_ID_HEADER)
                .map(|v| v.to_str().ok()),
            Some(Some("w-1"))
        );
        assert_eq!(
            request
                .metadata()
                .get(AUTHORIZATION_HEADER)
                .map(|v| v.to_str().ok()),
            Some(Some("Bearer tok"))
        );

        client.clear_credentials();
        assert!(
            interceptor
                .call(Request::new(()))?
                .metadata()
                .get(AUTHORIZATION_HEADER)
                .is_none()
        );
        Ok(())
    }

    #[test]
    fn transient_errors_are_told_apart_from_rejections() {
        assert!(is_transient(&Status::unavailable("connection refused")));
        assert!(!is_transient(&Status::unauthenticated("who are you")));
        assert!(!is_transient(&Status::failed_precondition("lease lost")));
    }
}
