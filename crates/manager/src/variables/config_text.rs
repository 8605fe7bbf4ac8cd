//! The variables as the manager config holds them: building [`Variables`] from a loaded config,
//! and the commented `[variables]` section of a freshly written config file.

use std::collections::BTreeMap;

use super::{VariableConfig, Variables, manager_platform};
use crate::config::ManagerConfig;

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

/// The `[variables.NAME]` tables for the default config file, with an explanation and a
/// commented example; `configured` tables are written out as they are.
pub fn commented_toml(configured: &BTreeMap<String, VariableConfig>) -> String {
    let mut text = String::from(
        "\n# Variables: `{name}` in job settings and commands, with a value per worker platform\n\
         # (linux, windows, darwin; `all` for any platform without its own value). Built in:\n\
         # blender = \"blender\" (\"blender.exe\" on windows), blenderArgs = \"-b -y\",\n\
         # ffmpeg = \"ffmpeg\" (\"ffmpeg.exe\" on windows), and {jobs} = the job file storage.\n\
         # A two-way variable is a path: submitted settings starting with its value for the\n\
         # submitter's platform are stored as `{name}/…` and handed to each worker in its own\n\
         # notation. Drive letters and UNC paths (\\\\server\\share) work as values.\n\
         #\n\
         # [variables.blender]\n\
         # linux = \"/opt/blender/blender\"\n\
         # windows = 'C:\\Program Files\\Blender Foundation\\Blender 4.2\\blender.exe'\n\
         #\n\
         # [variables.render]\n\
         # is_twoway = true\n\
         # linux = \"/mnt/render\"\n\
         # windows = 'R:\\'\n\
         # darwin = \"/Volumes/render\"\n",
    );
    for (name, variable) in configured {
        let Ok(table) = toml::to_string(variable) else {
            continue;
        };
        let key = toml::Value::String(name.clone()).to_string();
        text.push_str(&format!("\n[variables.{key}]\n{table}"));
    }
    text
}
