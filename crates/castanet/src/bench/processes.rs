//! Real `castanet manager` and `castanet worker` processes for the real-path scenarios,
//! started from this executable on loopback, each in its own directory, as a user runs
//! them; their CPU time read from /proc; stopped with SIGTERM.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

use anyhow::{Context, bail};

/// A job type that runs one program per task (`exec`, no shell): the real path's cost
/// without the cost of any real work.
const BENCH_JOB_TYPE: &str = r#"// Written by `castanet bench`: one `exec` of a program per task.
const JOB_TYPE = {
  label: "Bench Exec",
  description: "Runs a program once per task, for castanet bench",
  settings: [
    { key: "tasks", type: "int32", default: 1, propargs: { min: 1 }, description: "How many tasks" },
    { key: "exe", type: "string", default: "/bin/true", description: "The program each task runs" },
    { key: "task_type", type: "string", default: "misc", description: "The tasks' type" },
  ],
};

function compileJob(job) {
  for (let i = 1; i <= job.settings.tasks; i++) {
    const task = author.Task(`run-${i}`, job.settings.task_type);
    task.addCommand(author.Command("exec", { exe: job.settings.exe, args: [] }));
    job.addTask(task);
  }
}
"#;

/// The job type name of [`BENCH_JOB_TYPE`] (from its file name).
pub const BENCH_JOB_TYPE_NAME: &str = "bench-exec";

/// A job type with one task copying one file (`copy-file`): with a worker without shared
/// storage, the input is downloaded and the copy uploaded, nothing else.
const BENCH_COPY_JOB_TYPE: &str = r#"// Written by `castanet bench`: one copy-file task.
const JOB_TYPE = {
  label: "Bench Copy",
  description: "Copies one file, for castanet bench",
  settings: [
    { key: "src", type: "string", required: true, description: "The file to copy" },
    { key: "dest", type: "string", required: true, description: "Where the copy goes" },
  ],
};

function compileJob(job) {
  const task = author.Task("copy", "file-management");
  task.addCommand(author.Command("copy-file", { src: job.settings.src, dest: job.settings.dest }));
  job.addTask(task);
}
"#;

/// The job type name of [`BENCH_COPY_JOB_TYPE`].
pub const BENCH_COPY_JOB_TYPE_NAME: &str = "bench-copy";

/// How long a process gets to start or to stop.
const PROCESS_LIMIT: Duration = Duration::from_secs(30);

/// A `castanet manager` process with its config and database in `dir`.
pub struct ManagerProcess {
    child: Child,
    pub url: String,
    pub secret: String,
    /// Where its log goes.
    pub log: PathBuf,
}

