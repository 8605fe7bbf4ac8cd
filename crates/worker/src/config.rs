//! The worker's configuration: what the binary passes in, its defaults, and validation.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::WorkerError;
use crate::slot_gpus::SlotGpus;
use crate::system;
pub use crate::transfer::NoSharedStorage;

/// Task types a worker runs unless told otherwise (Flamenco's defaults, and `openjd`: tasks of
/// Open Job Description templates).
pub const DEFAULT_TASK_TYPES: [&str; 5] =
    ["blender", "ffmpeg", "file-management", "misc", "openjd"];

/// Everything `run` needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// e.g. "http://127.0.0.1:8080"; the scheme is optional ("host:port" means http).
    pub manager_url: String,
    /// The farm's registration secret; only needed when the worker has no credentials yet.
    pub registration_secret: Option<String>,
    /// Where `credentials.toml` lives.
    pub data_dir: PathBuf,
    /// The name shown in the dashboard (default: the hostname).
    pub name: String,
    /// How many tasks run at once (at least 1).
    pub slots: u32,
    /// Task types this worker accepts (minus `blender`/`ffmpeg` when those are not found).
    pub task_types: Vec<String>,
    /// The only directories under which the file commands (create, move, copy, delete) may
    /// act (empty: every file command is refused).
    pub storage_roots: Vec<PathBuf>,
    /// A command's program that prints nothing for this long is killed as hung.
    pub hung_after: Duration,
    /// On shutdown, how long running tasks may go on before they are aborted and handed
    /// back (zero: abort at once). No new work is taken meanwhile.
    pub shutdown_grace: Duration,
    /// On shutdown, let running tasks finish however long they take (overrides the grace).
    pub finish_tasks_on_shutdown: bool,
    /// How long one command may run unless it sets `timeout_seconds` (None: no limit);
    /// over it, the command is killed and fails as `timeout`.
    pub command_time_limit: Option<Duration>,
    /// https only: the SHA-256 fingerprint the manager's certificate must have. Without it
    /// (and without `manager_ca`) the first certificate seen is pinned in the credentials.
    pub manager_fingerprint: Option<String>,
    /// https only: PEM CA certificates the manager's certificate must be signed by.
    pub manager_ca: Option<PathBuf>,
    /// Which GPUs each slot's processes may use (`--slot-gpus`; see `slot_gpus.rs`).
    pub slot_gpus: SlotGpus,
    /// Without shared storage (`--no-shared-storage`): where the farm's paths are mirrored
    /// and inputs cached (see `transfer`). None: the worker sees the farm's shared storage.
    pub no_shared_storage: Option<NoSharedStorage>,
}

impl WorkerConfig {
    /// A configuration with the hostname as name, one slot and the default task types.
    pub fn with_defaults(manager_url: String, data_dir: PathBuf) -> Self {
        Self {
            manager_url,
            registration_secret: None,
            data_dir,
            name: system::hostname(),
            slots: 1,
            task_types: DEFAULT_TASK_TYPES.iter().map(|t| t.to_string()).collect(),
            storage_roots: Vec::new(),
            hung_after: crate::commands::DEFAULT_HUNG_AFTER,
            shutdown_grace: Duration::ZERO,
            finish_tasks_on_shutdown: false,
            command_time_limit: None,
            manager_fingerprint: None,
            manager_ca: None,
            slot_gpus: SlotGpus::Unpinned,
            no_shared_storage: None,
        }
    }

    /// Checks the fields and normalises the manager URL.
    pub(crate) fn validated(mut self) -> Result<Self, WorkerError> {
        self.manager_url = normalise_manager_urls(&self.manager_url)?;
        if let Some(fingerprint) = &self.manager_fingerprint {
            fingerprint
                .parse::<crate::tls::Fingerprint>()
                .map_err(|e| WorkerError::InvalidConfig(format!("manager fingerprint: {e}")))?;
        }
        self.name = self.name.trim().to_string();
        if self.name.is_empty() {
            return Err(WorkerError::InvalidConfig(
                "the worker name is empty".into(),
            ));
        }
        if self.slots == 0 {
            return Err(WorkerError::InvalidConfig(
                "slots must be at least 1".into(),
            ));
        }
        self.slot_gpus.check_slot_count(self.slots)?;
        self.task_types.retain(|t| !t.trim().is_empty());
        if self.task_types.is_empty() {
            return Err(WorkerError::InvalidConfig("no task types to run".into()));
        }
        if self.hung_after.is_zero() {
            return Err(WorkerError::InvalidConfig(
                "hung_after must be longer than zero".into(),
            ));
        }
        if let Some(root) = self.storage_roots.iter().find(|r| !r.is_absolute()) {
            return Err(WorkerError::InvalidConfig(format!(
                "storage root {} is not an absolute path",
                root.display()
            )));
        }
        if let Some(storage) = &mut self.no_shared_storage {
            for dir in [&mut storage.mirror_dir, &mut storage.cache_dir] {
                *dir = std::path::absolute(&*dir).map_err(|e| {
                    WorkerError::InvalidConfig(format!("directory {}: {e}", dir.display()))
                })?;
                std::fs::create_dir_all(&*dir).map_err(|e| {
                    WorkerError::InvalidConfig(format!("cannot make {}: {e}", dir.display()))
                })?;
            }
            // The file commands act on the farm's paths, which live in the mirror.
            self.storage_roots.push(storage.mirror_dir.clone());
        }
        if let Some(secret) = &self.registration_secret
            && secret.is_empty()
        {
            self.registration_secret = None;
        }
        Ok(self)
    }
}

