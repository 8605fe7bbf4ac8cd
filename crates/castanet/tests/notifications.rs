//! Notifications through the real binaries: a rule from the config file, a job run by a
//! real `castanet worker`, the signed webhook delivered (after a 500) to a receiver on
//! loopback; and `castanet notifications list|add|test|deliveries|remove`.
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Api, ManagerProcess, WorkerProcess, cli, completed};
use hmac::{Hmac, Mac};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request the receiver got: path, headers (lower-case names), body.
#[derive(Clone, Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// A minimal HTTP/1.1 receiver: answers the first request 500, every later one 200.
async fn receiver() -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let log: Arc<Mutex<Vec<Received>>> = Arc::default();
    let received = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut data = Vec::new();
            let mut buffer = [0u8; 4096];
            let (head_end, length) = loop {
                let Ok(n) = stream.read(&mut buffer).await else {
                    break (0, 0);
                };
                if n == 0 {
                    break (0, 0);
                }
                data.extend_from_slice(&buffer[..n]);
                if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (end + 4, length);
                }
            };
            if head_end == 0 {
                continue;
            }
            while data.len() < head_end + length {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buffer[..n]),
                }
            }
            let head = String::from_utf8_lossy(&data[..head_end]).to_string();
            let mut lines = head.lines();
            let path = lines
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .unwrap_or("")
                .to_string();
            let headers = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let status = {
                let mut log = log.lock().unwrap();
                log.push(Received {
                    path,
                    headers,
                    body: data[head_end..].to_vec(),
                });
                if log.len() == 1 {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                }
            };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = stream.write_all(answer.as_bytes()).await;
        }
    });
    (url, received)
}

async fn wait_requests(log: &Arc<Mutex<Vec<Received>>>, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let requests = log.lock().unwrap().clone();
        if requests.len() >= n {
            return requests;
        }
        assert!(
            Instant::now() < deadline,
            "{n} requests expected: {requests:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn run_cli(url: &str, args: &[&str]) -> String {
    let url = url.to_string();
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        cli(&url, &args)
    })
    .await
    .unwrap();
    assert!(ok, "castanet {args:?} failed: {err}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_rule_delivers_a_signed_webhook_for_a_job_run_by_a_real_worker() {
    let (url, log) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        format!(
            "registration_secret = \"e2e-secret\"\n\
             [notify]\nfirst_retry_seconds = 0.1\n\
             [[notifications]]\nname = \"pipeline\"\nkind = \"webhook\"\n\
             events = [\"job-completed\"]\nurl = \"{url}/castanet\"\nsecret = \"hook-key\"\n"
        ),
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let api = Api::new(&manager.url);
    let worker = WorkerProcess::start(&manager, &dir.path().join("w"), "w", 1);
    let job = api.submit_echo_sleep(1, 0).await;
    api.wait_for_job(&job, Duration::from_secs(60), completed)
        .await;

    let requests = wait_requests(&log, 2).await;
    assert_eq!(
        requests[0].header("x-castanet-delivery"),
        requests[1].header("x-castanet-delivery")
    );
    for request in &requests {
        assert_eq!(request.path, "/castanet");
        assert_eq!(request.header("x-castanet-event"), "job-completed");
        let signature = request.header("x-castanet-signature");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"hook-key").unwrap();
        mac.update(&request.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature, expected);
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["job"]["id"], job.as_str());
        assert_eq!(body["job"]["status"], "completed");
    }

    let listed = run_cli(&manager.url, &["notifications", "list"]).await;
    assert!(
        listed.contains("config-1") && listed.contains("pipeline"),
        "{listed}"
    );
    // The attempt is recorded just after the receiver answered.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = run_cli(
            &manager.url,
            &["notifications", "deliveries", "--status", "delivered"],
        )
        .await;
        if shown.contains(&job) {
            break;
        }
        assert!(Instant::now() < deadline, "no delivered row: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let added = run_cli(
        &manager.url,
        &[
            "notifications",
            "add",
            "--name",
            "chat",
            "--kind",
            "slack",
            "--event",
            "job-failed",
            "--url",
            &format!("{url}/slack"),
        ],
    )
    .await;
    let id = added
        .split(['(', ')'])
        .nth(1)
        .unwrap_or_else(|| panic!("an id in {added}"))
        .to_string();
    run_cli(&manager.url, &["notifications", "test", &id]).await;
    let requests = wait_requests(&log, 3).await;
    assert_eq!(requests[2].path, "/slack");
    let text: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert!(
        text["text"].as_str().unwrap().contains("Test notification"),
        "{text}"
    );
    run_cli(&manager.url, &["notifications", "remove", &id]).await;
    let listed = run_cli(&manager.url, &["notifications", "list"]).await;
    assert!(!listed.contains(&id), "{listed}");
    worker.stop();
    manager.stop();
}
