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
    /// as told to submitters (with `jobs` appended when Shaman is on); default: the
    /// manager's own path, through the two-way variables.
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

    /// Where a submitter on `platform` finds job files according to `[shaman.locations]`
    /// (its own entry, else `all`): the configured shared storage, plus its `jobs` folder when
    /// Shaman is on — the same place `{jobs}` names. `None` without such an entry.
    pub fn job_storage_location(&self, platform: &str) -> Option<String> {
        let root = self
            .locations
            .get(platform)
            .or_else(|| self.locations.get("all"))?;
        if !self.enabled {
            return Some(root.clone());
        }
        Some(join_in_notation(root, "jobs", platform))
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
             # Where submitters find the shared storage, per platform (linux, windows, darwin, all);\n\
             # with Shaman on they are told its jobs/ folder, where checkouts go:\n\
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

/// `root` + `name` with the separator `root` (or else `platform`) uses, so a Windows location
/// stays in Windows notation.
fn join_in_notation(root: &str, name: &str, platform: &str) -> String {
    let separator = if root.contains('\\') || (platform == "windows" && !root.contains('/')) {
        '\\'
    } else {
        '/'
    };
    if root.ends_with(['/', '\\']) {
        format!("{root}{name}")
    } else {
        format!("{root}{separator}{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_locations(enabled: bool, locations: &[(&str, &str)]) -> ShamanConfig {
        ShamanConfig {
            enabled,
            locations: locations
                .iter()
                .map(|(platform, path)| (platform.to_string(), path.to_string()))
                .collect(),
            ..ShamanConfig::default()
        }
    }

    #[test]
    fn configured_locations_point_at_the_checkout_folder_when_shaman_is_on() {
        let config = with_locations(
            true,
            &[("windows", r"\\nas\render"), ("all", "/mnt/render/")],
        );
        assert_eq!(
            config.job_storage_location("windows").as_deref(),
            Some(r"\\nas\render\jobs")
        );
        assert_eq!(
            config.job_storage_location("linux").as_deref(),
            Some("/mnt/render/jobs")
        );
        let config = with_locations(true, &[("windows", "S:")]);
        assert_eq!(
            config.job_storage_location("windows").as_deref(),
            Some(r"S:\jobs")
        );
        assert_eq!(config.job_storage_location("linux"), None);
        let config = with_locations(false, &[("windows", r"S:\render")]);
        assert_eq!(
            config.job_storage_location("windows").as_deref(),
            Some(r"S:\render")
        );
    }
}
