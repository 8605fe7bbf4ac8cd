//! Child processes for commands: each is spawned in its own process group with stdout and
//! stderr merged into lines, and the whole group is killed on abort (and when the main
//! process exits, so nothing a task started outlives it). The main process dies with the
//! worker (parent-death signal) and its group is recorded until it is gone, so a worker
//! killed outright leaves nothing running (see `leftovers.rs`).

use std::future::Future;
use std::io;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::leftovers::{ProcessRecord, ProcessRecords};
use crate::platform;

/// Longest line forwarded as one; longer output is split (on a UTF-8 character boundary).
pub const MAX_LINE_BYTES: usize = 40 * 1024;

/// How long output is still read after the main process exited (a daemon that left the
/// process group could keep the pipes open forever).
const OUTPUT_GRACE_AFTER_EXIT: Duration = Duration::from_secs(2);

/// How a child process run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Exited(ExitStatus),
    /// The cancellation token fired; the process group was killed.
    Canceled,
}

/// A running child process and its merged output.
pub struct ChildProcess {
    child: tokio::process::Child,
    pid: u32,
    lines: mpsc::Receiver<String>,
    reaped: bool,
    /// Removed (dropped) after the group was killed or found gone.
    _record: ProcessRecord,
}

impl ChildProcess {
    /// Starts `program` with `args` directly (no shell), in a new process group.
    #[cfg(test)]
    pub fn spawn(program: &str, args: &[String]) -> io::Result<Self> {
        Self::spawn_for_task(program, args, &[], None, &ProcessRecords::default(), "")
    }

