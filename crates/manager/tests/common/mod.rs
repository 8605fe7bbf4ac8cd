//! A real manager on loopback with its own SQLite file and storage, for tests. With
//! `CASTANET_TEST_POSTGRES` set (a PostgreSQL server's URL; `cargo xtask test` starts one),
//! each manager gets a new database on that server instead.
#![allow(dead_code)]
use std::time::{Duration, Instant};

use castanet_manager::{ManagerConfig, RunningManager};
use castanet_protocol::WorkerServiceClient;
use castanet_protocol::v1;
use serde_json::{Value, json};
use tonic::transport::Channel;

pub struct TestManager {
    pub manager: RunningManager,
    pub url: String,
    pub secret: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

/// Starts a manager in `dir` whose config `tweak` adjusts (failure limits, timeouts).
pub async fn start_configured(
    dir: tempfile::TempDir,
    tweak: impl FnOnce(&mut ManagerConfig),
) -> TestManager {
    let mut config = ManagerConfig::new_default(dir.path());
    config.listen = "127.0.0.1:0".into();
    config.registration_secret = "test-secret".into();
    // Retried at once, as in Flamenco, unless a test turns the backoff on.
    config.retries.backoff_base_seconds = 0;
    if let Some(url) = postgres_database_for(dir.path()).await {
        config.database = url.into();
    }
    tweak(&mut config);
    let manager = castanet_manager::start(config)
        .await
        .expect("manager starts");
    TestManager {
        url: format!("http://{}", manager.addr),
        manager,
        secret: "test-secret".into(),
        http: reqwest::Client::new(),
        dir,
    }
}

/// The database of the manager kept in `dir` on the test PostgreSQL server, when one is
/// configured: a new one the first time, the same one when the manager restarts in `dir`.
pub async fn postgres_database_for(dir: &std::path::Path) -> Option<String> {
    let remembered = dir.join("postgres-database-url");
    if let Ok(url) = std::fs::read_to_string(&remembered) {
        return Some(url);
    }
    let url = postgres_database().await?;
    std::fs::write(&remembered, &url).expect("the test database's URL is kept");
    Some(url)
}

/// The database of the test manager kept in `dir`: its PostgreSQL database when the tests
/// run on PostgreSQL, else its SQLite file.
pub fn database_in(dir: &std::path::Path) -> castanet_manager::store::DatabaseLocation {
    use castanet_manager::store::DatabaseLocation;
    match std::fs::read_to_string(dir.join("postgres-database-url")) {
        Ok(url) => DatabaseLocation::Postgres(url),
        Err(_) => DatabaseLocation::Sqlite(dir.join("castanet-manager.sqlite")),
    }
}

/// Runs one statement on `database` behind the manager's back (no manager may be running
/// on it): what a hand edit or the passing of time would leave. Returns the rows changed.
pub async fn execute_on(database: &castanet_manager::store::DatabaseLocation, sql: &str) -> u64 {
    use castanet_manager::store::DatabaseLocation;
    use sqlx::Connection;
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    match database {
        DatabaseLocation::Sqlite(file) => {
            let url = format!("sqlite://{}", file.display());
            let mut db = sqlx::SqliteConnection::connect(&url)
                .await
                .expect("connects");
            let done = sqlx::query(sql).execute(&mut db).await.expect("executed");
            db.close().await.expect("closes");
            done.rows_affected()
        }
        DatabaseLocation::Postgres(url) => {
            let mut db = sqlx::PgConnection::connect(url).await.expect("connects");
            let done = sqlx::query(sql).execute(&mut db).await.expect("executed");
            db.close().await.expect("closes");
            done.rows_affected()
        }
    }
}

/// A new, empty database on the test PostgreSQL server, when one is configured.
pub async fn postgres_database() -> Option<String> {
    let server = std::env::var("CASTANET_TEST_POSTGRES").ok()?;
    let name = format!("castanet_test_{}", uuid::Uuid::new_v4().simple());
    let url = castanet_manager::store::create_postgres_database(&server, &name)
        .await
        .expect("a test database is created on CASTANET_TEST_POSTGRES");
    Some(url)
}

pub async fn start_in(dir: tempfile::TempDir) -> TestManager {
    start_configured(dir, |_| {}).await
}

pub async fn start() -> TestManager {
    start_in(tempfile::tempdir().expect("temp dir")).await
}

/// Starts a manager whose database is the file `database` (e.g. on a small tmpfs).
pub async fn start_with_database(database: std::path::PathBuf) -> TestManager {
    start_configured(tempfile::tempdir().expect("temp dir"), |config| {
        config.database = database;
    })
    .await
}

impl TestManager {
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// The body of `GET path` as text (metrics, task logs).
    pub async fn text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("a text body")
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .expect("POST");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, &body.to_string()).await
    }

    pub async fn grpc(&self) -> WorkerServiceClient<Channel> {
        WorkerServiceClient::connect(self.url.clone())
            .await
            .expect("gRPC connects")
    }

    /// Registers a worker; returns (id, token).
    pub async fn register(&self, name: &str) -> (String, String) {
        let answer = self
            .grpc()
            .await
            .register(v1::RegisterRequest {
                registration_secret: self.secret.clone(),
                name: name.into(),
                platform: "linux".into(),
            })
            .await
            .expect("registers")
            .into_inner();
        (answer.worker_id, answer.token)
    }

    /// Polls a job until `done` says so, failing after `limit`.
    pub async fn wait_for_job(
        &self,
        id: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let (_, job) = self.get(&format!("/api/v3/jobs/{id}")).await;
            if done(&job) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job did not reach the expected state in {limit:?}: {job}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An echo-sleep-test submission with `repeats` sleep tasks.
pub fn echo_sleep_job(repeats: i64, seconds: i64) -> Value {
    json!({
        "name": "test job",
        "type": "echo-sleep-test",
        "priority": 50,
        "submitter_platform": "linux",
        "settings": { "message": "hello farm", "sleep_duration_seconds": seconds, "sleep_repeats": repeats },
        "metadata": { "project": "tests" },
    })
}

/// A simple-blender-render submission of `frames`, one frame per task.
pub fn render_job(frames: &str) -> Value {
    json!({
        "name": "render", "type": "simple-blender-render", "priority": 50,
        "submitter_platform": "linux",
        "settings": {
            "frames": frames, "chunk_size": 1,
            "render_output_root": "/render", "add_path_components": 0,
            "render_output_path": "/render/test/######",
            "blendfile": "/projects/scene.blend", "fps": 25.0, "format": "PNG",
            "image_file_extension": ".png", "has_previews": false, "scene": "Scene",
        },
        "metadata": { "user.name": "ada" },
    })
}

/// Adds worker credentials to a request.
pub fn authed<T>(message: T, id: &str, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let md = request.metadata_mut();
    md.insert(
        castanet_protocol::WORKER_ID_HEADER,
        id.parse().expect("ascii"),
    );
    md.insert(
        castanet_protocol::AUTHORIZATION_HEADER,
        format!("Bearer {token}").parse().expect("ascii"),
    );
    request
}

/// A sign-on for a worker that runs `misc` tasks.
pub fn misc_sign_on(name: &str, slots: u32) -> castanet_protocol::v1::SignOnRequest {
    castanet_protocol::v1::SignOnRequest {
        name: name.into(),
        platform: "linux".into(),
        supported_task_types: vec!["misc".into()],
        slots,
        ..Default::default()
    }
}

/// A sign-on for one slot of `types`, with `ram_gib` of memory and `gpus` cards of 8 GiB.
pub fn sized_sign_on(name: &str, types: &[&str], ram_gib: u64, gpus: u32) -> v1::SignOnRequest {
    v1::SignOnRequest {
        name: name.into(),
        platform: "linux".into(),
        supported_task_types: types.iter().map(|t| t.to_string()).collect(),
        slots: 1,
        capabilities: Some(v1::Capabilities {
            cpu_cores: 4,
            ram_bytes: ram_gib * (1 << 30),
            gpus: (0..gpus)
                .map(|index| v1::Gpu {
                    name: format!("gpu {index}"),
                    vram_bytes: 8 * (1 << 30),
                    index,
                })
                .collect(),
            ..Default::default()
        }),
        software_version: "test".into(),
        can_restart: false,
        self_check_problems: Vec::new(),
        storage_mirror: String::new(),
    }
}

/// A protocol-level worker: registered, signed on, instruction stream open.
pub struct TestWorker {
    pub id: String,
    pub token: String,
    pub client: WorkerServiceClient<Channel>,
    pub stream: tonic::Streaming<v1::Instruction>,
}

impl TestManager {
    /// Registers `name`, signs it on with `sign_on` and opens its instruction stream.
    pub async fn connect(&self, sign_on: v1::SignOnRequest) -> TestWorker {
        let (id, token) = self.register(&sign_on.name).await;
        let mut client = self.grpc().await;
        client
            .sign_on(authed(sign_on, &id, &token))
            .await
            .expect("signs on");
        let stream = client
            .connect_worker(authed(v1::ConnectRequest::default(), &id, &token))
            .await
            .expect("stream opens")
            .into_inner();
        TestWorker {
            id,
            token,
            client,
            stream,
        }
    }
}

/// The next assignment on a worker's stream (within 10 s; anything else fails the test).
pub async fn next_assignment(stream: &mut tonic::Streaming<v1::Instruction>) -> v1::AssignTask {
    let message = tokio::time::timeout(std::time::Duration::from_secs(10), next_message(stream))
        .await
        .expect("an instruction within 10 s")
        .expect("stream healthy")
        .expect("stream open");
    match message.kind {
        Some(v1::instruction::Kind::AssignTask(task)) => task,
        other => panic!("expected an assignment, got {other:?}"),
    }
}

/// The next instruction on a worker's stream that is not a heartbeat (the manager sends
/// those on every open stream at its own pace, so a test may meet one anywhere).
pub async fn next_message(
    stream: &mut tonic::Streaming<v1::Instruction>,
) -> Result<Option<v1::Instruction>, tonic::Status> {
    loop {
        match stream.message().await {
            Ok(Some(message))
                if matches!(message.kind, Some(v1::instruction::Kind::Heartbeat(_))) => {}
            other => return other,
        }
    }
}

/// A real JPEG of `size` (e.g. "40x30") in `colour`, made by ffmpeg in `dir`.
pub fn jpeg(dir: &std::path::Path, colour: &str, size: &str) -> Vec<u8> {
    let path = dir.join(format!("{colour}-{size}.jpg"));
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("color=c={colour}:s={size}"))
        .args(["-frames:v", "1"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg made {}", path.display());
    std::fs::read(&path).expect("jpeg written")
}
