//! Path variables (Flamenco semantics): `{name}` placeholders with a value per platform, set in
//! the `[variables.NAME]` tables of the manager config.
//!
//! - At submission, string settings and metadata that start with a two-way variable's value for
//!   the submitter's platform get that prefix replaced by `{name}` ([`Variables::replace_two_way`]).
//! - At hand-out, command parameters are expanded for the receiving worker's platform
//!   ([`Variables::expand_parameters`]), in the order of `text::expand`.
//!
//! `prefix` holds the pure string matching, `text` the per-string expansion, `config_text` the
//! link to the config file.

mod config_text;
mod prefix;
#[cfg(test)]
mod tests;
mod text;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use config_text::commented_toml;
pub use prefix::matched_prefix_len;

/// Platform names as Flamenco uses them (Go's GOOS).
pub const LINUX: &str = "linux";
pub const WINDOWS: &str = "windows";
pub const DARWIN: &str = "darwin";
/// The value used for any platform without a value of its own.
pub const ALL: &str = "all";

/// The name of the implicit variable for the job storage directory.
pub const JOBS: &str = "jobs";

/// One `[variables.NAME]` table of the config.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableConfig {
    /// Also replace values by `{NAME}` in submitted settings (for paths).
    #[serde(default)]
    pub is_twoway: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub darwin: Option<String>,
}

impl VariableConfig {
    fn value_for(&self, platform: &str) -> Option<&str> {
        let specific = match platform {
            LINUX => self.linux.as_deref(),
            WINDOWS => self.windows.as_deref(),
            DARWIN => self.darwin.as_deref(),
            _ => None,
        };
        specific.or(self.all.as_deref())
    }
}

/// The variables every manager has unless the config says otherwise.
pub fn default_variables() -> BTreeMap<String, VariableConfig> {
    let one_way = |linux: &str, windows: &str| VariableConfig {
        is_twoway: false,
        all: None,
        linux: Some(linux.to_owned()),
        windows: Some(windows.to_owned()),
        darwin: Some(linux.to_owned()),
    };
    BTreeMap::from([
        ("blender".to_owned(), one_way("blender", "blender.exe")),
        (
            "blenderArgs".to_owned(),
            VariableConfig {
                all: Some("-b -y".to_owned()),
                ..VariableConfig::default()
            },
        ),
        ("ffmpeg".to_owned(), one_way("ffmpeg", "ffmpeg.exe")),
    ])
}

/// Maps an OS name as Rust (`std::env::consts::OS`) or Go spells it to Flamenco's platform name;
/// other names are kept (lower-cased) and only get `all` values.
pub fn normalize_platform(platform: &str) -> String {
    let lower = platform.trim().to_ascii_lowercase();
    match lower.as_str() {
        "macos" | "osx" | "mac" => DARWIN.to_owned(),
        "win32" | "win64" | "win" => WINDOWS.to_owned(),
        _ => lower,
    }
}

/// Checks that a platform name is a plain word (`linux`, `windows`, `darwin`, or another the
/// config names): anything else (separators, dots, spaces, control characters) is a mistake
/// or a probe. The API refuses such names and the config may not use them, so every platform
/// the config names can be asked about. The error says what is wrong.
pub fn check_platform_name(platform: &str) -> Result<(), String> {
    let plain = !platform.is_empty()
        && platform.len() <= 64
        && platform
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if plain {
        return Ok(());
    }
    Err(format!(
        "platform must be a plain word such as linux, windows or darwin, not {platform:?}"
    ))
}

/// The manager's own platform name.
pub fn manager_platform() -> String {
    normalize_platform(std::env::consts::OS)
}

/// A variable's resolved value for one platform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    pub value: String,
    pub is_twoway: bool,
}

/// The farm's variables, ready for replacement and expansion.
#[derive(Clone, Debug)]
pub struct Variables {
    definitions: BTreeMap<String, VariableConfig>,
    manager_platform: String,
}

impl Variables {
    /// `configured` overrides the defaults by name; `jobs_dir` (the manager's job storage, in
    /// its own notation) becomes the one-way `{jobs}`, replacing any configured `jobs`.
    pub fn new(
        configured: &BTreeMap<String, VariableConfig>,
        jobs_dir: Option<&str>,
        manager_platform: &str,
    ) -> Self {
        let mut definitions = default_variables();
        for (name, config) in configured {
            if name == JOBS {
                tracing::warn!(
                    "variable \"jobs\" in the config is ignored: {{jobs}} is always the job storage directory"
                );
                continue;
            }
            let mut config = config.clone();
            if config.is_twoway {
                // Values are matched as path prefixes; "S:\" and "S:" must mean the same.
                for value in [
                    &mut config.all,
                    &mut config.linux,
                    &mut config.windows,
                    &mut config.darwin,
                ]
                .into_iter()
                .flatten()
                {
                    *value = prefix::trim_trailing_separators(value).to_owned();
                }
            }
            definitions.insert(name.clone(), config);
        }
        if let Some(jobs_dir) = jobs_dir {
            definitions.insert(
                JOBS.to_owned(),
                VariableConfig {
                    all: Some(jobs_dir.to_owned()),
                    ..VariableConfig::default()
                },
            );
        }
        Variables {
            definitions,
            manager_platform: normalize_platform(manager_platform),
        }
    }

    pub fn manager_platform(&self) -> &str {
        &self.manager_platform
    }

