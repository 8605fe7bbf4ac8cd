//! Who this worker is to the manager: registering for credentials, keeping them on disk,
//! and what it announces when it signs on.

use castanet_protocol::v1::{Capabilities, RegisterRequest, SignOnRequest};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::backoff::Backoff;
use crate::client::{ManagerClient, is_transient, unary};
use crate::config::WorkerConfig;
use crate::credentials::{self, Credentials};
use crate::error::WorkerError;
use crate::system;
use crate::tls::{Fingerprint, ManagerTrust};

/// The stored credentials, if any.
pub fn load(config: &WorkerConfig) -> Result<Option<Credentials>, WorkerError> {
    let creds = match credentials::load(&config.data_dir) {
        Ok(creds) => creds,
        // A damaged file is as good as none: the worker registers again and replaces it.
        Err(
            e @ (credentials::CredentialsError::Parse(_)
            | credentials::CredentialsError::Incomplete),
        ) => {
            tracing::warn!(
                path = %credentials::path_in(&config.data_dir).display(),
                error = %e,
                "ignoring damaged credentials; registering again"
            );
            None
        }
        Err(source) => return Err(credentials_error(config, source)),
    };
    if let Some(creds) = &creds
        && creds.manager_url != config.manager_url
    {
        tracing::info!(
            stored = %creds.manager_url,
            configured = %config.manager_url,
            "credentials were issued by another manager URL; using them anyway"
        );
    }
    Ok(creds)
}

/// Forgets the stored credentials.
pub fn forget(config: &WorkerConfig) -> Result<(), WorkerError> {
    credentials::delete(&config.data_dir).map_err(|source| credentials_error(config, source))
}

/// Registers with the farm's secret (retrying while the manager is unreachable) and saves
/// the new credentials. `Ok(None)` when `stop` fired first.
pub async fn register(
    config: &WorkerConfig,
    client: &ManagerClient,
    stop: &CancellationToken,
) -> Result<Option<Credentials>, WorkerError> {
    let secret = config
        .registration_secret
        .as_deref()
        .ok_or(WorkerError::NoRegistrationSecret)?;
    client.clear_credentials();
    let mut backoff = Backoff::default();
    let mut attempt = 0u32;
    let response = loop {
        attempt += 1;
        let request = unary(RegisterRequest {
            registration_secret: secret.to_string(),
            name: config.name.clone(),
            platform: system::platform().to_string(),
        });
        let mut api = client.api();
        let result = tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(None),
            result = api.register(request) => result,
        };
        let status = match result {
            Ok(response) => break response.into_inner(),
            Err(status) => status,
        };
        match status.code() {
            Code::PermissionDenied | Code::Unauthenticated => {
                return Err(WorkerError::RegistrationRejected(
                    status.message().to_string(),
                ));
            }
            _ if is_transient(&status) => {
                if let Some(refusal) = client.take_tls_refusal() {
                    return Err(WorkerError::ManagerCertificate(refusal));
                }
            }
            _ => return Err(WorkerError::rejected("Register", status)),
        }
        let delay = backoff.next_delay();
        if attempt == 1 {
            tracing::warn!(manager = %config.manager_url, %status, "cannot register with the manager yet; retrying");
        } else {
            tracing::debug!(attempt, ?delay, %status, "registration attempt failed");
        }
        tokio::select! {
            biased;
            () = stop.cancelled() => return Ok(None),
            () = tokio::time::sleep(delay) => {}
        }
    };
    if response.worker_id.is_empty() || response.token.is_empty() {
        return Err(WorkerError::rejected(
            "Register",
            tonic::Status::internal("the manager answered without a worker id or token"),
        ));
    }
    let creds = Credentials {
        worker_id: response.worker_id,
        token: response.token,
        manager_url: config.manager_url.clone(),
        manager_fingerprint: client.pinned_fingerprint().map(|f| f.to_string()),
    };
    credentials::save(&config.data_dir, &creds)
        .map_err(|source| credentials_error(config, source))?;
    tracing::info!(worker_id = %creds.worker_id, "registered with the manager");
    Ok(Some(creds))
}

