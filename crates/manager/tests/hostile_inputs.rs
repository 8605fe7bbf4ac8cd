//! Hand-made hostile inputs of the API fuzzing (issue 19, part 4), beyond what schemathesis
//! generates and what hostile_requests.rs covers: 50 MB bodies, deeply nested JSON, NUL and
//! invalid UTF-8 in bodies, query strings and path parameters, absurd frame ranges, and path
//! traversal (plain, URL-encoded, backslash) in every path parameter and in Shaman paths.
//! Requests go out over a raw socket so that nothing normalises them on the way (a URL
//! library resolves `%2e%2e` as `..`, and refuses invalid UTF-8).
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::TestManager;

/// What came back: status and body (JSON when it parses).
struct Answer {
    status: u16,
    body: Value,
}

/// Sends `head` (request line and headers, without the blank line) and `body` as it is;
/// with `declared_length` the Content-Length header claims that many bytes instead.
fn raw_request(
    m: &TestManager,
    head: &[u8],
    body: &[u8],
    declared_length: Option<usize>,
) -> Answer {
    let address = m.url.trim_start_matches("http://");
    let (mut stream, reader) = connect(m);
    let length = declared_length.unwrap_or(body.len());
    let mut request = head.to_vec();
    request.extend_from_slice(
        format!(
            "\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\
             Connection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    stream.write_all(&request).expect("send head");
    // The manager may answer and close before taking all of a refused body.
    let _ = stream.write_all(body);
    reader.join().expect("reader")
}

/// A connection, and a thread reading the answer while the request is still being sent:
/// a manager that answers early and closes with bytes unread resets the connection, and a
/// reset throws away whatever had not been read yet.
fn connect(m: &TestManager) -> (TcpStream, std::thread::JoinHandle<Answer>) {
    let stream = TcpStream::connect(m.url.trim_start_matches("http://")).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let reading = stream.try_clone().expect("clone");
    (stream, std::thread::spawn(move || read_answer(reading)))
}

fn read_answer(mut stream: TcpStream) -> Answer {
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    // A reset after the answer ends the read too.
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&bytes);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0); // no answer: the caller's assertion names the request
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Answer {
        status,
        body: serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    }
}

fn send(m: &TestManager, method: &str, target: &[u8], body: &[u8]) -> Answer {
    let mut head = format!("{method} ").into_bytes();
    head.extend_from_slice(target);
    head.extend_from_slice(b" HTTP/1.1");
    raw_request(m, &head, body, None)
}

/// A 4xx in the `{code, message}` shape.
fn assert_refused(answer: &Answer, what: &str) {
    assert!(
        (400..500).contains(&answer.status),
        "{what}: {} {}",
        answer.status,
        answer.body
    );
    assert_eq!(
        answer.body["code"], answer.status,
        "{what}: {}",
        answer.body
    );
    assert!(
        answer.body["message"].is_string(),
        "{what}: {}",
        answer.body
    );
}

async fn assert_alive(m: &TestManager) {
    let (status, _) = m.get("/healthz").await;
    assert_eq!(status, 200, "the manager still answers");
}

const SHA: &str = "abababababababababababababababababababababababababababababababab";

/// Operations taking a JSON body, with a field each reads (unknown fields are skipped
/// unread, as Flamenco's clients expect); `{job}` is replaced by a stored job's id.
const JSON_BODIES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v3/jobs", "name"),
    ("POST", "/api/v3/jobs/check", "name"),
    ("POST", "/api/v3/jobs/query", "order_by"),
    ("POST", "/api/v3/worker-mgt/tags", "name"),
    ("POST", "/api/v3/shaman/checkout/requirements", "files"),
    ("POST", "/api/v3/shaman/checkout/create", "checkoutPath"),
    ("POST", "/api/v3/jobs/{job}/setstatus", "status"),
    ("POST", "/api/v3/jobs/{job}/settag", "name"),
    ("DELETE", "/api/v3/jobs/mass-delete", "last_updated_max"),
    ("DELETE", "/api/v3/jobs/{job}/blocklist", "worker_id"),
];