impl ManagerProcess {
    /// Writes a default config (and the bench job type) into `dir` and starts the manager
    /// on a free loopback port.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        Self::start_listening(dir, "127.0.0.1:0")
    }

    /// As `start`, on `database` (a PostgreSQL URL) instead of an SQLite file in `dir`.
    pub fn start_on(dir: &Path, database: Option<&str>) -> anyhow::Result<Self> {
        if let Some(database) = database {
            let config_path = dir.join("castanet-manager.toml");
            castanet_manager::ManagerConfig::load_or_create(&config_path)
                .context("writing the manager's config")?;
            let text = std::fs::read_to_string(&config_path)
                .with_context(|| format!("reading {}", config_path.display()))?;
            let quoted = serde_json::Value::from(database).to_string();
            let text: Vec<String> = text
                .lines()
                .map(|line| match line.starts_with("database = ") {
                    true => format!("database = {quoted}"),
                    false => line.to_string(),
                })
                .collect();
            std::fs::write(&config_path, text.join("\n") + "\n")
                .with_context(|| format!("writing {}", config_path.display()))?;
        }
        Self::start(dir)
    }

    /// As `start`, listening on `listen` (`host:port`); a config already in `dir` is kept,
    /// so this restarts a stopped manager on its database.
    pub fn start_listening(dir: &Path, listen: &str) -> anyhow::Result<Self> {
        let config_path = dir.join("castanet-manager.toml");
        let (config, _) = castanet_manager::ManagerConfig::load_or_create(&config_path)
            .context("writing the manager's config")?;
        let scripts = config.scripts_path();
        std::fs::create_dir_all(&scripts)
            .with_context(|| format!("creating {}", scripts.display()))?;
        for (name, code) in [
            (BENCH_JOB_TYPE_NAME, BENCH_JOB_TYPE),
            (BENCH_COPY_JOB_TYPE_NAME, BENCH_COPY_JOB_TYPE),
        ] {
            let script = scripts.join(format!("{}.js", name.replace('-', "_")));
            std::fs::write(&script, code)
                .with_context(|| format!("writing {}", script.display()))?;
        }
        let log = dir.join("manager.log");
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        let mut child = Command::new(std::env::current_exe().context("finding castanet")?)
            .args(["manager", "--listen", listen, "--config"])
            .arg(&config_path)
            .env("CASTANET_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .context("starting castanet manager")?;
        let stdout = child.stdout.take().context("the manager's stdout")?;
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let deadline = Instant::now() + PROCESS_LIMIT;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = received.recv_timeout(left) else {
                let _ = child.kill();
                bail!("the manager did not start; see {}", log.display());
            };
            if let Some(url) = line.strip_prefix("castanet manager listening on ") {
                break url.trim().to_string();
            }
        };
        Ok(Self {
            child,
            url,
            secret: config.registration_secret,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits for the exit. On failure the error ends with the log's last lines
    /// (the log goes with the bench's temporary directory).
    pub fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, "the manager").map_err(|e| {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            e.context(format!("the manager's last log lines:\n{tail}"))
        })
    }
}

impl ManagerProcess {
    /// SIGKILL, as a host that dies: nothing is drained or closed cleanly.
    pub fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing the manager")?;
        self.child
            .wait()
            .context("waiting for the killed manager")?;
        Ok(())
    }
}

impl Drop for ManagerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One finished task as its worker's timing record tells it (µs; -1: step not reached).
#[derive(Clone, Debug, Default)]
pub struct TaskRecord {
    pub job_id: String,
    pub task_id: String,
    /// When the assignment arrived, on the wall clock.
    pub received_unix_us: i64,
    /// From the assignment: first program started, commands ended, final status acknowledged.
    pub spawn_us: i64,
    pub ended_us: i64,
    /// Every log line stored on the manager.
    pub log_stored_us: i64,
    pub acknowledged_us: i64,
}

impl TaskRecord {
    /// Parses a worker log line holding a `task timings` record (tracing's text format:
    /// `key=value` fields after the message).
    pub fn parse(line: &str) -> Option<Self> {
        let (_, fields) = line.split_once("task timings")?;
        let mut record = Self::default();
        for field in fields.split_whitespace() {
            let Some((key, value)) = field.split_once('=') else {
                continue;
            };
            // Text fields are written quoted.
            let value = value.trim_matches('"');
            let number = || value.parse::<i64>().ok();
            match key {
                "job_id" => record.job_id = value.to_string(),
                "task_id" => record.task_id = value.to_string(),
                "received_unix_us" => record.received_unix_us = number()?,
                "spawn_us" => record.spawn_us = number()?,
                "ended_us" => record.ended_us = number()?,
                "log_stored_us" => record.log_stored_us = number()?,
                "acknowledged_us" => record.acknowledged_us = number()?,
                _ => {}
            }
        }
        (!record.task_id.is_empty()).then_some(record)
    }
}

