//! Build-script part: makes sure the manager embeds a current dashboard.
//!
//! `web/dist` is rebuilt (`npm ci` when the lock file changed, then `npm run build:embed`)
//! when it is missing or older than the dashboard's sources. Without npm the manager embeds
//! a one-page placeholder that says how to build the dashboard, and the build goes on with
//! one warning. The chosen folder is handed to `rust-embed` as `CASTANET_DASHBOARD_DIR`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// What the dashboard build reads; a change to any of them makes `web/dist` stale.
const SOURCES: &[&str] = &[
    "src",
    "public",
    "index.html",
    "package.json",
    "package-lock.json",
    "vite.config.ts",
    "tsconfig.json",
];

/// Set to `1` to embed whatever `web/dist` holds (or the placeholder) without running npm.
const SKIP_ENV: &str = "CASTANET_SKIP_DASHBOARD_BUILD";

const PLACEHOLDER: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Castanet</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
<h1>Castanet manager</h1>
<p>This manager was built without its web dashboard, because <code>npm</code> was not found
when it was compiled. The REST API under <a href="/api/v3/version">/api/v3</a> works as usual.</p>
<p>To include the dashboard, install Node.js 20 or newer with npm, then rebuild:</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build
cargo build --release -p castanet</pre>
</body></html>
"#;

pub fn embed_dashboard() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let web = manifest.join("../../web");
    // Only existing paths: cargo reruns the script on every build for a missing one.
    for source in SOURCES.iter().map(|s| web.join(s)).filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", source.display());
    }
    println!("cargo:rerun-if-env-changed={SKIP_ENV}");
    let dist = web.join("dist");
    // The embedded copy lives in OUT_DIR, so a deleted or half-rebuilt web/dist never
    // breaks the manager's build.
    let staged = out.join("dashboard");
    let _ = std::fs::remove_dir_all(&staged);
    match current_dist(&web, &dist) {
        Ok(()) => copy_dir(&dist, &staged).expect("OUT_DIR is writable"),
        Err(problem) => {
            println!("cargo:warning={problem}");
            // Try again once anything in web/ changes, e.g. a `web/dist` built by hand.
            println!("cargo:rerun-if-changed={}", web.display());
            fallback(&dist, &staged);
        }
    }
    println!(
        "cargo:rustc-env=CASTANET_DASHBOARD_DIR={}",
        staged.display()
    );
}

/// Ensures `dist` is built from the current sources, or says why it is not.
fn current_dist(web: &Path, dist: &Path) -> Result<(), String> {
    let built = modified(&dist.join("index.html"));
    let sources = SOURCES.iter().filter_map(|s| newest(&web.join(s))).max();
    if built.is_some() && built >= sources {
        return Ok(());
    }
    if std::env::var(SKIP_ENV).is_ok_and(|v| v == "1") {
        return Err(format!(
            "{SKIP_ENV}=1: the dashboard in web/dist is missing or older than its sources"
        ));
    }
    if Command::new("npm").arg("--version").output().is_err() {
        return Err(
            "npm not found: the manager embeds a placeholder page instead of the dashboard \
                    (install Node.js 20+ with npm and rebuild to include it; see docs/dashboard.md)"
                .to_string(),
        );
    }
    let installed = modified(&web.join("node_modules/.package-lock.json"));
    if installed.is_none() || installed < modified(&web.join("package-lock.json")) {
        npm(web, &["ci", "--no-audit", "--no-fund"])?;
    }
    npm(web, &["run", "build:embed"])
}

fn npm(web: &Path, args: &[&str]) -> Result<(), String> {
    let output = Command::new("npm")
        .args(args)
        .current_dir(web)
        .output()
        .map_err(|e| format!("cannot run npm {}: {e}", args.join(" ")))?;
    if output.status.success() {
        return Ok(());
    }
    // The first lines say what went wrong (not where npm put its debug log).
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("A complete log of this run"))
        .collect();
    let first = said[..said.len().min(3)].join(" | ");
    Err(format!(
        "npm {} in web/ failed ({}): {first}",
        args.join(" "),
        output.status
    ))
}

/// Stages the previous build when there is one (stale beats nothing), else the placeholder.
fn fallback(dist: &Path, staged: &Path) {
    if dist.join("index.html").is_file() {
        copy_dir(dist, staged).expect("OUT_DIR is writable");
        return;
    }
    std::fs::create_dir_all(staged).expect("OUT_DIR is writable");
    std::fs::write(staged.join("index.html"), PLACEHOLDER).expect("OUT_DIR is writable");
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file or of anything under a folder.
fn newest(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .max()
}
