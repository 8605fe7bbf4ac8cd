//! `castanet worker --test`: everything a new render node needs, checked before it joins a
//! farm. Its directories can be read and written and have room, Blender and FFmpeg are
//! there, Blender renders a tiny frame and FFmpeg encodes it into a video, and the manager
//! (when one is named) answers. Each check says what it found or what is wrong.
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::check_writable;
use crate::config::WorkerConfig;

/// Less room than this on a directory the worker writes into is a problem.
const MIN_FREE_BYTES: u64 = 1024 * 1024 * 1024;
/// The tiny render and encode each get this long (Blender's first start is slow).
const TOOL_TIME_LIMIT: Duration = Duration::from_secs(180);
/// How long the manager may take to accept a connection.
const CONNECT_TIME_LIMIT: Duration = Duration::from_secs(10);

/// One check: what was checked, and what was found or what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub outcome: Result<String, String>,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Result<String, String>) -> Self {
        Check {
            name: name.into(),
            outcome,
        }
    }
}

/// Every check of the machine, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct MachineReport {
    pub checks: Vec<Check>,
}

impl MachineReport {
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|check| check.outcome.is_ok())
    }
}

impl fmt::Display for MachineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            match &check.outcome {
                Ok(found) => writeln!(f, "ok    {}: {found}", check.name)?,
                Err(problem) => writeln!(f, "FAIL  {}: {problem}", check.name)?,
            }
        }
        let failed = self.checks.iter().filter(|c| c.outcome.is_err()).count();
        if failed == 0 {
            write!(f, "all {} checks passed", self.checks.len())
        } else {
            write!(f, "{failed} of {} checks failed", self.checks.len())
        }
    }
}

/// Runs every check; `manager_url` is checked only when given.
pub async fn run_machine_checks(config: &WorkerConfig, manager_url: Option<&str>) -> MachineReport {
    let mut report = MachineReport {
        checks: directory_checks(config),
    };
    let scratch = tempfile_dir();
    let software = crate::system::detect_software().await;
    for tool in ["blender", "ffmpeg"] {
        let found = software
            .get(tool)
            .map(|version| format!("version {version}"))
            .ok_or_else(|| format!("`{tool}` was not found on PATH or did not run"));
        report.checks.push(Check::new(tool, found));
    }
    match &scratch {
        Ok(dir) => {
            let frame = dir.path().join("frame_0001.png");
            let rendered = if software.contains_key("blender") {
                render_tiny_frame(dir.path()).await
            } else {
                Err("skipped: no Blender".to_owned())
            };
            let video = match (&rendered, software.contains_key("ffmpeg")) {
                (_, false) => Err("skipped: no FFmpeg".to_owned()),
                (Ok(_), true) => encode_video(dir.path(), Some(&frame)).await,
                (Err(_), true) => encode_video(dir.path(), None).await,
            };
            report
                .checks
                .push(Check::new("blender renders a frame", rendered));
            report
                .checks
                .push(Check::new("ffmpeg encodes a video", video));
        }
        Err(problem) => report
            .checks
            .push(Check::new("scratch directory", Err(problem.clone()))),
    }
    if let Some(url) = manager_url {
        report.checks.push(Check::new("manager", reach(url).await));
    }
    report
}

/// The data directory, each storage root (which must be there: a mounted share, not made) and
/// the temporary directory: listed, written and with room.
pub fn directory_checks(config: &WorkerConfig) -> Vec<Check> {
    let mut checks = vec![Check::new(
        "data directory",
        directory_usable(&config.data_dir),
    )];
    let storage = config.no_shared_storage.as_ref();
    if let Some(storage) = storage {
        // No shared storage: the farm's files live in the mirror and the cache instead.
        checks.push(Check::new(
            format!("storage mirror {}", storage.mirror_dir.display()),
            directory_usable(&storage.mirror_dir),
        ));
        checks.push(Check::new(
            format!("input cache {}", storage.cache_dir.display()),
            directory_usable(&storage.cache_dir),
        ));
    }
    let mirror = storage.map(|storage| &storage.mirror_dir);
    for root in config
        .storage_roots
        .iter()
        .filter(|root| Some(*root) != mirror)
    {
        let usable = if root.is_dir() {
            directory_usable(root)
        } else {
            Err(format!(
                "{} is not there (is the shared storage mounted?)",
                root.display()
            ))
        };
        checks.push(Check::new(
            format!("storage root {}", root.display()),
            usable,
        ));
    }
    checks.push(Check::new(
        "temporary directory",
        directory_usable(&std::env::temp_dir()),
    ));
    checks
}

fn tempfile_dir() -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix("castanet-worker-test-")
        .tempdir()
        .map_err(|e| format!("cannot make a scratch directory: {e}"))
}

/// Exists (or can be made inside its nearest existing parent), can be listed and written,
/// and has room.
fn directory_usable(directory: &Path) -> Result<String, String> {
    check_writable(directory)?;
    if directory.exists() {
        std::fs::read_dir(directory)
            .map_err(|e| format!("cannot list {}: {e}", directory.display()))?;
    }
    let existing = directory
        .ancestors()
        .find(|part| part.exists())
        .unwrap_or(directory);
    match castanet_protocol::disk::free_bytes(existing) {
        Ok(free) if free < MIN_FREE_BYTES => Err(format!(
            "{} is writable but has only {} MiB free (at least {} MiB wanted)",
            directory.display(),
            free / (1024 * 1024),
            MIN_FREE_BYTES / (1024 * 1024)
        )),
        Ok(free) => Ok(format!(
            "{} is writable, {} MiB free",
            directory.display(),
            free / (1024 * 1024)
        )),
        Err(_) => Ok(format!("{} is writable", directory.display())),
    }
}