/// A `castanet worker` process; the timing records of its tasks go to a channel.
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    /// Starts a worker with `slots` slots and its data in `dir`. Its log stays at the
    /// default level (info), plus the timing records, which are parsed and sent to
    /// `records`; warnings and errors are passed on to this process's stderr.
    pub fn start(
        manager: &ManagerProcess,
        dir: &Path,
        name: &str,
        slots: u32,
        records: UnboundedSender<TaskRecord>,
    ) -> anyhow::Result<Self> {
        Self::start_with_args(manager, dir, name, slots, records, &[])
    }

    /// [`start`](Self::start) with more `castanet worker` options.
    pub fn start_with_args(
        manager: &ManagerProcess,
        dir: &Path,
        name: &str,
        slots: u32,
        records: UnboundedSender<TaskRecord>,
        extra_args: &[&str],
    ) -> anyhow::Result<Self> {
        let mut child = Command::new(std::env::current_exe().context("finding castanet")?)
            .args(["worker", "--manager", &manager.url, "--name", name])
            .args(extra_args)
            .args(["--slots", &slots.to_string(), "--data-dir"])
            .arg(dir)
            .env("CASTANET_REGISTRATION_SECRET", &manager.secret)
            .env("CASTANET_LOG", "info,castanet_worker::timings=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting castanet worker")?;
        let stderr = child.stderr.take().context("the worker's stderr")?;
        let name = name.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(record) = TaskRecord::parse(&line) {
                    let _ = records.send(record);
                } else if line.contains(" WARN ") || line.contains(" ERROR ") {
                    eprintln!("[{name}] {line}");
                }
            }
        });
        Ok(Self { child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, and waits for the exit.
    pub fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, "a worker")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &mut Child, what: &str) -> anyhow::Result<()> {
    let pid = libc::pid_t::try_from(child.id()).context("a process id out of range")?;
    // SAFETY: kill() only sends a signal, to a child this process has not reaped yet.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + PROCESS_LIMIT;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("{what} exited with {status}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not stop within {PROCESS_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU time of a process so far: its own (every thread) and that of its children that
/// have ended and been waited for (a worker's task programs), from /proc/PID/stat.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTime {
    pub own: Duration,
    pub children: Duration,
}

impl CpuTime {
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("reading /proc/{pid}/stat"))?;
        // The fields after the command name (which may hold spaces) in parentheses:
        // state is field 3, utime 14, stime 15, cutime 16, cstime 17.
        let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<u64> = after_name
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let [utime, stime, cutime, cstime] = fields[..] else {
            bail!("/proc/{pid}/stat has fewer fields than expected");
        };
        // SAFETY: sysconf only reads a system constant.
        let ticks = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
            .unwrap_or(100)
            .max(1);
        let time = |t: u64| Duration::from_micros(t * 1_000_000 / ticks);
        Ok(Self {
            own: time(utime + stime),
            children: time(cutime + cstime),
        })
    }

    pub fn since(self, earlier: Self) -> Self {
        Self {
            own: self.own.saturating_sub(earlier.own),
            children: self.children.saturating_sub(earlier.children),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timing_records_are_read_from_worker_log_lines() {
        let line = "2026-12-04T10:00:00.000001Z DEBUG castanet_worker::timings: task timings \
                    job_id=\"j1\" task_id=\"t1\" received_unix_us=1764842400000000 spawn_us=812 \
                    ended_us=2410 log_stored_us=2800 acknowledged_us=3120";
        let record = TaskRecord::parse(line).expect("a record");
        assert_eq!(record.job_id, "j1");
        assert_eq!(record.task_id, "t1");
        assert_eq!(record.received_unix_us, 1_764_842_400_000_000);
        assert_eq!(
            (
                record.spawn_us,
                record.ended_us,
                record.log_stored_us,
                record.acknowledged_us
            ),
            (812, 2410, 2800, 3120)
        );
        assert!(TaskRecord::parse("INFO castanet_worker: task started task_id=t1").is_none());
    }

    #[test]
    fn cpu_time_of_this_process_grows_while_it_works() {
        let start = CpuTime::of(std::process::id()).expect("/proc readable");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut spin = 0u64;
        loop {
            for i in 0..100_000u64 {
                spin = std::hint::black_box(spin.wrapping_add(i));
            }
            let now = CpuTime::of(std::process::id()).expect("/proc readable");
            if now.since(start).own > Duration::ZERO {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no CPU time counted while spinning"
            );
        }
    }
}