    /// Like [`spawn`](Self::spawn), with `env` added to the inherited environment, started in
    /// `cwd` when given (else the worker's), and the process group recorded for `task_id` in
    /// `records` while it runs.
    pub fn spawn_for_task(
        program: &str,
        args: &[String],
        env: &[(String, String)],
        cwd: Option<&std::path::Path>,
        records: &ProcessRecords,
        task_id: &str,
    ) -> io::Result<Self> {
        let mut command = tokio::process::Command::new(program);
        if let Some(cwd) = cwd {
            command.current_dir(cwd);
        }
        command
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        platform::start_own_process_tree(&mut command);
        platform::die_with_worker(&mut command);
        let mut child = command.spawn()?;
        let pid = child.id().ok_or_else(|| {
            io::Error::other("the child process vanished right after it was started")
        })?;
        let record = records.record(pid, task_id);
        platform::prefer_for_oom_kill(pid);
        let (tx, lines) = mpsc::channel(256);
        if let Some(stdout) = child.stdout.take() {
            tokio::spawn(forward_lines(stdout, tx.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(forward_lines(stderr, tx));
        }
        Ok(Self {
            child,
            pid,
            lines,
            reaped: false,
            _record: record,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Passes every output line to `on_line` until the process has exited and its output
    /// is drained, or kills the process group as soon as `cancel` fires.
    pub async fn run<F>(
        mut self,
        cancel: &CancellationToken,
        mut on_line: impl FnMut(String) -> F,
    ) -> io::Result<RunEnd>
    where
        F: Future<Output = ()>,
    {
        let mut exited = None;
        let grace = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(grace);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return self.abort().await,
                line = self.lines.recv() => match line {
                    Some(line) => {
                        tokio::select! {
                            biased;
                            () = cancel.cancelled() => return self.abort().await,
                            () = on_line(line) => {}
                        }
                    }
                    None => break,
                },
                status = self.child.wait(), if exited.is_none() => {
                    exited = Some(status?);
                    self.reaped = true;
                    // Background processes left in the group would keep the pipes open. (The
                    // group id cannot be reused while any member lives; once none does, this
                    // finds nothing.)
                    platform::kill_process_tree(self.pid);
                    grace.as_mut().reset(tokio::time::Instant::now() + OUTPUT_GRACE_AFTER_EXIT);
                }
                () = &mut grace, if exited.is_some() => {
                    tracing::debug!(pid = self.pid, "output still open after the process exited; not waiting for it");
                    break;
                }
            }
        }
        let status = match exited {
            Some(status) => status,
            None => tokio::select! {
                biased;
                () = cancel.cancelled() => return self.abort().await,
                status = self.child.wait() => status?,
            },
        };
        self.reaped = true;
        Ok(RunEnd::Exited(status))
    }

    /// Kills the whole process group and reaps the main process.
    async fn abort(&mut self) -> io::Result<RunEnd> {
        if !self.reaped {
            platform::kill_process_tree(self.pid);
            self.child.wait().await?;
            self.reaped = true;
        }
        Ok(RunEnd::Canceled)
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // The group id stays reserved until the main process is reaped, so this cannot hit
        // an unrelated group.
        if !self.reaped {
            platform::kill_process_tree(self.pid);
        }
    }
}

/// Reads a pipe to its end and sends the lines it carries.
async fn forward_lines(mut reader: impl AsyncRead + Unpin, tx: mpsc::Sender<String>) {
    let mut splitter = LineSplitter::new(MAX_LINE_BYTES);
    let mut buf = vec![0u8; 16 * 1024];
    let mut lines = Vec::new();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        splitter.push(&buf[..n], &mut lines);
        for line in lines.drain(..) {
            if tx.send(line).await.is_err() {
                return;
            }
        }
    }
    if let Some(rest) = splitter.finish() {
        let _ = tx.send(rest).await;
    }
}

/// Turns a byte stream into text lines of at most `max` bytes (without their line ending).
#[derive(Debug)]
pub struct LineSplitter {
    pending: Vec<u8>,
    /// Bytes of `pending` already known to contain no '\n'.
    scanned: usize,
    max: usize,
}

impl LineSplitter {
    pub fn new(max: usize) -> Self {
        Self {
            pending: Vec::new(),
            scanned: 0,
            max: max.max(4),
        }
    }

    /// Adds bytes and appends every completed line to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<String>) {
        self.pending.extend_from_slice(bytes);
        loop {
            let newline = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|i| i + self.scanned);
            match newline {
                Some(end) if end <= self.max => {
                    let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    out.push(String::from_utf8_lossy(&line).into_owned());
                    self.scanned = 0;
                }
                _ if self.pending.len() > self.max => {
                    let cut = utf8_cut(&self.pending, self.max);
                    let part: Vec<u8> = self.pending.drain(..cut).collect();
                    out.push(String::from_utf8_lossy(&part).into_owned());
                    self.scanned = 0;
                }
                _ => {
                    self.scanned = self.pending.len();
                    return;
                }
            }
        }
    }

    /// The unterminated last line, if any.
    pub fn finish(&mut self) -> Option<String> {
        self.scanned = 0;
        if self.pending.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        Some(String::from_utf8_lossy(&rest).into_owned())
    }
}

