//! The commented `[variables]` section of a freshly written config file (building
//! [`super::Variables`] from a loaded config is `config/variables.rs`).

use std::collections::BTreeMap;

use super::VariableConfig;

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