async fn stored_job(m: &TestManager) -> String {
    let (status, job) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{job}");
    job["id"].as_str().expect("job id").to_string()
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_megabyte_bodies_are_refused_with_413_without_being_read() {
    let m = common::start().await;
    let job = stored_job(&m).await;
    const FIFTY_MB: usize = 50 * 1024 * 1024;
    // Past the 2 MiB a JSON body may have, far short of the 50 MB announced.
    let first_part = vec![b'a'; 3 * 1024 * 1024];
    for (method, path, _) in JSON_BODIES {
        let path = path.replace("{job}", &job);
        let head = format!("{method} {path} HTTP/1.1");
        let started = Instant::now();
        // Only 3 MiB of the announced 50 MB are ever sent: an answer proves the manager
        // stopped reading at its limit instead of waiting to buffer all of it.
        let answer = raw_request(&m, head.as_bytes(), &first_part, Some(FIFTY_MB));
        assert_eq!(answer.status, 413, "{method} {path}: {}", answer.body);
        assert_refused(&answer, &path);
        assert!(started.elapsed() < Duration::from_secs(5), "{path}");
    }
    // Announced as 10 bytes, the upload stops at the 11th.
    let path = format!("/api/v3/shaman/files/{SHA}/10");
    let head = format!("POST {path} HTTP/1.1");
    let answer = raw_request(&m, head.as_bytes(), &first_part, Some(FIFTY_MB));
    assert_eq!(answer.status, 417, "{}", answer.body);
    assert_refused(&answer, &path);

    // Without a length (chunked), the manager stops reading at its limit.
    let chunk = vec![b' '; 1024 * 1024];
    let address = m.url.trim_start_matches("http://");
    let (mut stream, reader) = connect(&m);
    let head = format!(
        "POST /api/v3/jobs HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("head");
    let mut sent = 0;
    while sent < FIFTY_MB {
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&frame).is_err() {
            break; // the manager answered and closed
        }
        sent += chunk.len();
    }
    assert!(sent < FIFTY_MB, "the manager read all 50 MB");
    let answer = reader.join().expect("reader");
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert_refused(&answer, "chunked 50 MB");
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["total"], 1, "nothing stored");
    assert_alive(&m).await;
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_is_a_400_not_a_stack_overflow() {
    let m = common::start().await;
    let job = stored_job(&m).await;
    let arrays = "[".repeat(100_000);
    let objects = "{\"a\":".repeat(100_000);
    let closed = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    for (method, path, field) in JSON_BODIES {
        let path = path.replace("{job}", &job);
        for value in [&arrays, &objects, &closed] {
            let body = format!("{{\"{field}\": {value}}}");
            let answer = send(&m, method, path.as_bytes(), body.as_bytes());
            assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
            assert_refused(&answer, &path);
        }
    }
    assert_alive(&m).await;
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_and_invalid_utf8_are_refused_in_bodies_queries_and_paths() {
    let m = common::start().await;
    let job = stored_job(&m).await;
    let values: [&[u8]; 3] = [b"\"a\xff\xfeb\"", b"\"a\x00b\"", b"\"\\ud800\""];
    for (method, path, field) in JSON_BODIES {
        let path = path.replace("{job}", &job);
        // Invalid UTF-8 anywhere, even in a field nobody reads, makes the body not JSON.
        let unread = b"{\"unknown\": \"\xc3\x28\"}".to_vec();
        let bodies = values
            .iter()
            .map(|value| [format!("{{\"{field}\": ").as_bytes(), value, b"}"].concat());
        for body in bodies.chain([unread]) {
            let answer = send(&m, method, path.as_bytes(), &body);
            assert_eq!(answer.status, 400, "{method} {path}: {}", answer.body);
            assert_refused(&answer, &path);
        }
    }
    let queries = [
        "/api/v3/jobs?q=%00".to_string(),
        "/api/v3/jobs?status=%ff".to_string(),
        "/api/v3/jobs?order=%00".to_string(),
        "/api/v3/jobs?limit=%ff".to_string(),
        "/api/v3/audit?before=%00".to_string(),
        format!("/api/v3/jobs/{job}/tasks/page?status=%ff%00"),
        "/api/v3/jobs/task-counts?ids=%00".to_string(),
        "/api/v3/events?job=%ff".to_string(),
    ];
    for target in &queries {
        let answer = send(&m, "GET", target.as_bytes(), b"");
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert_refused(&answer, target);
    }
    // The same bytes raw (not percent-encoded) on the request line: hyper refuses such a
    // request line itself, with a bare 400, before any handler (or the JSON error shape).
    for target in [&b"/api/v3/jobs?q=\xff"[..], b"/api/v3/jobs/\xff\xfe"] {
        let answer = send(&m, "GET", target, b"");
        assert_eq!(answer.status, 400, "{}", String::from_utf8_lossy(target));
    }
    let (_, document) = m.get("/api/v3/openapi.json").await;
    for (template, method) in path_operations(&document) {
        for value in ["%00", "%ff%fe", "a%00b"] {
            let target = fill(&template, value);
            let answer = send(&m, &method, target.as_bytes(), b"{}");
            assert_refused(&answer, &format!("{method} {target}"));
        }
    }
    assert_alive(&m).await;
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_frame_ranges_are_a_quick_400_naming_the_range() {
    let m = common::start().await;
    for frames in [
        "1-999999999",
        "1-18446744073709551616",
        "0-2147483647",
        "-5--1",
        "1-2-3",
        "999999999999999999999999999999",
    ] {
        let job = json!({
            "name": "frames", "type": "simple-blender-render", "priority": 50,
            "submitter_platform": "linux",
            "settings": {
                "frames": frames, "chunk_size": 1, "render_output_root": "/tmp/out",
                "render_output_path": "/tmp/out/frames/######", "add_path_components": 0,
                "blendfile": "/tmp/shot.blend", "format": "PNG",
                "image_file_extension": ".png", "scene": "Scene",
            },
        });
        let started = Instant::now();
        let (status, body) = m.post("/api/v3/jobs", &job).await;
        assert_eq!(status, 400, "{frames}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("frame range \"{frames}\"")),
            "{frames}: {message}"
        );
        assert!(started.elapsed() < Duration::from_secs(5), "{frames}");
    }
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["total"], 0, "nothing stored");
}

