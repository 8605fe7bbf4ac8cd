//! `castanet manager token create|list|revoke` against a running manager in `token` mode
//! (a created token works at once, a revoked one stops at once, both are audited), and
//! `castanet manager secret show|rotate` against a running manager.
mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, ManagerProcess};

/// Runs `castanet manager --config CONFIG token ARGS…`; returns (success, stdout, stderr).
fn token_cmd(config: &Path, args: &[&str]) -> (bool, String, String) {
    manager_cmd(config, "token", args)
}

/// Runs `castanet manager --config CONFIG VERB ARGS…`; returns (success, stdout, stderr).
fn manager_cmd(config: &Path, verb: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .arg("manager")
        .arg("--config")
        .arg(config)
        .arg(verb)
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

fn status_of(url: &str, path: &str, token: Option<&str>) -> u16 {
    get(url, path, token).0
}

/// GETs `path` with an optional token; returns (status, body).
fn get(url: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut request = reqwest::Client::new().get(format!("{url}{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    })
}

#[test]
fn tokens_made_with_the_cli_open_and_close_a_token_mode_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"cli-secret\"\n\n[access]\nmode = \"token\"\n",
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    assert_eq!(status_of(&url, "/api/v3/jobs", None), 401);

    let (ok, viewer, err) = token_cmd(&config, &["create", "--name", "wall", "--role", "viewer"]);
    assert!(ok, "{err}");
    let viewer = viewer.trim();
    assert_eq!(viewer.len(), 64, "the token alone on stdout: {viewer:?}");
    assert!(err.contains("shown only now"), "{err}");
    assert_eq!(status_of(&url, "/api/v3/jobs", Some(viewer)), 200);
    assert_eq!(status_of(&url, "/api/v3/audit", Some(viewer)), 403);

    let (ok, _, err) = token_cmd(&config, &["create", "--name", "wall", "--role", "admin"]);
    assert!(!ok);
    assert!(err.contains("\"wall\" exists already"), "{err}");
    let (ok, _, err) = token_cmd(&config, &["create", "--name", "x", "--role", "root"]);
    assert!(!ok);
    assert!(err.contains("unknown role \"root\""), "{err}");

    let (ok, admin, err) = token_cmd(&config, &["create", "--name", "ops", "--role", "admin"]);
    assert!(ok, "{err}");
    let admin = admin.trim();
    let (ok, out, err) = token_cmd(&config, &["revoke", "wall"]);
    assert!(ok, "{err}");
    assert!(out.contains("revoked token \"wall\""), "{out}");
    assert_eq!(status_of(&url, "/api/v3/jobs", Some(viewer)), 401);
    let (status, audit) = get(&url, "/api/v3/audit", Some(admin));
    assert_eq!(status, 200, "{audit}");
    let audit: serde_json::Value = serde_json::from_str(&audit).unwrap();
    let cli_changes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "cli")
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        cli_changes,
        [
            "token revoke wall",
            "token create ops (admin)",
            "token create wall (viewer)"
        ]
    );

    let (ok, listed, err) = token_cmd(&config, &["list"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two tokens: {listed}");
    assert!(
        lines[0].starts_with("ID") && lines[0].contains("STATE"),
        "{listed}"
    );
    assert!(
        lines[1].contains("wall") && lines[1].contains("revoked"),
        "{listed}"
    );
    assert!(
        lines[2].contains("ops") && lines[2].contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(viewer) && !listed.contains(admin));

    let (ok, _, err) = token_cmd(&config, &["revoke", "wall"]);
    assert!(!ok);
    assert!(err.contains("no live API token \"wall\""), "{err}");
    manager.stop();
}

#[test]
fn the_secret_cli_rotates_the_secret_a_running_manager_enrols_with() {
    let dir = tempfile::tempdir().unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let (ok, shown, err) = manager_cmd(&manager.config, "secret", &["show"]);
    assert!(ok, "{err}");
    assert_eq!(shown.trim(), manager.secret);

    let (ok, rotated, err) = manager_cmd(&manager.config, "secret", &["rotate"]);
    assert!(ok, "{err}");
    let rotated = rotated.trim();
    assert_eq!(rotated.len(), 32);
    assert_ne!(rotated, manager.secret);
    assert!(err.contains("registered workers keep working"), "{err}");
    let (ok, shown, err) = manager_cmd(&manager.config, "secret", &["show"]);
    assert!(ok, "{err}");
    assert_eq!(shown.trim(), rotated);
    assert!(err.contains("rotated"), "{err}");
    // The running manager enrols with the new secret at once.
    let (status, body) = get(&manager.url, "/api/v3/registration-secret", None);
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["secret"], rotated);
    manager.stop();
}

/// Runs `castanet --manager URL ARGS…` with `CASTANET_TOKEN` set to `env_token` (or unset);
/// returns (success, stdout, stderr).
fn cli(url: &str, env_token: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut command = Command::new(BIN);
    command
        .args(["--manager", url])
        .args(args)
        .env("CASTANET_LOG", "warn")
        .env_remove("CASTANET_TOKEN");
    if let Some(token) = env_token {
        command.env("CASTANET_TOKEN", token);
    }
    let output = command.output().expect("castanet runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_cli_sends_its_token_and_says_which_one_a_refusal_needs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"cli-secret\"\n\n[access]\nmode = \"token\"\n",
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let (ok, viewer, err) = token_cmd(&config, &["create", "--name", "wall", "--role", "viewer"]);
    assert!(ok, "{err}");
    let (ok, submitter, err) =
        token_cmd(&config, &["create", "--name", "ci", "--role", "submitter"]);
    assert!(ok, "{err}");
    let (viewer, submitter) = (viewer.trim(), submitter.trim());

    let (ok, _, err) = cli(&url, None, &["jobs"]);
    assert!(!ok);
    assert!(
        err.contains("401") && err.contains("pass --token TOKEN or set CASTANET_TOKEN"),
        "{err}"
    );
    let (ok, _, err) = cli(&url, Some("not-a-token"), &["jobs"]);
    assert!(!ok);
    assert!(err.contains("unknown or revoked"), "{err}");

    // The environment variable carries a viewer token: reading works, submitting does not.
    let (ok, out, err) = cli(&url, Some(viewer), &["jobs"]);
    assert!(ok, "{err}");
    assert!(!out.contains("echo-sleep-test"), "{out}");
    let submit = [
        "submit",
        "echo-sleep-test",
        "--set",
        "message=hi",
        "--set",
        "sleep_repeats=1",
    ];
    let (ok, _, err) = cli(&url, Some(viewer), &submit);
    assert!(!ok);
    assert!(
        err.contains("403") && err.contains("role is not enough") && err.contains("submitter"),
        "{err}"
    );

    // --token wins over the environment.
    let mut with_flag = vec!["--token", submitter];
    with_flag.extend(submit);
    let (ok, out, err) = cli(&url, Some(viewer), &with_flag);
    assert!(ok, "{err}");
    let job = out
        .trim()
        .strip_prefix("submitted job ")
        .expect("the job id")
        .to_string();
    let (ok, out, err) = cli(&url, Some(viewer), &["jobs"]);
    assert!(ok, "{err}");
    assert!(out.contains(&job), "{out}");

    // Job actions go through the same client.
    let (ok, _, err) = cli(&url, Some(viewer), &["job", "pause", &job]);
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    let (ok, _, err) = cli(&url, Some(submitter), &["job", "delete", &job]);
    assert!(ok, "{err}");
    manager.stop();
}
