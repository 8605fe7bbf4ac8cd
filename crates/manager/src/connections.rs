//! Serving the router on accepted connections (plain TCP here; TLS in `tls/serve.rs` uses the
//! same builder): HTTP/1.1 or HTTP/2 on each, with HTTP/2 keep-alive pings. A frozen worker
//! (SIGSTOP, a hung host) keeps its TCP connection open, since the kernel still answers; only
//! an unanswered ping shows it is gone. Its connection then closes, its instruction stream
//! ends, and the worker timeout starts counting.
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};

/// After an accept error (e.g. out of file descriptors), wait before the next accept.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(200);

/// The longest ping interval (also used when worker timeouts are off).
const MAX_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// How often an HTTP/2 connection is pinged, and how long the answer may take: a quarter of
/// the worker timeout (1 s to 15 s), so a frozen worker's connection is gone well within it.
pub fn keep_alive(worker_timeout: Duration) -> Duration {
    if worker_timeout.is_zero() {
        return MAX_KEEP_ALIVE;
    }
    (worker_timeout / 4).clamp(Duration::from_secs(1), MAX_KEEP_ALIVE)
}

/// The connection builder both the plain and the TLS listener use.
pub fn builder(keep_alive: Duration) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(keep_alive))
        .keep_alive_timeout(keep_alive);
    builder
}

/// The next connection, with TCP_NODELAY set; None once `shutdown` completes.
pub(crate) async fn accept<F: Future<Output = ()>>(
    listener: &TcpListener,
    shutdown: &mut std::pin::Pin<&mut F>,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = shutdown.as_mut() => return None,
        };
        // Instructions are small writes on long-lived streams: without TCP_NODELAY, Nagle's
        // algorithm holds each one back ~40 ms waiting for the peer's ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        return Some((tcp, remote));
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open connections finish
/// (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    keep_alive: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = builder(keep_alive);
    tokio::pin!(shutdown);
    while let Some((tcp, remote)) = accept(&listener, &mut shutdown).await {
        let service = TowerToHyperService::new(WithRemote {
            app: app.clone(),
            remote,
        });
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(tcp), service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = watched.await {
                tracing::debug!(%remote, "connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// The router with the peer's address attached, as `ConnectInfo` handlers expect.
#[derive(Clone)]
pub struct WithRemote {
    pub app: Router,
    pub remote: SocketAddr,
}

impl<B> tower::Service<Request<B>> for WithRemote
where
    Router: tower::Service<Request<B>, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = <Router as tower::Service<Request<B>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        tower::Service::<Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.remote));
        self.app.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pings_come_at_a_quarter_of_the_worker_timeout_within_bounds() {
        assert_eq!(keep_alive(Duration::from_secs(60)), Duration::from_secs(15));
        assert_eq!(keep_alive(Duration::from_secs(8)), Duration::from_secs(2));
        assert_eq!(keep_alive(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(keep_alive(Duration::ZERO), MAX_KEEP_ALIVE, "timeouts off");
    }
}
