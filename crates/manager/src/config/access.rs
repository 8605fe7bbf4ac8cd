//! The `[access]` table: how much the REST API trusts callers without a token (the
//! enforcement lives in `http/access.rs`).
use serde::{Deserialize, Serialize};

/// How much the API trusts callers without a token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccessMode {
    /// Anyone may view, submit and administer.
    #[default]
    Open,
    /// Anyone may view and submit; acting on jobs and administering need a token.
    SubmitOpen,
    /// Every API call needs a token.
    Token,
}

impl AccessMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessMode::Open => "open",
            AccessMode::SubmitOpen => "submit-open",
            AccessMode::Token => "token",
        }
    }
}

/// The `[access]` config table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessConfig {
    #[serde(default)]
    pub mode: AccessMode,
}

impl AccessConfig {
    /// The table as commented TOML, for the config file the manager writes.
    pub fn commented_toml(&self) -> String {
        format!(
            "\n# Who may use the REST API. \"open\": anyone on the network (like Flamenco; the\n\
             # Blender add-on has no login). \"submit-open\": anyone may view and submit jobs,\n\
             # other actions need a token. \"token\": every API call needs a token.\n\
             # Tokens: `castanet manager token create --name NAME --role viewer|submitter|admin`.\n\
             [access]\n\
             mode = \"{}\"\n",
            self.mode.as_str()
        )
    }
}