/// Every documented operation with path parameters, as (path template, METHOD).
fn path_operations(document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        if !path.contains('{') {
            continue;
        }
        for method in operations.as_object().expect("operations").keys() {
            found.push((path.clone(), method.to_ascii_uppercase()));
        }
    }
    assert!(found.len() >= 30, "{found:?}");
    found
}

/// `template` with every `{parameter}` replaced by `value`.
fn fill(template: &str, value: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                value
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Traversals as a client may spell them in a URL: plain, URL-encoded, backslash.
const URL_TRAVERSALS: &[&str] = &[
    "..%2f..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e%2fcastanet-manager.toml",
    "%2e%2e",
    "..%5c..%5cwindows%5cwin.ini",
    "..\\..\\castanet-manager.toml",
    "%2fetc%2fpasswd",
];

/// Every file under `dir`, except the database (which the requests write to).
fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path.clone());
            }
            if !path.to_string_lossy().contains(".sqlite") {
                found.insert(path);
            }
        }
    }
    found
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_in_every_path_parameter_is_a_4xx() {
    let base = tempfile::tempdir().expect("temp dir");
    let home = base.path().join("manager");
    std::fs::create_dir(&home).expect("manager dir");
    std::fs::write(base.path().join("secret.txt"), "outside").expect("outside file");
    let dir = tempfile::tempdir_in(&home).expect("manager temp dir");
    let m = common::start_in(dir).await;
    let before = files_under(base.path());
    let (_, document) = m.get("/api/v3/openapi.json").await;
    // The traversal in the last path segment too, where a catch-all (job files) reads it.
    let mut targets: Vec<(String, String)> = Vec::new();
    for (template, method) in path_operations(&document) {
        for traversal in URL_TRAVERSALS {
            targets.push((method.clone(), fill(&template, traversal)));
        }
    }
    for plain in [
        "/job-files/../../secret.txt",
        "/job-files/..\\..\\secret.txt",
    ] {
        targets.push(("GET".to_string(), plain.to_string()));
    }
    for (method, target) in &targets {
        let answer = send(&m, method, target.as_bytes(), b"{}");
        assert_refused(&answer, &format!("{method} {target}"));
        assert!(
            !answer.body.to_string().contains("outside"),
            "{target} read a file outside the storage root"
        );
    }
    let after = files_under(base.path());
    let written: Vec<&PathBuf> = after.difference(&before).collect();
    let storage = m.manager.state.config.storage_path();
    assert!(
        written.iter().all(|p| p.starts_with(&storage)),
        "written outside the storage root: {written:?}"
    );
    assert_alive(&m).await;
}