/// The largest cut ≤ `max` that does not split a UTF-8 character (`bytes.len() > max`).
fn utf8_cut(bytes: &[u8], max: usize) -> usize {
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (max.saturating_sub(3)..=max)
        .rev()
        .find(|&cut| cut > 0 && !is_continuation(bytes[cut]))
        .unwrap_or(max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut out);
        }
        out.extend(splitter.finish());
        out
    }

    #[test]
    fn lines_are_split_across_reads() {
        assert_eq!(
            split(100, &[b"a\nbb", b"b\r\nc", b"\n\nlast"]),
            ["a", "bbb", "c", "", "last"]
        );
    }

    #[test]
    fn long_lines_are_cut_on_character_boundaries() {
        // "é" is two bytes; a cut at 5 bytes would split the third one.
        let text = "ééééé\n".as_bytes();
        let parts = split(5, &[text]);
        assert_eq!(parts, ["éé", "éé", "é"]);
        assert!(parts.iter().all(|p| p.len() <= 5));
        // Non-UTF-8 data is still cut at the limit.
        assert_eq!(split(4, &[&[0x80; 6]]).len(), 2);
    }

    #[tokio::test]
    async fn output_of_stdout_and_stderr_is_merged() -> io::Result<()> {
        let args = [
            "-c".to_string(),
            "echo out; echo err >&2; exit 3".to_string(),
        ];
        let child = ChildProcess::spawn("sh", &args)?;
        let mut lines = Vec::new();
        let end = child
            .run(&CancellationToken::new(), |l| {
                lines.push(l);
                async {}
            })
            .await?;
        lines.sort();
        assert_eq!(lines, ["err", "out"]);
        match end {
            RunEnd::Exited(status) => assert_eq!(status.code(), Some(3)),
            RunEnd::Canceled => panic!("not canceled"),
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn abort_kills_the_whole_tree_quickly() -> io::Result<()> {
        let args = [
            "-c".to_string(),
            "sleep 30 & echo started; sleep 30".to_string(),
        ];
        let child = ChildProcess::spawn("sh", &args)?;
        let pgid = child.pid();
        let cancel = CancellationToken::new();
        let (started_tx, mut started_rx) = mpsc::unbounded_channel();
        let run = tokio::spawn({
            let cancel = cancel.clone();
            async move {
                child
                    .run(&cancel, |l| {
                        let _ = started_tx.send(l);
                        async {}
                    })
                    .await
            }
        });
        assert_eq!(started_rx.recv().await.as_deref(), Some("started"));
        // The shell and both sleeps are in the group.
        let deadline = Instant::now() + Duration::from_secs(5);
        while crate::platform::process_tree_members(pgid).len() < 3 {
            assert!(Instant::now() < deadline, "the process tree never appeared");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        let aborted_at = Instant::now();
        cancel.cancel();
        let end = run.await.map_err(io::Error::other)??;
        assert_eq!(end, RunEnd::Canceled);
        while !crate::platform::process_tree_members(pgid).is_empty() {
            assert!(
                aborted_at.elapsed() < Duration::from_millis(200),
                "processes {:?} survived the abort",
                crate::platform::process_tree_members(pgid)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn background_leftovers_die_with_the_main_process() -> io::Result<()> {
        let args = ["-c".to_string(), "sleep 30 & echo done".to_string()];
        let child = ChildProcess::spawn("sh", &args)?;
        let pgid = child.pid();
        let mut lines = Vec::new();
        let end = tokio::time::timeout(
            Duration::from_secs(10),
            child.run(&CancellationToken::new(), |l| {
                lines.push(l);
                async {}
            }),
        )
        .await
        .map_err(io::Error::other)??;
        assert!(matches!(end, RunEnd::Exited(s) if s.success()));
        assert_eq!(lines, ["done"]);
        let deadline = Instant::now() + Duration::from_secs(1);
        while !crate::platform::process_tree_members(pgid).is_empty() {
            assert!(Instant::now() < deadline, "the background sleep survived");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_daemon_holding_the_pipes_does_not_hang_the_run() -> io::Result<()> {
        // setsid leaves the process group, so the group kill cannot reach it; the shell
        // exits only once the daemon has detached (it creates the marker after setsid).
        let dir = tempfile::tempdir()?;
        let marker = dir.path().join("detached");
        let script = format!(
            "setsid sh -c 'touch \"$0\"; exec sleep 4' '{0}' & while [ ! -e '{0}' ]; do sleep 0.01; done; echo bye",
            marker.display()
        );
        let child = ChildProcess::spawn("sh", &["-c".to_string(), script])?;
        let mut lines = Vec::new();
        let started = Instant::now();
        let end = child
            .run(&CancellationToken::new(), |l| {
                lines.push(l);
                async {}
            })
            .await?;
        assert!(matches!(end, RunEnd::Exited(s) if s.success()));
        assert_eq!(lines, ["bye"]);
        let elapsed = started.elapsed();
        assert!(
            elapsed >= OUTPUT_GRACE_AFTER_EXIT && elapsed < Duration::from_secs(4),
            "{elapsed:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn missing_programs_fail_to_spawn() {
        let err = ChildProcess::spawn("castanet-no-such-program", &[])
            .err()
            .map(|e| e.kind());
        assert_eq!(err, Some(io::ErrorKind::NotFound));
    }
}
