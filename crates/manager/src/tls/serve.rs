//! Serving the manager's router over TLS: accept, handshake, then HTTP/1.1 or HTTP/2
//! (gRPC) on each connection, with a graceful shutdown like `axum::serve`'s.
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::connections::{WithRemote, accept, builder};

/// A client that opens a connection and never finishes the handshake is dropped after this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of every TLS connection: a handshake record.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// How long a plain-HTTP client gets to read the "use https" answer before the close.
const PLAIN_HTTP_LINGER: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` over TLS until `shutdown` completes, then lets open
/// connections finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Router,
    keep_alive: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = builder(keep_alive);
    tokio::pin!(shutdown);
    while let Some((tcp, remote)) = accept(&listener, &mut shutdown).await {
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(WithRemote {
            app: app.clone(),
            remote,
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let mut first = [0u8; 1];
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first)).await {
                Ok(Ok(1)) if first[0] != TLS_HANDSHAKE_RECORD => {
                    tell_plain_http_client_to_use_https(tcp, remote).await;
                    return;
                }
                Ok(Ok(1)) => {}
                _ => return,
            }
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    // Usually a client that does not trust the certificate: its side says why.
                    tracing::debug!(%remote, "TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%remote, "TLS handshake timed out");
                    return;
                }
            };
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%remote, "connection ended with an error: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers a plain-HTTP request on the TLS port with a 400 saying to use https, instead of
/// a failed handshake the client would report as a broken connection. (A worker speaking
/// plain HTTP/2 cannot read this; it sees the connection close.)
async fn tell_plain_http_client_to_use_https(mut tcp: TcpStream, remote: SocketAddr) {
    tracing::debug!(%remote, "plain HTTP on the TLS port; answering with a hint to use https");
    let body = r#"{"code":400,"message":"this manager serves HTTPS: use https:// in its URL (and pass --manager-fingerprint or --manager-ca)"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    let mut request = [0u8; 8192];
    let answered = async {
        // Read the request first: closing with unread data would reset the connection
        // before the client reads the answer.
        let _ = tcp.read(&mut request).await?;
        tcp.write_all(response.as_bytes()).await?;
        tcp.shutdown().await?;
        while tcp.read(&mut request).await? > 0 {}
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(PLAIN_HTTP_LINGER, answered).await;
}
