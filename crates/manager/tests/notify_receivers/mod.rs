//! Real receivers for notification tests on loopback: an HTTP server that answers from a
//! script (or never) and records each request, and an SMTP server with STARTTLS (a
//! self-signed certificate) and AUTH PLAIN/LOGIN that records each mail.
#![allow(dead_code)]
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// The status it was answered with (0: never answered).
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .unwrap_or("")
    }
}

#[derive(Default)]
struct Log {
    /// Statuses for the next requests, in order; 200 once used up.
    plan: VecDeque<u16>,
    hang: bool,
    requests: Vec<Received>,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
    changed: Arc<Notify>,
}

impl Receiver {
    /// Answers the first requests with `plan`'s statuses, then 200.
    pub async fn answering(plan: &[u16]) -> Self {
        Self::start(plan, false).await
    }

    /// Reads every request and never answers.
    pub async fn hanging() -> Self {
        Self::start(&[], true).await
    }

    async fn start(plan: &[u16], hang: bool) -> Self {
        let log = Arc::new(Mutex::new(Log {
            plan: plan.iter().copied().collect(),
            hang,
            requests: Vec::new(),
        }));
        let changed = Arc::new(Notify::new());
        let receiver = Self {
            url: String::new(),
            log,
            changed,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let app = axum::Router::new()
            .fallback(record)
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, ..receiver }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().expect("log").requests.clone()
    }

    /// Waits until `n` requests arrived (failing after `limit`); returns them all.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "expected {n} requests within {limit:?}, got {}: {:?}",
                requests.len(),
                requests.iter().map(|r| &r.path).collect::<Vec<_>>()
            );
            let _ = tokio::time::timeout(left, changed).await;
        }
    }
}

async fn record(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, hang) = {
        let mut log = receiver.log.lock().expect("log");
        let status = if log.hang {
            0
        } else {
            log.plan.pop_front().unwrap_or(200)
        };
        log.requests.push(Received {
            path: uri.path().to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
                .collect(),
            body: body.to_vec(),
            answered: status,
        });
        (status, log.hang)
    };
    receiver.changed.notify_waiters();
    if hang {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).expect("a status")
}

/// One mail as the SMTP sink received it.
#[derive(Clone, Debug, Default)]
pub struct Mail {
    /// Whether STARTTLS came before the mail.
    pub tls: bool,
    /// User and password from AUTH.
    pub auth: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    /// The sink's self-signed certificate, to trust.
    pub cert_pem: String,
    mails: Arc<Mutex<Vec<Mail>>>,
    changed: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
            .expect("a certificate");
        let cert_der = certified.cert.der().clone();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let sink = Self {
            port: listener.local_addr().expect("address").port(),
            cert_pem: certified.cert.pem(),
            mails: Arc::default(),
            changed: Arc::default(),
        };
        let serving = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = serving.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let mut mail = Mail::default();
                    let mut plain = BufReader::new(stream);
                    if let Ok(Step::StartTls) = converse(&mut plain, &mut mail, false).await {
                        let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                            return;
                        };
                        mail.tls = true;
                        let _ = converse(&mut BufReader::new(tls), &mut mail, true).await;
                    }
                    if !mail.data.is_empty() {
                        sink.mails.lock().expect("mails").push(mail);
                        sink.changed.notify_waiters();
                    }
                });
            }
        });
        sink
    }

    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            let mails = self.mails.lock().expect("mails").clone();
            if mails.len() >= n {
                return mails;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "expected {n} mails within {limit:?}");
            let _ = tokio::time::timeout(left, changed).await;
        }
    }
}

enum Step {
    StartTls,
    Done,
}

/// One SMTP conversation until QUIT (or STARTTLS, on a plain connection).
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    mail: &mut Mail,
    tls: bool,
) -> std::io::Result<Step> {
    if !tls {
        stream.write_all(b"220 sink ESMTP\r\n").await?;
    }
    loop {
        let line = read_line(stream).await?;
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            if tls {
                "250-sink\r\n250 AUTH PLAIN LOGIN\r\n".into()
            } else {
                "250-sink\r\n250 STARTTLS\r\n".into()
            }
        } else if upper == "STARTTLS" && !tls {
            stream.write_all(b"220 go ahead\r\n").await?;
            return Ok(Step::StartTls);
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = match line.split_whitespace().nth(2) {
                Some(arg) => arg.to_string(),
                None => {
                    stream.write_all(b"334 \r\n").await?;
                    read_line(stream).await?
                }
            };
            let decoded = base64_decode(&encoded);
            let parts: Vec<&[u8]> = decoded.split(|b| *b == 0).collect();
            if parts.len() == 3 {
                let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
                mail.auth = Some((text(parts[1]), text(parts[2])));
            }
            "235 ok\r\n".into()
        } else if upper.starts_with("AUTH LOGIN") {
            stream.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
            let user = base64_decode(&read_line(stream).await?);
            stream.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let password = base64_decode(&read_line(stream).await?);
            mail.auth = Some((
                String::from_utf8_lossy(&user).into(),
                String::from_utf8_lossy(&password).into(),
            ));
            "235 ok\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail.from = line[10..].trim().to_string();
            "250 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            mail.to.push(line[8..].trim().to_string());
            "250 ok\r\n".into()
        } else if upper == "DATA" {
            stream.write_all(b"354 end with .\r\n").await?;
            loop {
                let line = read_line(stream).await?;
                if line == "." {
                    break;
                }
                mail.data.push_str(&line);
                mail.data.push('\n');
            }
            "250 queued\r\n".into()
        } else if upper == "QUIT" {
            stream.write_all(b"221 bye\r\n").await?;
            return Ok(Step::Done);
        } else {
            "250 ok\r\n".into()
        };
        stream.write_all(reply.as_bytes()).await?;
    }
}

async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
) -> std::io::Result<String> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.trim().bytes().take_while(|b| *b != b'=') {
        let Some(value) = ALPHABET.iter().position(|a| *a == byte) else {
            continue;
        };
        bits = (bits << 6) | value as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}
