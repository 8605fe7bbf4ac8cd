//! The scheduling settings of the manager's config: the backoff before a failed task is
//! retried (`[retries]`) and the farm's counted resource pools (`[resources]`).
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[retries]` config table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Wait before the first retry of a soft-failed task; doubled per failure; 0: at once.
    #[serde(default = "default_backoff_base_seconds")]
    pub backoff_base_seconds: u64,
    /// The longest wait before a retry.
    #[serde(default = "default_backoff_cap_seconds")]
    pub backoff_cap_seconds: u64,
}

fn default_backoff_base_seconds() -> u64 {
    10
}
fn default_backoff_cap_seconds() -> u64 {
    300
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            backoff_base_seconds: default_backoff_base_seconds(),
            backoff_cap_seconds: default_backoff_cap_seconds(),
        }
    }
}

/// The longest retry backoff the config may ask for: a week. Longer is surely a typo, and
/// keeps every retry time within what timestamps can hold.
pub const MAX_BACKOFF_SECONDS: u64 = 7 * 24 * 3600;

impl RetryConfig {
    /// Refuses a backoff longer than [`MAX_BACKOFF_SECONDS`], naming the key.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("backoff_base_seconds", self.backoff_base_seconds),
            ("backoff_cap_seconds", self.backoff_cap_seconds),
        ] {
            if value > MAX_BACKOFF_SECONDS {
                return Err(format!(
                    "{key} = {value} is longer than a week ({MAX_BACKOFF_SECONDS} s), the most \
                     a retry may wait"
                ));
            }
        }
        Ok(())
    }

    pub fn base(&self) -> Duration {
        Duration::from_secs(self.backoff_base_seconds)
    }
    pub fn cap(&self) -> Duration {
        Duration::from_secs(self.backoff_cap_seconds)
    }

    pub fn commented_toml(&self) -> String {
        format!(
            "\n# A task that failed on a worker (and may still run elsewhere) waits before it is\n\
             # handed out again: backoff_base_seconds after its first failure, twice that after\n\
             # the second, and so on, at most backoff_cap_seconds. 0 retries at once.\n\
             [retries]\n\
             backoff_base_seconds = {base}\n\
             backoff_cap_seconds = {cap}\n",
            base = self.backoff_base_seconds,
            cap = self.backoff_cap_seconds,
        )
    }
}

/// The `[resources]` table as written into a fresh config, with the pools given.
pub fn resources_commented_toml(pools: &BTreeMap<String, u32>) -> String {
    let mut text = String::from(
        "\n# Counted resources shared by the whole farm, such as render licences: NAME = units.\n\
         # A job asks for them with `limits.resources` (each running task holds that many);\n\
         # the manager never runs more tasks at once than the pool holds.\n\
         # Example: redshift-licence = 5\n\
         [resources]\n",
    );
    for (name, units) in pools {
        text.push_str(&format!("{name} = {units}\n"));
    }
    text
}

/// Checks the name of a resource pool: letters, digits, `-`, `_` and `.` (it is written on
/// the command line and in job submissions).
pub fn check_pool_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a resource pool needs a name".into());
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        Some(c) => Err(format!(
            "resource pool {name:?} contains {c:?}; use letters, digits, '-', '_' and '.'"
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backoff_longer_than_a_week_is_refused_naming_the_key() {
        assert!(RetryConfig::default().check().is_ok());
        let long = RetryConfig {
            backoff_base_seconds: 10,
            backoff_cap_seconds: u64::MAX,
        };
        let err = long.check().unwrap_err();
        assert!(err.contains("backoff_cap_seconds"), "{err}");
    }

    #[test]
    fn pool_names_are_plain_words() {
        assert!(check_pool_name("redshift-licence").is_ok());
        assert!(check_pool_name("arnold_5.2").is_ok());
        for bad in ["", "two words", "quote\"", "a/b"] {
            assert!(check_pool_name(bad).is_err(), "{bad:?}");
        }
    }
}
