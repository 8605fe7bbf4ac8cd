//! Developer tasks. `cargo xtask test` installs what the tests need (system packages when
//! run as root or with --install-deps; otherwise it prints the command that would) and runs
//! every suite: formatting, lints, the Rust tests and the dashboard's (unit and browser) tests.
//! The manager's tests then run a second time against PostgreSQL, in a throwaway cluster
//! started for the run (postgres.rs; skipped, saying so, when PostgreSQL is not installed).
//! `cargo xtask postgres` starts such a cluster on its own, for running single tests.
mod postgres;
mod python;
mod web;

use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

/// Debian packages the test suites use: real Blender and FFmpeg render and encode frames,
/// Chromium drives the dashboard.
/// sqlite3 checks the database's integrity after the chaos run.
/// python3-venv holds the venv schemathesis (the API fuzz test) is installed into.
/// postgresql (the current major version) runs the manager's tests a second time.
const APT_PACKAGES: &[&str] = &[
    "ffmpeg",
    "blender",
    "chromium",
    "sqlite3",
    "python3-venv",
    "postgresql",
];

/// Commands the packages above provide, to tell whether they are installed.
const NEEDED_COMMANDS: &[(&str, &str)] = &[
    ("ffmpeg", "ffmpeg"),
    ("blender", "blender"),
    ("chromium", "chromium"),
    ("sqlite3", "sqlite3"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("chaos") => chaos(&args[1..]),
        Some("postgres") if args.len() == 1 => postgres::serve(),
        _ => {
            eprintln!(
                "usage: cargo xtask test [--install-deps] [--skip-lints]\n       \
                 cargo xtask chaos [--minutes N] [--seed S]\n       \
                 cargo xtask postgres"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn have_command(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn run(program: &str, args: &[&str]) -> anyhow::Result<()> {
    println!("xtask: running {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    if !status.success() {
        bail!("{program} {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Installs missing system packages when allowed; otherwise says how.
fn ensure_system_packages(install: bool) -> anyhow::Result<()> {
    let mut missing: Vec<&str> = NEEDED_COMMANDS
        .iter()
        .filter(|(command, _)| !have_command(command))
        .map(|(_, package)| *package)
        .collect();
    if !python::venv_available() {
        missing.push("python3-venv");
    }
    if postgres::server_bindir().is_none() {
        missing.push("postgresql");
    }
    if missing.is_empty() {
        return Ok(());
    }
    let command = format!(
        "apt-get update && apt-get install -y --no-install-recommends {}",
        APT_PACKAGES.join(" ")
    );
    if !install {
        println!(
            "xtask: missing system packages: {}; tests that need them will say so and skip.",
            missing.join(", ")
        );
        println!(
            "xtask: install them with: sudo sh -c '{command}'  (or run: cargo xtask test --install-deps)"
        );
        return Ok(());
    }
    let prefix: &[&str] = if is_root() { &[] } else { &["sudo"] };
    let mut update: Vec<&str> = prefix.to_vec();
    update.extend(["apt-get", "update", "-q"]);
    run(update[0], &update[1..])?;
    let mut install_args: Vec<&str> = prefix.to_vec();
    install_args.extend(["apt-get", "install", "-y", "-q", "--no-install-recommends"]);
    install_args.extend(APT_PACKAGES);
    // Non-interactive, so a CI run never waits on a prompt.
    let status = Command::new(install_args[0])
        .args(&install_args[1..])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        bail!("installing {} failed ({status})", APT_PACKAGES.join(" "));
    }
    Ok(())
}

fn test(args: &[String]) -> anyhow::Result<()> {
    let install = args.iter().any(|a| a == "--install-deps") || is_root();
    let skip_lints = args.iter().any(|a| a == "--skip-lints");
    ensure_system_packages(install)?;
    if !skip_lints {
        run("cargo", &["fmt", "--all", "--", "--check"])?;
        run(
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        )?;
    }
    web::unit_tests()?;
    let schemathesis = python::schemathesis()?;
    // Every suite runs even after a failure, so one run shows everything that is wrong.
    let args = ["test", "--workspace", "--all-targets", "--no-fail-fast"];
    println!("xtask: running cargo {}", args.join(" "));
    let mut cargo_test = Command::new("cargo");
    cargo_test.args(args);
    if let Some(schemathesis) = &schemathesis {
        cargo_test.env(python::SCHEMATHESIS_ENV, schemathesis);
    }
    // The API fuzz tests fail instead of skipping without schemathesis.
    cargo_test.env(python::REQUIRE_SCHEMATHESIS_ENV, "1");
    let mut failed = Vec::new();
    record(&mut failed, "the Rust tests", status_of(cargo_test));
    postgres_pass(install, &mut failed)?;
    record(&mut failed, "the browser tests", web::browser_tests());
    if !failed.is_empty() {
        bail!("failed: {}", failed.join(", "));
    }
    println!("xtask: all suites passed");
    Ok(())
}

/// Runs `command` (printing it first); an error unless it succeeds.
fn status_of(mut command: Command) -> anyhow::Result<()> {
    let line = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    println!("xtask: running {line}");
    let status = command
        .status()
        .with_context(|| format!("cannot run {line}"))?;
    if !status.success() {
        bail!("{line} failed ({status})");
    }
    Ok(())
}

/// Notes a failed pass and carries on, so one run shows everything that is wrong.
fn record(failed: &mut Vec<&'static str>, pass: &'static str, result: anyhow::Result<()>) {
    if let Err(e) = result {
        eprintln!("xtask: {pass} FAILED: {e:#}");
        failed.push(pass);
    }
}

/// The manager's tests again, against a throwaway PostgreSQL cluster. Skipped (saying so)
/// when PostgreSQL is not installed and xtask was not allowed to install it.
fn postgres_pass(installed: bool, failed: &mut Vec<&'static str>) -> anyhow::Result<()> {
    const PASS: &str = "the manager's tests on PostgreSQL";
    if !installed && postgres::server_bindir().is_none() {
        println!(
            "xtask: SKIPPING {PASS}: no PostgreSQL server (no /usr/lib/postgresql/*/bin/initdb, \
             no pg_config); install it with: sudo apt-get install -y postgresql  \
             (or run: cargo xtask test --install-deps)"
        );
        return Ok(());
    }
    // Ctrl-C then still stops the cluster and removes its directory.
    postgres::catch_interrupts();
    let result = postgres::ThrowawayCluster::start().and_then(|cluster| {
        println!("xtask: {}, at {}", cluster.version(), cluster.masked_url());
        // One run, with both packages selected: their features are then the workspace's, so
        // the test binaries built by the first pass serve (`-p castanet-manager` alone would
        // build them all again). The castanet tests named below are the fail-over and the
        // copy of a farm from SQLite, through the real binaries; castanet tests that share a
        // name with a manager test run again too, harmlessly.
        let mut tests = Command::new("cargo");
        tests.args([
            "test",
            "-p",
            "castanet-manager",
            "-p",
            "castanet",
            "--no-fail-fast",
        ]);
        for name in manager_test_targets()? {
            tests.args(["--test", &name]);
        }
        tests.args([
            "--test",
            "migrate_db",
            "--test",
            "failover",
            "--test",
            "bench_soak",
        ]);
        tests.env(postgres::URL_ENV, cluster.url());
        status_of(tests)
    });
    record(failed, PASS, result);
    if postgres::interrupted() {
        bail!("interrupted");
    }
    Ok(())
}

/// The manager's integration test targets: the files of `crates/manager/tests`.
fn manager_test_targets() -> anyhow::Result<Vec<String>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manager/tests");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// The chaos run (crates/castanet/tests/chaos.rs): real manager and workers under a
/// seeded schedule of kills, stops and network cuts for `--minutes` (default 10).
fn chaos(args: &[String]) -> anyhow::Result<()> {
    let mut minutes = 10u64;
    let mut seed: Option<String> = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--minutes" => {
                minutes = rest
                    .next()
                    .and_then(|m| m.parse().ok())
                    .context("--minutes takes a whole number")?;
            }
            "--seed" => seed = Some(rest.next().context("--seed takes a number")?.clone()),
            other => bail!("unknown chaos option {other:?} (--minutes N, --seed S)"),
        }
    }
    ensure_system_packages(is_root())?;
    let mut command = Command::new("cargo");
    command
        .args([
            "test",
            "-p",
            "castanet",
            "--test",
            "chaos",
            "--",
            "--ignored",
        ])
        .args(["--exact", "chaos_run", "--nocapture"])
        .env("CASTANET_CHAOS_SECONDS", (minutes * 60).to_string());
    if let Some(seed) = &seed {
        command.env("CASTANET_CHAOS_SEED", seed);
    }
    println!("xtask: chaos run for {minutes} min");
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("the chaos run failed ({status}); its seed is printed above");
    }
    Ok(())
}