    /// Every variable with a value on `platform` (`all` values overlaid by specific ones),
    /// sorted by name.
    pub fn resolve_for(&self, platform: &str) -> Vec<Resolved> {
        let platform = normalize_platform(platform);
        self.definitions
            .iter()
            .filter_map(|(name, config)| {
                config.value_for(&platform).map(|value| Resolved {
                    name: name.clone(),
                    value: value.to_owned(),
                    is_twoway: config.is_twoway,
                })
            })
            .collect()
    }

    /// Submission: rewrites every string setting and metadata value that starts with a two-way
    /// variable's value for `submitter_platform` (`manager` = the manager's own OS) to
    /// `{name}…`. The longest matching value wins; the match must end at a path separator or
    /// at the end of the string, so `/render` does not claim `/renderfarm`.
    pub fn replace_two_way(
        &self,
        submitter_platform: &str,
        settings: &mut serde_json::Map<String, serde_json::Value>,
        metadata: &mut BTreeMap<String, String>,
    ) {
        let platform = if submitter_platform.trim().eq_ignore_ascii_case("manager") {
            self.manager_platform.clone()
        } else {
            normalize_platform(submitter_platform)
        };
        let two_way: Vec<Resolved> = self
            .resolve_for(&platform)
            .into_iter()
            .filter(|variable| variable.is_twoway && !variable.value.is_empty())
            .collect();
        if two_way.is_empty() {
            return;
        }
        for value in settings.values_mut() {
            if let serde_json::Value::String(text) = value
                && let Some(replaced) = text::to_variable_form(text, &two_way)
            {
                *text = replaced;
            }
        }
        for text in metadata.values_mut() {
            if let Some(replaced) = text::to_variable_form(text, &two_way) {
                *text = replaced;
            }
        }
    }

    /// Hand-out: expands every string parameter, and every string in an array parameter, of a
    /// command for a worker on `worker_platform`. Keys and other values are left alone.
    pub fn expand_parameters(&self, worker_platform: &str, parameters: &mut serde_json::Value) {
        expand_with(&self.expander(worker_platform), parameters);
    }

    /// The expansion of one string for `worker_platform`.
    pub fn expand(&self, worker_platform: &str, text: &str) -> String {
        self.expander(worker_platform).expand(text)
    }

    fn expander(&self, worker_platform: &str) -> text::Expander {
        let target = normalize_platform(worker_platform);
        let on_manager = self.resolve_for(&self.manager_platform);
        let on_target = self.resolve_for(&target);
        text::Expander::new(target, &on_manager, &on_target)
    }
}

/// The expansion for one worker's platform, built once when the worker connects.
#[derive(Clone, Debug)]
pub struct WorkerVariables {
    platform: String,
    expander: Arc<text::Expander>,
}

impl WorkerVariables {
    pub fn new(variables: &Variables, worker_platform: &str) -> Self {
        WorkerVariables {
            platform: normalize_platform(worker_platform),
            expander: Arc::new(variables.expander(worker_platform)),
        }
    }

    /// [`new`](Self::new) for a worker on the shared storage (`mirror` None); for one
    /// without, whose local `mirror` directory stands for the farm's storage, path variables
    /// (two-way ones and `{jobs}`) expand to their value on the manager's own platform inside
    /// the mirror: `{jobs}/shot/a.blend` becomes `<mirror>/srv/farm/jobs/shot/a.blend` (see
    /// `castanet_protocol::mirror`). Other variables (program names) keep the worker's values.
    pub fn for_storage(variables: &Variables, worker_platform: &str, mirror: Option<&str>) -> Self {
        let Some(mirror) = mirror else {
            return Self::new(variables, worker_platform);
        };
        let target = normalize_platform(worker_platform);
        let is_path = |variable: &Resolved| variable.is_twoway || variable.name == JOBS;
        // Path variables count as two-way here, `{jobs}` too: a farm path written out in
        // full (a checkout under the job storage) lands in the mirror like a `{name}` one.
        let on_manager: Vec<Resolved> = variables
            .resolve_for(&variables.manager_platform)
            .into_iter()
            .map(|variable| Resolved {
                is_twoway: is_path(&variable),
                ..variable
            })
            .collect();
        let mut on_target: Vec<Resolved> = variables
            .resolve_for(&target)
            .into_iter()
            .filter(|variable| !is_path(variable))
            .collect();
        let root = mirror.trim_end_matches(['/', '\\']);
        for variable in on_manager.iter().filter(|variable| is_path(variable)) {
            if let Some(relative) = castanet_protocol::mirror::from_farm_path(&variable.value) {
                on_target.push(Resolved {
                    value: format!("{root}/{relative}"),
                    ..variable.clone()
                });
            }
        }
        WorkerVariables {
            platform: target.clone(),
            expander: Arc::new(text::Expander::new(target, &on_manager, &on_target)),
        }
    }

    /// The worker's platform, normalised (`macos` → `darwin`).
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// See [`Variables::expand_parameters`].
    pub fn expand_parameters(&self, parameters: &mut serde_json::Value) {
        expand_with(&self.expander, parameters);
    }
}

impl Default for WorkerVariables {
    /// The built-in defaults for a worker on the manager's own platform.
    fn default() -> Self {
        let platform = manager_platform();
        WorkerVariables::new(
            &Variables::new(&BTreeMap::new(), None, &platform),
            &platform,
        )
    }
}

fn expand_with(expander: &text::Expander, parameters: &mut serde_json::Value) {
    let serde_json::Value::Object(map) = parameters else {
        return;
    };
    for value in map.values_mut() {
        match value {
            serde_json::Value::String(text) => *text = expander.expand(text),
            serde_json::Value::Array(items) => {
                for item in items {
                    if let serde_json::Value::String(text) = item {
                        *text = expander.expand(text);
                    }
                }
            }
            _ => {}
        }
    }
}
