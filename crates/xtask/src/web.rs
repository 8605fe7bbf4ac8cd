//! The dashboard's suites: type check, Vitest unit tests, and the browser tests
//! (headless Chromium against a real manager and workers started from the built binary).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Where Debian's package puts Chromium; the browser tests drive it.
const CHROMIUM: &str = "/usr/bin/chromium";

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web")
}

fn npm(web: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<()> {
    println!("xtask: running npm {} (in web/)", args.join(" "));
    let status = Command::new("npm")
        .args(args)
        .current_dir(web)
        .envs(envs.iter().copied())
        .status()
        .context("cannot start npm (install Node.js 20.19+ with npm)")?;
    if !status.success() {
        bail!("npm {} in web/ failed ({status})", args.join(" "));
    }
    Ok(())
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// `npm ci` unless node_modules already matches the lock file (the manager's build script
/// may have installed it moments ago).
fn install(web: &Path) -> anyhow::Result<()> {
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    if installed.is_some() && installed >= modified(&web.join("package-lock.json")) {
        return Ok(());
    }
    npm(web, &["ci", "--no-audit", "--no-fund"], &[])
}

/// Type check and unit tests. The production build is the manager's build script's job:
/// rebuilding `web/dist` here would make cargo recompile the manager that embeds it.
pub fn unit_tests() -> anyhow::Result<()> {
    let web = web_dir();
    install(&web)?;
    npm(&web, &["run", "typecheck"], &[])?;
    npm(&web, &["test"], &[])
}

/// The browser tests, with the debug `castanet` binary (built here if needed).
pub fn browser_tests() -> anyhow::Result<()> {
    if !Path::new(CHROMIUM).exists() {
        println!(
            "xtask: SKIPPING the dashboard browser tests: {CHROMIUM} is missing \
             (apt-get install chromium, or run cargo xtask test --install-deps)"
        );
        return Ok(());
    }
    let status = Command::new("cargo")
        .args(["build", "-p", "castanet"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build -p castanet failed ({status})");
    }
    let binary = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/castanet");
    let binary = binary
        .canonicalize()
        .with_context(|| format!("no castanet binary at {}", binary.display()))?;
    let binary = binary.to_string_lossy();
    npm(
        &web_dir(),
        &["run", "test:browser"],
        &[("CASTANET_BIN", &binary), ("CHROMIUM_PATH", CHROMIUM)],
    )
}