/// How an https manager's certificate is checked: the configured fingerprint, else the one
/// pinned in the credentials, else trust on first use; a configured CA is checked as well.
/// None for plain http.
pub fn manager_trust(config: &WorkerConfig) -> Result<Option<ManagerTrust>, WorkerError> {
    if !crate::tls::is_https(&config.manager_url) {
        return Ok(None);
    }
    let configured = config
        .manager_fingerprint
        .as_deref()
        .map(str::parse::<Fingerprint>)
        .transpose()
        .map_err(|e| WorkerError::InvalidConfig(format!("manager fingerprint: {e}")))?;
    // A damaged credentials file is reported (and replaced) when the identity is loaded.
    let stored = credentials::load(&config.data_dir)
        .ok()
        .flatten()
        .and_then(|creds| creds.manager_fingerprint)
        .and_then(|text| text.parse::<Fingerprint>().ok());
    let trust = ManagerTrust::new(configured.or(stored), config.manager_ca.as_deref(), true)
        .map_err(|e| WorkerError::InvalidConfig(e.to_string()))?;
    Ok(Some(trust))
}

/// Keeps the pinned certificate fingerprint in the credentials, so a later start trusts
/// only that certificate. A failure to write is logged: the pin still holds in memory.
pub fn remember_pin(config: &WorkerConfig, client: &ManagerClient) {
    let Some(pinned) = client.pinned_fingerprint().map(|f| f.to_string()) else {
        return;
    };
    let Ok(Some(mut creds)) = credentials::load(&config.data_dir) else {
        return;
    };
    if creds.manager_fingerprint.as_deref() == Some(pinned.as_str()) {
        return;
    }
    creds.manager_fingerprint = Some(pinned);
    if let Err(e) = credentials::save(&config.data_dir, &creds) {
        tracing::warn!("cannot keep the manager's certificate fingerprint in the credentials: {e}");
    }
}

/// What the worker announces at every sign-on.
pub fn sign_on_request(config: &WorkerConfig, capabilities: &Capabilities) -> SignOnRequest {
    SignOnRequest {
        name: config.name.clone(),
        platform: system::platform().to_string(),
        supported_task_types: runnable_task_types(&config.task_types, capabilities),
        slots: config.slots,
        capabilities: Some(capabilities.clone()),
        software_version: env!("CARGO_PKG_VERSION").to_string(),
        // A restart request ends the run with RESTART_EXIT_CODE for the supervisor.
        can_restart: true,
        // Filled in by the session, which runs the checks at each sign-on.
        self_check_problems: Vec::new(),
        storage_mirror: config
            .no_shared_storage
            .as_ref()
            .map(|storage| storage.mirror_dir.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The configured task types this machine can run: `blender` and `ffmpeg` need the tool
/// to have been found (a worker without Blender must never be handed a render).
pub fn runnable_task_types(configured: &[String], capabilities: &Capabilities) -> Vec<String> {
    configured
        .iter()
        .filter(|task_type| match task_type.as_str() {
            tool @ ("blender" | "ffmpeg") => {
                let found = capabilities.software.contains_key(tool);
                if !found {
                    tracing::warn!(
                        task_type = tool,
                        "{tool} not found; not offering {tool} tasks"
                    );
                }
                found
            }
            _ => true,
        })
        .cloned()
        .collect()
}

fn credentials_error(config: &WorkerConfig, source: credentials::CredentialsError) -> WorkerError {
    WorkerError::Credentials {
        path: credentials::path_in(&config.data_dir),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tools_that_were_found_are_offered() {
        let configured: Vec<String> = ["blender", "ffmpeg", "file-management", "misc"]
            .map(String::from)
            .to_vec();
        let mut capabilities = Capabilities::default();
        capabilities
            .software
            .insert("ffmpeg".into(), "5.1.9".into());
        assert_eq!(
            runnable_task_types(&configured, &capabilities),
            ["ffmpeg", "file-management", "misc"]
        );
        capabilities
            .software
            .insert("blender".into(), "3.4.1".into());
        assert_eq!(runnable_task_types(&configured, &capabilities), configured);
    }
}
