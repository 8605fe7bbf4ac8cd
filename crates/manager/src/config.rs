//! The manager's TOML configuration: where it listens, where it keeps its data, the
//! farm's registration secret. Written with comments on first start.
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;
use serde::{Deserialize, Serialize};

mod access;
mod variables;

pub use access::{AccessConfig, AccessMode};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write config file {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagerConfig {
    /// Shown in the API and used for discovery.
    #[serde(default = "default_farm_name")]
    pub farm_name: String,
    /// One port for gRPC (workers), REST, events and the dashboard.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The database: an SQLite file (`sqlite:FILE` or a path; relative paths are relative to
    /// the config file) or a PostgreSQL server (`postgres://user:password@host/db`).
    #[serde(default = "default_database")]
    pub database: PathBuf,
    /// Task logs, previews and uploads live here; relative to the config file.
    #[serde(default = "default_storage_root")]
    pub storage_root: PathBuf,
    /// Workers must present this to register.
    pub registration_secret: String,
    /// Custom job-type scripts (`*.js`); relative to the config file.
    #[serde(default = "default_scripts_dir")]
    pub scripts_dir: PathBuf,
    /// The Flamenco version the manager reports as `shortversion`, so the Blender add-on
    /// of that version connects without a mismatch prompt.
    #[serde(default = "default_flamenco_compat_version")]
    pub flamenco_compat_version: String,
    /// Job-type script limits.
    #[serde(default = "default_script_time_limit_ms")]
    pub script_time_limit_ms: u64,
    #[serde(default = "default_script_memory_limit_mb")]
    pub script_memory_limit_mb: u64,
    /// All scripts together: `script_memory_total_mb / script_memory_limit_mb` (at least
    /// one) evaluate at once, the rest wait their turn.
    #[serde(default = "default_script_memory_total_mb")]
    pub script_memory_total_mb: u64,

    /// Failure handling and timeouts (see docs/scheduling.md).
    #[serde(default = "default_task_timeout_seconds")]
    pub task_timeout_seconds: u64,
    #[serde(default = "default_worker_timeout_seconds")]
    pub worker_timeout_seconds: u64,
    #[serde(default = "default_startup_grace_seconds")]
    pub startup_grace_seconds: u64,
    /// How often sleep schedules are checked; 0 turns the schedule monitor off.
    #[serde(default = "default_sleep_schedule_check_seconds")]
    pub sleep_schedule_check_seconds: u64,
    #[serde(default = "default_failure_count")]
    pub task_fail_after_softfail_count: u64,
    #[serde(default = "default_failure_count")]
    pub blocklist_threshold: u64,
    #[serde(default = "default_job_fail_percent")]
    pub job_fail_percent: u64,

    /// The backoff before a failed task is retried (`[retries]` table).
    #[serde(default)]
    pub retries: crate::scheduler::RetryConfig,

    /// Counted resource pools shared by the farm (`[resources]` table): name = units.
    #[serde(default)]
    pub resources: std::collections::BTreeMap<String, u32>,

    /// Shared storage and the Shaman upload store (`[shaman]` table).
    #[serde(default)]
    pub shaman: crate::shaman::ShamanConfig,

    /// Who may use the REST API (`[access]` table; see docs/operations.md).
    #[serde(default)]
    pub access: AccessConfig,

    /// Task-log retention and removal of long-offline workers (`[retention]` table).
    #[serde(default)]
    pub retention: crate::monitor::RetentionConfig,

    /// HTTPS and gRPC over TLS (`[tls]` table; plain HTTP unless enabled).
    #[serde(default)]
    pub tls: crate::tls::TlsConfig,

    /// Live preview videos of render jobs (`[preview_video]` table).
    #[serde(default)]
    pub preview_video: crate::preview_video::PreviewVideoConfig,

    /// Path and program variables (`[variables.NAME]` tables); built-in defaults for
    /// `blender`, `blenderArgs` and `ffmpeg` apply to names not listed (see docs/job-types.md).
    #[serde(default)]
    pub variables: std::collections::BTreeMap<String, crate::variables::VariableConfig>,

    /// Delivery settings and the SMTP server of notifications (`[notify]` table).
    #[serde(default)]
    pub notify: crate::notify::NotifySettings,

    /// Notification rules (`[[notifications]]` tables; more are made over the API).
    #[serde(default)]
    pub notifications: Vec<crate::notify::RuleInput>,

    /// Directory of the config file; paths above are resolved against it.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

fn default_farm_name() -> String {
    "castanet".into()
}
fn default_listen() -> String {
    "0.0.0.0:8080".into()
}
fn default_database() -> PathBuf {
    "castanet-manager.sqlite".into()
}
fn default_storage_root() -> PathBuf {
    "castanet-storage".into()
}
fn default_scripts_dir() -> PathBuf {
    "scripts".into()
}
fn default_flamenco_compat_version() -> String {
    "3.9-beta1".into()
}
fn default_script_time_limit_ms() -> u64 {
    5_000
}
fn default_script_memory_limit_mb() -> u64 {
    // A 100,000-frame job needs about 80 MB of script memory; this is only an upper bound.
    512
}
fn default_script_memory_total_mb() -> u64 {
    // Two scripts at the default limit: one per core of a small manager host.
    1024
}

fn default_task_timeout_seconds() -> u64 {
    600
}
fn default_worker_timeout_seconds() -> u64 {
    60
}
fn default_startup_grace_seconds() -> u64 {
    300
}
fn default_sleep_schedule_check_seconds() -> u64 {
    10
}
fn default_failure_count() -> u64 {
    3
}
fn default_job_fail_percent() -> u64 {
    10
}

/// A fresh random secret, hex encoded (128 bits).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl ManagerConfig {
    /// Defaults with a freshly generated registration secret, rooted at `base_dir`.
    pub fn new_default(base_dir: &Path) -> Self {
        Self {
            farm_name: default_farm_name(),
            listen: default_listen(),
            database: default_database(),
            storage_root: default_storage_root(),
            registration_secret: generate_secret(),
            scripts_dir: default_scripts_dir(),
            flamenco_compat_version: default_flamenco_compat_version(),
            script_time_limit_ms: default_script_time_limit_ms(),
            script_memory_limit_mb: default_script_memory_limit_mb(),
            script_memory_total_mb: default_script_memory_total_mb(),
            task_timeout_seconds: default_task_timeout_seconds(),
            worker_timeout_seconds: default_worker_timeout_seconds(),
            startup_grace_seconds: default_startup_grace_seconds(),
            sleep_schedule_check_seconds: default_sleep_schedule_check_seconds(),
            task_fail_after_softfail_count: default_failure_count(),
            blocklist_threshold: default_failure_count(),
            job_fail_percent: default_job_fail_percent(),
            retries: crate::scheduler::RetryConfig::default(),
            resources: std::collections::BTreeMap::new(),
            shaman: crate::shaman::ShamanConfig::default(),
            access: AccessConfig::default(),
            retention: crate::monitor::RetentionConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            preview_video: crate::preview_video::PreviewVideoConfig::default(),
            variables: std::collections::BTreeMap::new(),
            notify: crate::notify::NotifySettings::default(),
            notifications: Vec::new(),
            base_dir: base_dir.to_path_buf(),
        }
    }

    /// Loads `path`, or writes a commented default there first when it does not exist.
    /// Returns the config and whether it was just created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), ConfigError> {
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        if !path.exists() {
            let config = Self::new_default(&base_dir);
            config.write_commented(path)?;
            return Ok((config, true));
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        if config.registration_secret.trim().is_empty() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: "registration_secret must not be empty".into(),
            });
        }
        // The API takes only plain-word platforms: one named otherwise could not be asked for.
        for platform in config.shaman.locations.keys() {
            if let Err(why) = crate::variables::check_platform_name(platform) {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("[shaman.locations] names platform {platform:?}: {why}"),
                });
            }
        }
        if let Err(why) = config.retries.check() {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: format!("[retries]: {why}"),
            });
        }
        for name in config.resources.keys() {
            if let Err(why) = crate::scheduler::check_pool_name(name) {
                return Err(ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: format!("[resources]: {why}"),
                });
            }
        }
        if let Err(why) = crate::notify::Notifier::new(
            &config.notify,
            &config.notifications,
            &config.farm_name,
            &base_dir,
        ) {
            return Err(ConfigError::Parse {
                path: path.to_path_buf(),
                message: why,
            });
        }
        config.base_dir = base_dir;
        Ok((config, false))
    }

    /// Writes this config as a commented TOML file.
    pub fn write_commented(&self, path: &Path) -> Result<(), ConfigError> {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let text = format!(
            "# Castanet manager configuration.\n\
             # Relative paths are relative to the directory of this file.\n\n\
             # Name of this farm, shown in the API and advertised on the LAN.\n\
             farm_name = {farm}\n\n\
             # Address and port for everything: worker gRPC, REST API, events, dashboard.\n\
             listen = {listen}\n\n\
             # The database: an SQLite file (WAL mode; `sqlite:FILE` or a path), or a PostgreSQL\n\
             # server: \"postgres://user:password@host:5432/castanet\".\n\
             database = {db}\n\n\
             # Task logs, last-rendered previews and uploads.\n\
             storage_root = {storage}\n\n\
             # Custom job-type scripts (*.js); they override built-ins of the same name.\n\
             scripts_dir = {scripts}\n\n\
             # Workers need this secret to register. Keep it private; change it to stop new\n\
             # registrations (registered workers keep their own tokens).\n\
             registration_secret = {secret}\n\n\
             # Version reported as `shortversion` to the Flamenco Blender add-on; set it to the\n\
             # add-on's version to avoid its version-mismatch prompt.\n\
             flamenco_compat_version = {compat}\n\n\
             # Limits for job-type scripts: a script that runs longer or allocates more is stopped.\n\
             script_time_limit_ms = {time}\n\
             script_memory_limit_mb = {mem}\n\
             # Memory for all scripts together: this divided by the limit above is how many\n\
             # run at once (at least one); more wait their turn (up to a minute, then 503).\n\
             script_memory_total_mb = {mem_total}\n\n\
             # A task without any update from its worker for this long is failed softly and\n\
             # retried elsewhere. 0 disables task and worker timeouts.\n\
             task_timeout_seconds = {task_timeout}\n\n\
             # A worker whose connection is lost and not back for this long goes to `error`;\n\
             # its tasks are queued again. It recovers when it reconnects.\n\
             worker_timeout_seconds = {worker_timeout}\n\n\
             # After a manager start, timeouts wait this long so workers can reconnect first.\n\
             startup_grace_seconds = {grace}\n\n\
             # A task failed by this many different workers fails for good.\n\
             task_fail_after_softfail_count = {fail_after}\n\n\
             # A worker that failed this many tasks of one type in a job is blocklisted for them.\n\
             blocklist_threshold = {blocklist}\n\n\
             # A job fails when this share (in %) of its tasks failed.\n\
             job_fail_percent = {fail_percent}\n",
            farm = quote(&self.farm_name),
            listen = quote(&self.listen),
            db = quote(&self.database.to_string_lossy()),
            storage = quote(&self.storage_root.to_string_lossy()),
            scripts = quote(&self.scripts_dir.to_string_lossy()),
            secret = quote(&self.registration_secret),
            compat = quote(&self.flamenco_compat_version),
            time = self.script_time_limit_ms,
            mem = self.script_memory_limit_mb,
            mem_total = self.script_memory_total_mb,
            task_timeout = self.task_timeout_seconds,
            worker_timeout = self.worker_timeout_seconds,
            grace = self.startup_grace_seconds,
            fail_after = self.task_fail_after_softfail_count,
            blocklist = self.blocklist_threshold,
            fail_percent = self.job_fail_percent,
        );
        // Tables come after every top-level key.
        let text = text + &self.retries.commented_toml();
        let text = text + &crate::scheduler::resources_commented_toml(&self.resources);
        let text = text + &self.shaman.commented_toml();
        let text = text + &self.access.commented_toml();
        let text = text + &self.retention.commented_toml();
        let text = text + &self.tls.commented_toml();
        let text = text + &self.preview_video.commented_toml();
        let text = text + &crate::variables::commented_toml(&self.variables);
        let text = text + &self.notify.commented_toml();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| ConfigError::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(path, text).map_err(|source| ConfigError::Write {
            path: path.to_path_buf(),
            source,
        })
    }

    fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The SQLite file the config names, relative paths resolved; for a PostgreSQL URL the
    /// resolved text is meaningless: use [`ManagerConfig::database_location`].
    pub fn database_path(&self) -> PathBuf {
        self.resolve(&self.database)
    }

    /// The database: `sqlite:FILE` or a plain path (SQLite), or `postgres://…`.
    pub fn database_location(&self) -> crate::store::DatabaseLocation {
        crate::store::DatabaseLocation::parse(&self.database.to_string_lossy(), &self.base_dir)
    }
    pub fn storage_path(&self) -> PathBuf {
        self.resolve(&self.storage_root)
    }
    pub fn scripts_path(&self) -> PathBuf {
        self.resolve(&self.scripts_dir)
    }
    /// How many job-type scripts may evaluate at once.
    pub fn concurrent_scripts(&self) -> usize {
        let each = self.script_memory_limit_mb.max(1);
        usize::try_from(self.script_memory_total_mb / each)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    pub fn script_time_limit(&self) -> Duration {
        Duration::from_millis(self.script_time_limit_ms)
    }
    /// The failure limits for the store.
    pub fn failure_policy(&self) -> crate::state::FailurePolicy {
        crate::state::FailurePolicy {
            fail_after_workers: self.task_fail_after_softfail_count.max(1),
            blocklist_threshold: self.blocklist_threshold.max(1),
            job_fail_percent: self.job_fail_percent.clamp(1, 100),
            retry_backoff_base: self.retries.base(),
            retry_backoff_cap: self.retries.cap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_start_writes_a_commented_config_that_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("castanet-manager.toml");
        let (created, was_new) = ManagerConfig::load_or_create(&path).unwrap();
        assert!(was_new);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# Workers need this secret"));
        let (loaded, was_new) = ManagerConfig::load_or_create(&path).unwrap();
        assert!(!was_new);
        assert_eq!(loaded.registration_secret, created.registration_secret);
        assert_eq!(loaded.registration_secret.len(), 32);
        assert_eq!(
            loaded.database_path(),
            dir.path().join("castanet-manager.sqlite")
        );
    }

    #[test]
    fn unknown_keys_and_empty_secret_are_rejected_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(
            &path,
            "registration_secret = \"x\"\nlisten_adress = \"1\"\n",
        )
        .unwrap();
        let err = ManagerConfig::load_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("m.toml") && err.contains("listen_adress"),
            "{err}"
        );
        std::fs::write(&path, "registration_secret = \" \"\n").unwrap();
        let err = ManagerConfig::load_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("registration_secret"), "{err}");
    }

    #[test]
    fn a_platform_the_api_would_refuse_is_rejected_with_the_file_table_and_platform_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        for platform in ["linux.arm", "linux arm", ""] {
            std::fs::write(
                &path,
                format!(
                    "registration_secret = \"x\"\n[shaman.locations]\n{platform:?} = \"/mnt/jobs\"\n"
                ),
            )
            .unwrap();
            let err = ManagerConfig::load_or_create(&path)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("m.toml")
                    && err.contains("[shaman.locations]")
                    && err.contains(&format!("{platform:?}"))
                    && err.contains("plain word"),
                "{err}"
            );
        }
        std::fs::write(
            &path,
            "registration_secret = \"x\"\n[shaman.locations]\nlinux-arm = \"/mnt/jobs\"\n",
        )
        .unwrap();
        ManagerConfig::load_or_create(&path).expect("a plain-word platform loads");
        // Variables name their platforms by fixed keys; any other is refused already.
        std::fs::write(
            &path,
            "registration_secret = \"x\"\n[variables.render]\n\"linux.arm\" = \"/r\"\n",
        )
        .unwrap();
        let err = ManagerConfig::load_or_create(&path)
            .unwrap_err()
            .to_string();
        assert!(err.contains("m.toml") && err.contains("linux.arm"), "{err}");
    }
}
