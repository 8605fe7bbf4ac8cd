//! Real `castanet` processes on loopback: a manager and workers, started, stopped with
//! signals and killed, for end-to-end tests.
#![allow(dead_code)]
pub mod farm_net;
pub mod full_disk;
pub mod markers;
pub mod postgres;
pub mod render_jobs;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_castanet");

/// Runs `castanet --manager MANAGER ARGS…` as a user would; (succeeded, stdout, stderr).
pub fn cli(manager: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg("--manager")
        .arg(manager)
        .args(args)
        .env("CASTANET_LOG", "warn")
        .output()
        .expect("castanet runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Sends a signal to a child process.
pub fn signal(child: &Child, signal: i32) {
    // SAFETY: kill() only sends a signal to a pid we spawned and have not reaped yet.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
}

/// Waits for a child to exit, failing the test after `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit within {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub struct ManagerProcess {
    pub child: Child,
    pub url: String,
    pub secret: String,
    pub config: PathBuf,
}

impl ManagerProcess {
    /// Starts `castanet manager` with its config in `dir`, on `listen`.
    pub fn start(dir: &Path, listen: &str) -> Self {
        Self::start_wrapped(dir, listen, &[])
    }

    /// Like `start`, through `wrapper` (e.g. `ip netns exec NS`), which must exec the
    /// manager so that signals reach it.
    pub fn start_wrapped(dir: &Path, listen: &str, wrapper: &[&str]) -> Self {
        let config = dir.join("castanet-manager.toml");
        let mut command = match wrapper.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(BIN);
                command
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args(["manager", "--config"])
            .arg(&config)
            .args(["--listen", listen])
            .env("CASTANET_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("manager starts");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = received
                .recv_timeout(left)
                .expect("manager prints its address");
            if let Some(url) = line.strip_prefix("castanet manager listening on ") {
                break url.trim().to_string();
            }
        };
        let text = std::fs::read_to_string(&config).expect("config written");
        let table: toml::Table = toml::from_str(&text).expect("config parses");
        let secret = table["registration_secret"]
            .as_str()
            .expect("secret")
            .to_string();
        Self {
            child,
            url,
            secret,
            config,
        }
    }

    /// SIGTERM, and the process must exit cleanly.
    pub fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let status = wait_exit(&mut self.child, Duration::from_secs(20));
        assert!(status.success(), "manager exited with {status}");
    }

    /// "127.0.0.1:port" of this manager.
    pub fn listen_address(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

pub struct WorkerProcess {
    pub child: Child,
    pub name: String,
}

impl WorkerProcess {
    pub fn start(manager: &ManagerProcess, data_dir: &Path, name: &str, slots: u32) -> Self {
        Self::start_with(&manager.url, &manager.secret, data_dir, name, slots)
    }

    pub fn start_with(url: &str, secret: &str, data_dir: &Path, name: &str, slots: u32) -> Self {
        Self::start_with_env(url, secret, data_dir, name, slots, &[])
    }

    /// Starts a worker with extra environment variables (e.g. a `PATH` without Blender).
    pub fn start_with_env(
        url: &str,
        secret: &str,
        data_dir: &Path,
        name: &str,
        slots: u32,
        env: &[(&str, &OsStr)],
    ) -> Self {
        let mut command = Command::new(BIN);
        command.arg("worker");
        Self::spawn(command, url, secret, data_dir, name, slots, env)
    }

    /// Starts a worker with extra command-line options (e.g. `--storage-root DIR`).
    pub fn start_with_args(
        manager: &ManagerProcess,
        data_dir: &Path,
        name: &str,
        slots: u32,
        args: &[&OsStr],
    ) -> Self {
        let mut command = Command::new(BIN);
        command.arg("worker").args(args);
        Self::spawn(
            command,
            &manager.url,
            &manager.secret,
            data_dir,
            name,
            slots,
            &[],
        )
    }

    /// Starts a worker through `wrapper` (a program and its arguments, the worker's command
    /// line appended), e.g. `unshare` for a mount namespace of its own. The wrapper must
    /// exec the worker, so that signals to the child reach the worker itself.
    pub fn start_wrapped(
        manager: &ManagerProcess,
        data_dir: &Path,
        name: &str,
        slots: u32,
        wrapper: &[&OsStr],
    ) -> Self {
        Self::start_wrapped_at(
            &manager.url,
            &manager.secret,
            data_dir,
            name,
            slots,
            wrapper,
        )
    }

    /// A worker for the manager at `url`, started through `wrapper` (which must exec it).
    pub fn start_wrapped_at<S: AsRef<OsStr>>(
        url: &str,
        secret: &str,
        data_dir: &Path,
        name: &str,
        slots: u32,
        wrapper: &[S],
    ) -> Self {
        Self::start_wrapped_with_args(url, secret, data_dir, name, slots, wrapper, &[])
    }

    /// [`start_wrapped_at`](Self::start_wrapped_at) with more `castanet worker` options.
    pub fn start_wrapped_with_args<S: AsRef<OsStr>>(
        url: &str,
        secret: &str,
        data_dir: &Path,
        name: &str,
        slots: u32,
        wrapper: &[S],
        extra_args: &[&str],
    ) -> Self {
        let (program, args) = wrapper.split_first().expect("a wrapper program");
        let mut command = Command::new(program);
        command.args(args).arg(BIN).arg("worker").args(extra_args);
        Self::spawn(command, url, secret, data_dir, name, slots, &[])
    }

    /// `command` holds the program and `worker` (and any options); the rest is added here.
    fn spawn(
        mut command: Command,
        url: &str,
        secret: &str,
        data_dir: &Path,
        name: &str,
        slots: u32,
        env: &[(&str, &OsStr)],
    ) -> Self {
        let child = command
            .args([
                "--manager",
                url,
                "--name",
                name,
                "--slots",
                &slots.to_string(),
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("CASTANET_REGISTRATION_SECRET", secret)
            .env("CASTANET_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("worker starts");
        Self {
            child,
            name: name.to_string(),
        }
    }

    pub fn stop(mut self) {
        signal(&self.child, libc::SIGTERM);
        let status = wait_exit(&mut self.child, Duration::from_secs(20));
        assert!(
            status.success(),
            "worker {} exited with {status}",
            self.name
        );
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Api {
    pub url: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_string(),
            http: reqwest::Client::new(),
        }
    }

    pub async fn get(&self, path: &str) -> Value {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.expect("JSON")
    }

    pub async fn text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.text().await.expect("text")
    }

    pub async fn submit_echo_sleep(&self, repeats: u32, seconds: u32) -> String {
        let body = json!({
            "name": "e2e", "type": "echo-sleep-test", "priority": 50, "submitter_platform": "linux",
            "settings": { "message": "hello from e2e", "sleep_duration_seconds": seconds, "sleep_repeats": repeats },
        });
        let response = self
            .http
            .post(format!("{}/api/v3/jobs", self.url))
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status().as_u16(), 200);
        let job: Value = response.json().await.expect("JSON");
        job["id"].as_str().expect("id").to_string()
    }

    pub async fn tasks(&self, job: &str) -> Vec<Value> {
        self.get(&format!("/api/v3/jobs/{job}/tasks")).await["tasks"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The full log of a task, read through the URL the API gives.
    pub async fn task_log(&self, task: &str) -> String {
        let info = self.get(&format!("/api/v3/tasks/{task}/log")).await;
        self.text(info["url"].as_str().expect("url")).await
    }

    /// Polls until `done(job)` holds, failing after `limit`.
    pub async fn wait_for_job(
        &self,
        job: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let value = self.get(&format!("/api/v3/jobs/{job}")).await;
            if done(&value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "job not as expected within {limit:?}: {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until `count` workers have their instruction stream open, so the next job is
    /// handed to all of them at once.
    pub async fn wait_connected(&self, count: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let workers = self.get("/api/v3/worker-mgt/workers").await;
            let connected = workers["workers"].as_array().map_or(0, |all| {
                all.iter().filter(|w| w["connected"] == true).count()
            });
            if connected == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{count} workers did not connect within {limit:?}: {workers}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls the job's tasks until `done(tasks)` holds.
    pub async fn wait_for_tasks(
        &self,
        job: &str,
        limit: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + limit;
        loop {
            let tasks = self.tasks(job).await;
            if done(&tasks) {
                return tasks;
            }
            assert!(
                Instant::now() < deadline,
                "tasks not as expected within {limit:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn completed(job: &Value) -> bool {
    job["status"] == "completed"
}

/// Runs `ip ARGS` (network namespaces and links for the tests that make their own
/// network); the error names the command and what it printed.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `PRAGMA integrity_check` of a SQLite file through the `sqlite3` CLI: "ok" when intact,
/// else SQLite's findings. Read-only where SQLite allows it, so that looking after a kill
/// does not checkpoint the WAL the restarted manager is to find; a WAL database whose
/// manager stopped cleanly (no `-shm` left) cannot be opened read-only and is opened
/// normally.
pub fn sqlite_integrity_check(database: &Path) -> String {
    let run = |read_only: bool| {
        let mut command = Command::new("sqlite3");
        if read_only {
            command.arg("-readonly");
        }
        command
            .arg("-batch")
            .arg(database)
            .arg("PRAGMA integrity_check;")
            .output()
            .expect("the sqlite3 CLI runs")
    };
    let mut output = run(true);
    if !output.status.success() {
        output = run(false);
    }
    assert!(
        output.status.success(),
        "sqlite3 on {}: {}",
        database.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}
