//! How the CLI and the worker trust a manager that serves HTTPS: a pinned SHA-256
//! certificate fingerprint and/or a CA file, from global flags or the environment.
use std::path::PathBuf;

use anyhow::Context;
use castanet_worker::{Fingerprint, ManagerTrust};
use clap::Args;

#[derive(Args, Clone, Debug, Default)]
pub struct TrustArgs {
    /// https: the SHA-256 fingerprint the manager's certificate must have
    /// (`castanet manager fingerprint` prints it). A worker without one pins the first
    /// certificate it sees.
    #[arg(long, global = true, env = "CASTANET_MANAGER_FINGERPRINT")]
    pub manager_fingerprint: Option<String>,
    /// https: a PEM file of CA certificates the manager's certificate must be signed by.
    #[arg(long, global = true, env = "CASTANET_MANAGER_CA", value_name = "FILE")]
    pub manager_ca: Option<PathBuf>,
}

impl TrustArgs {
    /// The CLI's trust: never on first use — an unknown certificate is refused with its
    /// fingerprint in the message, for the user to check and pass.
    pub fn cli_trust(&self) -> anyhow::Result<ManagerTrust> {
        let pin = self
            .manager_fingerprint
            .as_deref()
            .map(str::parse::<Fingerprint>)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--manager-fingerprint: {e}"))?;
        Ok(ManagerTrust::new(pin, self.manager_ca.as_deref(), false)?)
    }
}

/// An HTTP client whose HTTPS connections check the manager's certificate with `trust`.
pub fn http_client(trust: &ManagerTrust) -> anyhow::Result<reqwest::Client> {
    let tls = trust.client_config(&[b"http/1.1"])?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .context("cannot set up the HTTP client")
}
