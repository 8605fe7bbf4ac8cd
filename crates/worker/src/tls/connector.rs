//! The TLS transport under the worker's gRPC channel: TCP, then a handshake checked by
//! [`ManagerTrust`](super::ManagerTrust).
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::transport::Uri;

use super::{ManagerTrust, TrustError};

/// Connects to `https://host:port` URIs; cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    connector: tokio_rustls::TlsConnector,
}

impl TlsConnector {
    pub fn new(trust: &ManagerTrust) -> Result<Self, TrustError> {
        // gRPC is HTTP/2.
        let config = trust.client_config(&[b"h2"])?;
        Ok(Self {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

impl tower::Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.connector.clone();
        Box::pin(async move {
            let invalid = |what: &str| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} in {uri}"))
            };
            let host = uri.host().ok_or_else(|| invalid("no host"))?;
            // An IPv6 literal keeps its brackets in the URI.
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let server_name =
                ServerName::try_from(host.clone()).map_err(|_| invalid("an invalid host name"))?;
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            // Small instruction and update messages must not wait for Nagle's algorithm.
            tcp.set_nodelay(true)?;
            let stream = connector.connect(server_name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}