/// Blender Python that turns the factory scene into a 64×48 Cycles render of 4 samples
/// (denoising off: not every Blender build has OpenImageDenoise).
pub(crate) const TINY_SCENE_SCRIPT: &str = "import bpy\n\
     s = bpy.context.scene\n\
     s.render.engine = 'CYCLES'\n\
     s.cycles.samples = 4\n\
     s.cycles.use_denoising = False\n\
     s.render.resolution_x = 64\n\
     s.render.resolution_y = 48\n\
     s.render.resolution_percentage = 100\n";

/// Renders frame 1 of a 64×48 Cycles scene made on the spot, into `dir/frame_0001.png`.
async fn render_tiny_frame(dir: &Path) -> Result<String, String> {
    let script = TINY_SCENE_SCRIPT;
    let output = format!("{}/frame_####", dir.display());
    let args = [
        "-b",
        "--factory-startup",
        "--python-exit-code",
        "1",
        "--python-expr",
        script,
        "--render-output",
        &output,
        "--render-format",
        "PNG",
        "--render-frame",
        "1",
    ];
    run_tool("blender", &args).await?;
    let frame = dir.join("frame_0001.png");
    match std::fs::metadata(&frame) {
        Ok(meta) if meta.len() > 0 => Ok(format!("{} bytes of PNG", meta.len())),
        _ => Err(format!("Blender ended without writing {}", frame.display())),
    }
}

/// Encodes `frame` (or, without one, a generated colour) into `dir/test.mp4` with H.264.
async fn encode_video(dir: &Path, frame: Option<&PathBuf>) -> Result<String, String> {
    let video = dir.join("test.mp4");
    let input: Vec<String> = match frame {
        Some(frame) => vec!["-i".into(), frame.display().to_string()],
        None => ["-f", "lavfi", "-i", "color=c=gray:s=64x48:d=1"]
            .map(String::from)
            .to_vec(),
    };
    let mut args: Vec<String> = ["-hide_banner", "-loglevel", "error", "-y"]
        .map(String::from)
        .to_vec();
    args.extend(input);
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"].map(String::from));
    args.push(video.display().to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run_tool("ffmpeg", &args).await?;
    match std::fs::metadata(&video) {
        Ok(meta) if meta.len() > 0 => Ok(format!("{} bytes of H.264 MP4", meta.len())),
        _ => Err(format!("FFmpeg ended without writing {}", video.display())),
    }
}

/// Runs `exe args` to its end within the time limit; a failure quotes its last output lines.
async fn run_tool(exe: &str, args: &[&str]) -> Result<(), String> {
    let run = tokio::process::Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(TOOL_TIME_LIMIT, run).await {
        Ok(Ok(output)) => output,
        Ok(Err(error)) => return Err(format!("cannot run {exe}: {error}")),
        Err(_) => {
            return Err(format!(
                "{exe} did not finish within {} s",
                TOOL_TIME_LIMIT.as_secs()
            ));
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    let last: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = last[last.len().saturating_sub(3)..].join(" | ");
    Err(format!("{exe} failed ({}): {tail}", output.status))
}

/// `host:port` of a manager URL as the worker accepts it (`farm.lan`, `http://host:8080/`,
/// `https://farm.lan`): without a port, 80 for http and 443 for https.
fn manager_address(url: &str) -> Result<String, String> {
    let url = crate::config::normalise_manager_url(url).map_err(|e| e.to_string())?;
    let uri: tonic::codegen::http::Uri = url
        .parse()
        .map_err(|e| format!("the manager URL {url} does not read: {e}"))?;
    let host = uri
        .host()
        .ok_or_else(|| format!("the manager URL {url} names no host"))?;
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    Ok(format!("{host}:{port}"))
}

/// Whether the manager's address accepts a connection.
async fn reach(url: &str) -> Result<String, String> {
    let address = manager_address(url)?;
    match tokio::time::timeout(
        CONNECT_TIME_LIMIT,
        tokio::net::TcpStream::connect(address.as_str()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(format!("{address} accepts connections")),
        Ok(Err(error)) => Err(format!("cannot connect to {address}: {error}")),
        Err(_) => Err(format!(
            "{address} did not answer within {} s",
            CONNECT_TIME_LIMIT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_lists_each_check_and_counts_the_failures() {
        let report = MachineReport {
            checks: vec![
                Check::new("data directory", Ok("/d is writable".into())),
                Check::new("blender", Err("`blender` was not found".into())),
            ],
        };
        assert!(!report.passed());
        assert_eq!(
            report.to_string(),
            "ok    data directory: /d is writable\n\
             FAIL  blender: `blender` was not found\n\
             1 of 2 checks failed"
        );
    }

    #[test]
    fn a_missing_directory_is_usable_when_its_parent_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let found = directory_usable(&dir.path().join("later")).expect("usable");
        assert!(found.contains("is writable"), "{found}");
    }

    #[test]
    fn manager_urls_become_host_and_port() {
        assert_eq!(
            manager_address("http://farm.lan:8080/").as_deref(),
            Ok("farm.lan:8080")
        );
        assert_eq!(
            manager_address("https://farm.lan").as_deref(),
            Ok("farm.lan:443")
        );
        assert_eq!(
            manager_address("http://10.0.0.5/x").as_deref(),
            Ok("10.0.0.5:80")
        );
        assert!(manager_address("").is_err());
    }

    #[tokio::test]
    async fn an_address_nobody_listens_on_is_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let problem = reach(&format!("http://{address}"))
            .await
            .expect_err("closed");
        assert!(problem.contains(&address.to_string()), "{problem}");
    }
}
