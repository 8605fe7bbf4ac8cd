//! The farm's variables from a loaded config: the configured ones over the defaults, plus
//! the job storage directory.
use super::ManagerConfig;
use crate::variables::{Variables, manager_platform};

impl Variables {
    /// The farm's variables: the configured ones over the defaults, plus `{jobs}` = the
    /// directory job files are checked out to (`<shared storage>/jobs` with Shaman, else the
    /// shared storage itself), as an absolute path.
    pub fn from_config(config: &ManagerConfig) -> Self {
        let storage = config.shaman.shared_storage_path(&config.base_dir);
        let jobs = if config.shaman.enabled {
            storage.join("jobs")
        } else {
            storage
        };
        let jobs = std::path::absolute(&jobs).unwrap_or(jobs);
        Variables::new(
            &config.variables,
            Some(&jobs.to_string_lossy()),
            &manager_platform(),
        )
    }
}
