//! LAN discovery for real: a manager in one network namespace, a worker in another joined
//! by a veth pair, the worker started without a manager URL. Needs root (ip netns); where
//! namespaces are not permitted the test says so loudly and skips. All traffic stays
//! inside the two namespaces.
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, ip, signal, wait_exit};

/// Two namespaces and a veth pair, removed again on drop.
struct Lan {
    manager_ns: String,
    worker_ns: String,
    veth: String,
}

impl Lan {
    /// `label` keeps the names of tests running at the same time apart.
    fn create(label: char) -> Result<Self, String> {
        let tag = format!("c{}{label}", std::process::id() % 100_000);
        // Built first, so whatever part of the set-up succeeded is removed again on drop.
        let (veth_m, veth_w) = (format!("{tag}vm"), format!("{tag}vw"));
        let lan = Lan {
            manager_ns: format!("{tag}m"),
            worker_ns: format!("{tag}w"),
            veth: veth_m.clone(),
        };
        ip(&["netns", "add", &lan.manager_ns])?;
        ip(&["netns", "add", &lan.worker_ns])?;
        ip(&[
            "link", "add", &veth_m, "type", "veth", "peer", "name", &veth_w,
        ])?;
        ip(&["link", "set", &veth_m, "netns", &lan.manager_ns])?;
        ip(&["link", "set", &veth_w, "netns", &lan.worker_ns])?;
        for (ns, veth, address) in [
            (&lan.manager_ns, &veth_m, "10.213.0.1/24"),
            (&lan.worker_ns, &veth_w, "10.213.0.2/24"),
        ] {
            ip(&["-n", ns, "addr", "add", address, "dev", veth])?;
            ip(&["-n", ns, "link", "set", veth, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", veth])?;
        }
        Ok(lan)
    }

    fn command(&self, ns: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, BIN]);
        command
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace removes its end of the veth pair, and with it the other end.
        let _ = ip(&["netns", "del", &self.manager_ns]);
        let _ = ip(&["netns", "del", &self.worker_ns]);
        // Only left in the root namespace when the set-up failed half-way.
        let _ = ip(&["link", "del", &self.veth]);
    }
}

#[test]
fn a_worker_without_a_url_finds_the_manager_across_the_lan() {
    let lan = match Lan::create('a') {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("\n*** SKIPPED: network namespaces are not permitted here ({why}) ***\n");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"lan-secret\"\nfarm_name = \"test-lan\"\n",
    )
    .unwrap();
    let mut manager = lan
        .command(&lan.manager_ns)
        .args(["manager", "--listen", "10.213.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("manager starts");
    let stdout = manager.stdout.take().unwrap();
    let url = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("castanet manager listening on ")
                .map(str::to_string)
        })
        .expect("manager prints its address");

    let mut worker = lan
        .command(&lan.worker_ns)
        .args([
            "worker",
            "--name",
            "lan-worker",
            "--discovery-timeout",
            "30",
            "--data-dir",
        ])
        .arg(dir.path().join("worker"))
        .env("CASTANET_REGISTRATION_SECRET", "lan-secret")
        .env_remove("CASTANET_MANAGER")
        .spawn()
        .expect("worker starts");

    // The job can only complete if the worker found the manager by itself.
    let started = Instant::now();
    let submit = lan
        .command(&lan.manager_ns)
        .args([
            "--manager",
            &url,
            "submit",
            "echo-sleep-test",
            "--set",
            "message=found you",
        ])
        .args([
            "--set",
            "sleep_repeats=1",
            "--set",
            "sleep_duration_seconds=0",
            "--wait",
        ])
        .output()
        .expect("submit runs");
    assert!(
        submit.status.success(),
        "the job completed on the discovered worker:\n{}\n{}",
        String::from_utf8_lossy(&submit.stdout),
        String::from_utf8_lossy(&submit.stderr)
    );
    eprintln!(
        "worker found the manager and ran the job in {:?}",
        started.elapsed()
    );

    signal(&worker, libc::SIGTERM);
    assert!(wait_exit(&mut worker, Duration::from_secs(20)).success());
    signal(&manager, libc::SIGTERM);
    assert!(wait_exit(&mut manager, Duration::from_secs(20)).success());
}

#[test]
fn a_worker_that_finds_no_manager_says_so() {
    let lan = match Lan::create('b') {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("\n*** SKIPPED: network namespaces are not permitted here ({why}) ***\n");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let output = lan
        .command(&lan.worker_ns)
        .args(["worker", "--discovery-timeout", "2", "--data-dir"])
        .arg(dir.path())
        .env_remove("CASTANET_MANAGER")
        .output()
        .expect("worker runs");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no Castanet manager found on the LAN"),
        "{stderr}"
    );
}

#[test]
fn a_discovered_manager_that_serves_tls_is_reached_over_https() {
    let lan = match Lan::create('c') {
        Ok(lan) => lan,
        Err(why) => {
            eprintln!("\n*** SKIPPED: network namespaces are not permitted here ({why}) ***\n");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("castanet-manager.toml");
    std::fs::write(
        &config,
        "registration_secret = \"lan-secret\"\nfarm_name = \"tls-lan\"\n\n[tls]\nenabled = true\n",
    )
    .unwrap();
    let mut manager = lan
        .command(&lan.manager_ns)
        .args(["manager", "--listen", "10.213.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .expect("manager starts");
    let mut lines = BufReader::new(manager.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let url = lines
        .find_map(|l| {
            l.strip_prefix("castanet manager listening on ")
                .map(str::to_string)
        })
        .expect("manager prints its address");
    assert!(url.starts_with("https://"), "{url}");
    let fingerprint = lines
        .find_map(|l| {
            l.strip_prefix("TLS certificate SHA-256 fingerprint: ")
                .map(str::to_string)
        })
        .expect("manager prints its certificate's fingerprint");

    // Found by mDNS, the worker connects with https and pins the certificate on first use.
    let data_dir = dir.path().join("worker");
    let mut worker = lan
        .command(&lan.worker_ns)
        .args([
            "worker",
            "--name",
            "tls-worker",
            "--discovery-timeout",
            "30",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("CASTANET_REGISTRATION_SECRET", "lan-secret")
        .env_remove("CASTANET_MANAGER")
        .spawn()
        .expect("worker starts");
    let submit = lan
        .command(&lan.manager_ns)
        .args(["--manager", &url, "--manager-fingerprint", &fingerprint])
        .args(["submit", "echo-sleep-test", "--set", "message=over tls"])
        .args(["--set", "sleep_duration_seconds=0", "--wait"])
        .output()
        .expect("submit runs");
    assert!(
        submit.status.success(),
        "the job completed on the discovered worker:\n{}\n{}",
        String::from_utf8_lossy(&submit.stdout),
        String::from_utf8_lossy(&submit.stderr)
    );
    let credentials = std::fs::read_to_string(data_dir.join("credentials.toml")).unwrap();
    assert!(
        credentials.contains(&format!("manager_fingerprint = \"{fingerprint}\""))
            && credentials.contains("manager_url = \"https://10.213.0.1:"),
        "{credentials}"
    );
    signal(&worker, libc::SIGTERM);
    assert!(wait_exit(&mut worker, Duration::from_secs(20)).success());
    signal(&manager, libc::SIGTERM);
    assert!(wait_exit(&mut manager, Duration::from_secs(20)).success());
}
