//! Python tools the tests use, in a venv of their own under `target/xtask-venv` so the
//! system's Python stays untouched: schemathesis fuzzes the REST API against its OpenAPI
//! document (crates/castanet/tests/api_fuzz.rs).
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// Pinned so a run is reproducible; 4.x needs Python 3.9 or newer.
pub const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// The variable that hands the schemathesis executable to the tests.
pub const SCHEMATHESIS_ENV: &str = "CASTANET_SCHEMATHESIS";
/// Set to 1, the API fuzz tests fail without schemathesis instead of skipping.
pub const REQUIRE_SCHEMATHESIS_ENV: &str = "CASTANET_REQUIRE_SCHEMATHESIS";

/// Whether `python3 -m venv` can make a venv with pip (Debian splits it into python3-venv).
pub fn venv_available() -> bool {
    Command::new("python3")
        .args(["-c", "import venv, ensurepip"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn venv_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("xtask-venv")
}

/// The `--version` line of `program`, if it runs.
fn version_of(program: &Path) -> Option<String> {
    let output = Command::new(program).arg("--version").output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The pinned schemathesis's `st` executable, installed from PyPI into the venv when it is
/// not there yet. None (with a hint how to get Python's venv) when Python cannot make one:
/// the fuzz test then says it was skipped.
pub fn schemathesis() -> anyhow::Result<Option<PathBuf>> {
    if !venv_available() {
        println!(
            "xtask: python3 with venv is missing, so the API fuzz tests will fail; install it \
             with: sudo apt-get install -y python3-venv  (or run: cargo xtask test --install-deps)"
        );
        return Ok(None);
    }
    let venv = venv_dir();
    let st = venv.join("bin/st");
    if version_of(&st).is_some_and(|v| v.ends_with(SCHEMATHESIS_VERSION)) {
        return Ok(Some(st));
    }
    println!(
        "xtask: installing schemathesis {SCHEMATHESIS_VERSION} into {}",
        venv.display()
    );
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("cannot start python3")?;
    if !status.success() {
        bail!("python3 -m venv {} failed ({status})", venv.display());
    }
    let status = Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(format!("schemathesis=={SCHEMATHESIS_VERSION}"))
        .status()
        .context("cannot start the venv's pip")?;
    if !status.success() {
        bail!("pip install schemathesis=={SCHEMATHESIS_VERSION} failed ({status})");
    }
    match version_of(&st) {
        Some(version) => {
            println!("xtask: {version}");
            Ok(Some(st))
        }
        None => bail!("{} does not run after installing it", st.display()),
    }
}