/// Whether the Shaman must refuse `path`: a backslash, a drive colon, a NUL or a `..`
/// component. Percent signs are plain characters in a JSON body, so `%2e%2e` is a name.
fn escapes(path: &str) -> bool {
    path.contains(['\\', ':', '\0']) || path.split('/').any(|part| part == "..")
}

// Multi-threaded: the raw requests block their thread while the manager answers on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_in_shaman_paths_is_refused_and_writes_nothing() {
    let m = common::start().await;
    let shaman = m.manager.state.shaman.clone().expect("Shaman is on");
    let checkout_root = shaman.checkout_root();
    let content = b"abc".to_vec();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content));
    let uploaded = m
        .http
        .post(format!("{}/api/v3/shaman/files/{sha}/3", m.url))
        .body(content)
        .send()
        .await
        .expect("upload");
    assert!(uploaded.status().is_success(), "{}", uploaded.status());
    let before = files_under(m.dir.path());
    let spec = |path: &str| json!({ "sha": sha, "size": 3, "path": path });
    // shaman.rs covers "../x", "/abs" and "a/../../x"; these are the other spellings, in
    // checkout paths and in file paths.
    let spellings = [
        "..\\..\\outside",
        "sub\\..\\..\\outside",
        "C:\\outside",
        "./../outside",
        "sub/./../../outside",
        "a\u{0}b",
        "..%2f..%2foutside",
        "%2e%2e/%2e%2e/outside",
    ];
    for (n, spelling) in spellings.iter().enumerate() {
        let bodies = [
            json!({ "files": [spec(spelling)], "checkoutPath": format!("fine-{n}") }),
            json!({ "files": [spec("fine.blend")], "checkoutPath": spelling }),
        ];
        for body in bodies {
            let (status, answer) = m.post("/api/v3/shaman/checkout/create", &body).await;
            if escapes(spelling) {
                assert_eq!(status, 400, "{body}: {answer}");
                assert_eq!(answer["code"], 400, "{answer}");
            } else {
                assert_eq!(status, 200, "a plain name: {body}: {answer}");
            }
            let files = json!({ "files": body["files"] });
            let (status, answer) = m.post("/api/v3/shaman/checkout/requirements", &files).await;
            let want = if escapes(spelling) && body["checkoutPath"].as_str() != Some(spelling) {
                400
            } else {
                200
            };
            assert_eq!(status, want, "{files}: {answer}");
        }
    }
    let after = files_under(m.dir.path());
    let written: Vec<&PathBuf> = after.difference(&before).collect();
    assert!(!written.is_empty(), "the plain names were checked out");
    // The Shaman's shared storage: its checkouts and file store.
    let shared = checkout_root.parent().expect("shared storage");
    assert!(
        written.iter().all(|p| p.starts_with(shared)),
        "written outside the shared storage: {written:?}"
    );
    assert_alive(&m).await;
}
