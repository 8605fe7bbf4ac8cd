//! The manager over TLS on loopback: a generated self-signed certificate that workers pin
//! on first use and the CLI pins by flag, a changed certificate refused; and a certificate
//! signed by a test CA that workers and the CLI verify, a wrong CA or fingerprint refused.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use castanet_worker::Fingerprint;
use common::{BIN, ManagerProcess, WorkerProcess, wait_exit};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

/// Runs `castanet ARGS…`; returns (success, stdout, stderr).
fn castanet(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .env("CASTANET_LOG", "warn")
        .env_remove("CASTANET_MANAGER_FINGERPRINT")
        .env_remove("CASTANET_MANAGER_CA")
        .output()
        .expect("castanet runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn fingerprint_of(config: &Path) -> String {
    let config = config.to_str().expect("utf-8 path");
    let (ok, out, err) = castanet(&["manager", "--config", config, "fingerprint"]);
    assert!(ok, "{err}");
    out.trim().to_string()
}

/// A worker that must be refused: it exits non-zero by itself; returns its stderr.
fn refused_worker(url: &str, secret: &str, data_dir: &Path, extra: &[&str]) -> String {
    let mut child = Command::new(BIN)
        .args(["worker", "--manager", url, "--name", "refused"])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("CASTANET_REGISTRATION_SECRET", secret)
        .env("CASTANET_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("worker starts");
    let status = wait_exit(&mut child, Duration::from_secs(30));
    assert!(!status.success(), "a refused worker must fail");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr read");
    stderr
}

/// Waits until the worker in `data_dir` has registered; returns its credentials file.
fn wait_for_credentials(data_dir: &Path) -> toml::Table {
    let path = data_dir.join("credentials.toml");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return toml::from_str(&text).expect("credentials parse");
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not register within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn workers_pin_the_generated_certificate_and_refuse_a_changed_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"tls-secret\"\n\n[tls]\nenabled = true\n",
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    assert!(manager.url.starts_with("https://"), "{}", manager.url);
    assert!(dir.path().join("castanet-tls/manager-cert.pem").exists());
    let fingerprint = fingerprint_of(&config);
    assert_eq!(
        fingerprint.parse::<Fingerprint>().map(|f| f.to_string()),
        Ok(fingerprint.clone())
    );

    // The CLI trusts only a certificate it was told about, and says what it saw.
    let url = manager.url.as_str();
    let (ok, _, err) = castanet(&["--manager", url, "jobs"]);
    assert!(!ok);
    assert!(
        err.contains("not trusted yet") && err.contains(&fingerprint),
        "{err}"
    );
    let plain_url = url.replacen("https://", "http://", 1);
    let (ok, _, err) = castanet(&["--manager", &plain_url, "jobs"]);
    assert!(!ok);
    assert!(err.contains("400") && err.contains("use https://"), "{err}");
    let wrong = Fingerprint::of(b"another certificate").to_string();
    let (ok, _, err) = castanet(&["--manager", url, "--manager-fingerprint", &wrong, "jobs"]);
    assert!(!ok);
    assert!(
        err.contains("does not match the pinned fingerprint"),
        "{err}"
    );

    // A worker pins the certificate on first use, keeps the pin, and runs a job over TLS
    // that the CLI submits and follows over HTTPS.
    let data_dir = dir.path().join("worker");
    let worker = WorkerProcess::start(&manager, &data_dir, "pinned", 1);
    let credentials = wait_for_credentials(&data_dir);
    assert_eq!(
        credentials
            .get("manager_fingerprint")
            .and_then(|v| v.as_str()),
        Some(fingerprint.as_str())
    );
    let (ok, out, err) = castanet(&[
        "--manager",
        url,
        "--manager-fingerprint",
        &fingerprint,
        "submit",
        "echo-sleep-test",
        "--set",
        "message=over-tls",
        "--set",
        "sleep_duration_seconds=0",
        "--wait",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("completed"), "{out}");
    worker.stop();

    // A worker given a wrong fingerprint never registers.
    let stderr = refused_worker(
        url,
        &manager.secret,
        &dir.path().join("wrong-pin"),
        &["--manager-fingerprint", &wrong],
    );
    assert!(
        stderr.contains("refusing the manager: its TLS certificate")
            && stderr.contains("does not match the pinned fingerprint")
            && stderr.contains(&fingerprint),
        "{stderr}"
    );
    assert!(!dir.path().join("wrong-pin/credentials.toml").exists());

    // The manager comes back with a new certificate: the pinned worker refuses it.
    let secret = manager.secret.clone();
    manager.stop();
    std::fs::remove_dir_all(dir.path().join("castanet-tls")).unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let replaced = fingerprint_of(&config);
    assert_ne!(replaced, fingerprint);
    let stderr = refused_worker(&manager.url, &secret, &data_dir, &[]);
    assert!(
        stderr.contains("does not match the pinned fingerprint")
            && stderr.contains(&replaced)
            && stderr.contains(&fingerprint),
        "{stderr}"
    );
    // The stored pin is untouched by the refusal.
    let credentials = wait_for_credentials(&data_dir);
    assert_eq!(
        credentials
            .get("manager_fingerprint")
            .and_then(|v| v.as_str()),
        Some(fingerprint.as_str())
    );
    // Told the new fingerprint, the worker signs on and keeps the new pin.
    let worker = Command::new(BIN)
        .args(["worker", "--manager", &manager.url, "--name", "pinned"])
        .args(["--manager-fingerprint", &replaced])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("CASTANET_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker starts");
    let worker = WorkerProcess {
        child: worker,
        name: "pinned".into(),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while wait_for_credentials(&data_dir)
        .get("manager_fingerprint")
        .and_then(|v| v.as_str())
        != Some(replaced.as_str())
    {
        assert!(Instant::now() < deadline, "the new pin was not stored");
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.stop();
    manager.stop();
}

/// GETs JSON from a manager whose certificate `ca` signed.
fn get_json(url: &str, ca: &Path, path: &str) -> serde_json::Value {
    let trust = castanet_worker::ManagerTrust::new(None, Some(ca), false).unwrap();
    let tls = trust.client_config(&[b"http/1.1"]).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .build()
            .unwrap();
        let response = client.get(format!("{url}{path}")).send().await.unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    })
}

/// A CA certificate (PEM) and the issuer to sign with.
fn test_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

#[test]
fn workers_and_the_cli_verify_a_certificate_signed_by_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_pem, issuer) = test_ca("Castanet test CA");
    let (other_ca_pem, _) = test_ca("Someone else's CA");
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), &ca_pem).unwrap();
    std::fs::write(dir.path().join("other-ca.pem"), &other_ca_pem).unwrap();
    std::fs::write(dir.path().join("cert.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), server_key.serialize_pem()).unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"ca-secret\"\n\n[tls]\nenabled = true\n\
         cert_file = \"cert.pem\"\nkey_file = \"key.pem\"\n",
    )
    .unwrap();
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.as_str();
    // The manager and the clients spell the fingerprint the same way.
    assert_eq!(
        fingerprint_of(&config),
        Fingerprint::of(server_cert.der()).to_string()
    );
    assert!(!dir.path().join("castanet-tls").exists());

    let ca = dir.path().join("ca.pem");
    let ca = ca.to_str().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    let other_ca = other_ca.to_str().unwrap();
    let (ok, out, err) = castanet(&["--manager", url, "--manager-ca", ca, "jobs"]);
    assert!(ok, "{out}\n{err}");
    let (ok, _, err) = castanet(&["--manager", url, "--manager-ca", other_ca, "jobs"]);
    assert!(!ok);
    assert!(err.contains("does not verify against the CA"), "{err}");

    // The worker verifies the chain; with a CA nothing needs pinning.
    let data_dir = dir.path().join("worker");
    let mut worker = Command::new(BIN)
        .args([
            "worker",
            "--manager",
            url,
            "--name",
            "ca-checked",
            "--manager-ca",
            ca,
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("CASTANET_REGISTRATION_SECRET", &manager.secret)
        .env("CASTANET_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("worker starts");
    let credentials = wait_for_credentials(&data_dir);
    // Over TLS the manager still knows who it talks to: the worker's address, and the
    // client address in the audit log.
    let ca_path = dir.path().join("ca.pem");
    let worker_id = credentials["worker_id"].as_str().unwrap();
    let detail = get_json(
        url,
        &ca_path,
        &format!("/api/v3/worker-mgt/workers/{worker_id}"),
    );
    assert_eq!(detail["ip_address"], "127.0.0.1", "{detail}");
    let (ok, out, err) = castanet(&[
        "--manager",
        url,
        "--manager-ca",
        ca,
        "submit",
        "echo-sleep-test",
        "--set",
        "message=audited",
    ]);
    assert!(ok, "{out}\n{err}");
    let audit = get_json(url, &ca_path, "/api/v3/audit");
    let newest = &audit["entries"][0];
    assert_eq!(newest["path"], "/api/v3/jobs", "{audit}");
    assert!(
        newest["remote"]
            .as_str()
            .unwrap_or("")
            .starts_with("127.0.0.1"),
        "{audit}"
    );
    assert!(
        credentials.get("manager_fingerprint").is_none(),
        "{credentials:?}"
    );
    common::signal(&worker, libc::SIGTERM);
    assert!(wait_exit(&mut worker, Duration::from_secs(20)).success());

    let stderr = refused_worker(
        url,
        &manager.secret,
        &dir.path().join("other"),
        &["--manager-ca", other_ca],
    );
    assert!(
        stderr.contains("does not verify against the CA"),
        "{stderr}"
    );
    let wrong = Fingerprint::of(b"not the certificate").to_string();
    let stderr = refused_worker(
        url,
        &manager.secret,
        &dir.path().join("pinned-wrong"),
        &["--manager-ca", ca, "--manager-fingerprint", &wrong],
    );
    assert!(
        stderr.contains("does not match the pinned fingerprint"),
        "{stderr}"
    );
    manager.stop();
}