/// A comma-separated list of managers (several managers sharing one database), each
/// normalised as [`normalise_manager_url`] does.
pub fn normalise_manager_urls(urls: &str) -> Result<String, WorkerError> {
    let listed: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    if listed.is_empty() {
        // Says what is wrong with an empty URL.
        return normalise_manager_url("");
    }
    let normalised: Result<Vec<String>, WorkerError> =
        listed.into_iter().map(normalise_manager_url).collect();
    Ok(normalised?.join(","))
}

/// Accepts "host", "host:port" or a full URL; returns an http(s) URL without a trailing slash.
pub fn normalise_manager_url(url: &str) -> Result<String, WorkerError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(WorkerError::InvalidConfig(
            "the manager URL is empty".into(),
        ));
    }
    let full = match url.split_once("://") {
        Some((scheme, _))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            url.to_string()
        }
        Some((scheme, _)) => {
            return Err(WorkerError::InvalidConfig(format!(
                "unsupported scheme {scheme:?} in manager URL {url:?} (use http or https)"
            )));
        }
        None => format!("http://{url}"),
    };
    let full = full.trim_end_matches('/').to_string();
    let host = full
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || host.starts_with(':') {
        return Err(WorkerError::InvalidConfig(format!(
            "no host in manager URL {url:?}"
        )));
    }
    Ok(full)
}

/// `$CASTANET_WORKER_HOME`, else `$XDG_DATA_HOME/castanet-worker`, else `~/.local/share/castanet-worker`
/// (falling back to the current directory when there is no home directory).
pub fn default_data_dir() -> PathBuf {
    data_dir_from(|name| std::env::var_os(name).filter(|v| !v.is_empty()))
}

fn data_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    if let Some(home) = var("CASTANET_WORKER_HOME") {
        return PathBuf::from(home);
    }
    if let Some(xdg) = var("XDG_DATA_HOME") {
        return PathBuf::from(xdg).join("castanet-worker");
    }
    let home = var("HOME").or_else(|| var("USERPROFILE"));
    match home {
        Some(home) => PathBuf::from(home).join(".local/share/castanet-worker"),
        None => PathBuf::from("castanet-worker"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_urls_are_normalised() {
        let cases = [
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("manager", "http://manager"),
            ("http://manager:8080/", "http://manager:8080"),
            ("  https://farm.lan  ", "https://farm.lan"),
            ("HTTP://x:1", "HTTP://x:1"),
        ];
        for (input, want) in cases {
            assert_eq!(
                normalise_manager_url(input).ok().as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(
            normalise_manager_urls("a:8080, http://b:8080/")
                .ok()
                .as_deref(),
            Some("http://a:8080,http://b:8080")
        );
        assert!(normalise_manager_urls(" , ").is_err());
        assert!(normalise_manager_urls("a:8080,ftp://b").is_err());
        for bad in ["", "   ", "ftp://x", "http://", "http:///path", ":8080"] {
            assert!(
                normalise_manager_url(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn data_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.into())
            }
        };
        assert_eq!(
            data_dir_from(env(&[
                ("CASTANET_WORKER_HOME", "/w"),
                ("XDG_DATA_HOME", "/x")
            ])),
            PathBuf::from("/w")
        );
        assert_eq!(
            data_dir_from(env(&[("XDG_DATA_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/castanet-worker")
        );
        assert_eq!(
            data_dir_from(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.local/share/castanet-worker")
        );
    }

    #[test]
    fn validation_rejects_unusable_configs() {
        let base = WorkerConfig::with_defaults("localhost:8080".into(), "/tmp/x".into());
        assert_eq!(base.slots, 1);
        assert_eq!(base.task_types.len(), 5);
        let ok = base.clone().validated().ok();
        assert_eq!(
            ok.map(|c| c.manager_url),
            Some("http://localhost:8080".to_string())
        );

        let https = WorkerConfig {
            manager_url: "https://farm".into(),
            ..base.clone()
        };
        assert!(https.validated().is_ok());
        let bad_fingerprint = WorkerConfig {
            manager_fingerprint: Some("AB:CD".into()),
            ..base.clone()
        };
        assert!(bad_fingerprint.validated().is_err());
        let zero_slots = WorkerConfig {
            slots: 0,
            ..base.clone()
        };
        assert!(zero_slots.validated().is_err());
        let no_name = WorkerConfig {
            name: " ".into(),
            ..base.clone()
        };
        assert!(no_name.validated().is_err());
        let empty_secret = WorkerConfig {
            registration_secret: Some(String::new()),
            ..base
        };
        assert_eq!(
            empty_secret
                .validated()
                .ok()
                .and_then(|c| c.registration_secret),
            None
        );
    }
}
