//! The `[shaman]` table of the manager config: the shared storage and its upload store.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ShamanConfig {
    /// The farm's shared storage as the manager sees it; relative to the config file.
    pub shared_storage: PathBuf,
    /// Accept uploads from the Blender add-on (otherwise it copies files to the share itself).
    pub enabled: bool,
    /// Uploaded files no checkout has used for this long are deleted.
    pub gc_max_age_days: u64,
    /// How often unused files are looked for.
    pub gc_period_minutes: u64,
    /// The shared storage's path on each platform ("linux", "windows", "darwin", or "all"),
    /// as told to submitters; default: the manager's own path.
    pub locations: BTreeMap<String, String>,
}

impl Default for ShamanConfig {
    fn default() -> Self {
        Self {
            shared_storage: PathBuf::from("castanet-shared"),
            enabled: true,
            gc_max_age_days: 31,
            gc_period_minutes: 60,
            locations: BTreeMap::new(),
        }
    }
}

impl ShamanConfig {
    pub fn shared_storage_path(&self, base_dir: &Path) -> PathBuf {
        if self.shared_storage.is_absolute() {
            self.shared_storage.clone()
        } else {
            base_dir.join(&self.shared_storage)
        }
    }

    /// The shared storage location a submitter on `platform` should use.
    pub fn location_for(&self, platform: &str, base_dir: &Path) -> String {
        if let Some(location) = self
            .locations
            .get(platform)
            .or_else(|| self.locations.get("all"))
        {
            return location.clone();
        }
        let path = self.shared_storage_path(base_dir);
        std::fs::canonicalize(&path)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    pub fn gc_max_age(&self) -> Duration {
        Duration::from_secs(self.gc_max_age_days.saturating_mul(24 * 3600))
    }

    pub fn gc_period(&self) -> Duration {
        Duration::from_secs(self.gc_period_minutes.max(1).saturating_mul(60))
    }

    /// This table as commented TOML, for the default config file.
    pub fn commented_toml(&self) -> String {
        let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
        let mut text = format!(
            "\n# Shared storage and Shaman, the upload store the Blender add-on sends job files to.\n\
             [shaman]\n\
             # The farm's shared storage on this machine; checkouts go to its jobs/ folder.\n\
             shared_storage = {storage}\n\
             enabled = {enabled}\n\
             # Uploaded files unused for this many days are deleted (checked every gc_period_minutes).\n\
             gc_max_age_days = {age}\n\
             gc_period_minutes = {period}\n\n\
             # Where submitters find the shared storage, per platform (linux, windows, darwin, all):\n\
             [shaman.locations]\n",
            storage = quote(&self.shared_storage.to_string_lossy()),
            enabled = self.enabled,
            age = self.gc_max_age_days,
            period = self.gc_period_minutes,
        );
        if self.locations.is_empty() {
            text.push_str("# windows = \"S:\\\\render\"\n");
        }
        for (platform, location) in &self.locations {
            text.push_str(&format!("{platform} = {}\n", quote(location)));
        }
        text
    }
}
