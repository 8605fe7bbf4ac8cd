//! `castanet submit`'s placement flags: the worker tag a job is limited to (`--tag`) and what
//! it asks of its workers (`--min-ram`, `--min-gpus`, `--require-tag`), turned into the
//! submission's `worker_tag` and `requirements`.
use anyhow::{Context, anyhow, bail};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::api_client::ApiClient;

#[derive(Args, Default)]
pub struct PlacementArgs {
    /// Only workers with this worker tag (name or id) run the job.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,
    /// Minimum RAM a worker must have, e.g. 16G, 512M or a byte count.
    #[arg(long, value_name = "SIZE")]
    min_ram: Option<String>,
    /// Minimum number of GPUs a worker must have.
    #[arg(long, value_name = "N")]
    min_gpus: Option<u32>,
    /// A worker tag (by name) every worker running the job must have. Repeatable.
    #[arg(long = "require-tag", value_name = "TAG")]
    require_tags: Vec<String>,
}

/// "16G", "512m", "1.5GiB", "1024" → bytes (binary units).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => bail!("--min-ram {text}: unknown unit \"{other}\" (use K, M, G or T)"),
    };
    let value: f64 = number
        .parse()
        .with_context(|| format!("--min-ram {text}: expected a size such as 16G"))?;
    if !value.is_finite() || value < 0.0 {
        bail!("--min-ram {text}: expected a size such as 16G");
    }
    Ok((value * (1u64 << shift) as f64) as u64)
}

impl PlacementArgs {
    /// The `requirements` of the submission (`None` when the flags ask nothing).
    pub fn requirements(&self) -> anyhow::Result<Option<Value>> {
        let mut requirements = Map::new();
        if let Some(size) = &self.min_ram {
            requirements.insert("min_ram_bytes".into(), json!(parse_size(size)?));
        }
        if let Some(gpus) = self.min_gpus {
            requirements.insert("min_gpus".into(), json!(gpus));
        }
        if !self.require_tags.is_empty() {
            requirements.insert("required_tags".into(), json!(self.require_tags));
        }
        Ok((!requirements.is_empty()).then_some(Value::Object(requirements)))
    }

    /// The id of the `--tag` worker tag, looked up by name or id; the known tags are named
    /// when it does not exist.
    pub async fn worker_tag(&self, client: &ApiClient) -> anyhow::Result<Option<String>> {
        let Some(wanted) = &self.tag else {
            return Ok(None);
        };
        let answer = client.get_json("/api/v3/worker-mgt/tags").await?;
        let tags = answer
            .get("tags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let field = |tag: &Value, key: &str| {
            tag.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if let Some(tag) = tags
            .iter()
            .find(|t| field(t, "name") == *wanted || field(t, "id") == *wanted)
        {
            return Ok(Some(field(tag, "id")));
        }
        let names: Vec<String> = tags.iter().map(|t| field(t, "name")).collect();
        Err(anyhow!(
            "--tag {wanted}: no such worker tag; the tags: {}",
            if names.is_empty() {
                "none (create one with the dashboard's Tags page)".to_string()
            } else {
                names.join(", ")
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units_and_mistakes_are_named() {
        assert_eq!(parse_size("16G").unwrap(), 16 << 30);
        assert_eq!(parse_size("512 MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5g").unwrap(), 3 << 29);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        let err = parse_size("16Q").unwrap_err().to_string();
        assert!(err.contains("\"q\""), "{err}");
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn requirements_hold_only_what_was_asked() {
        assert!(PlacementArgs::default().requirements().unwrap().is_none());
        let args = PlacementArgs {
            min_ram: Some("2G".into()),
            min_gpus: Some(1),
            require_tags: vec!["gpu".into()],
            ..Default::default()
        };
        assert_eq!(
            args.requirements().unwrap(),
            Some(json!({ "min_ram_bytes": 2u64 << 30, "min_gpus": 1, "required_tags": ["gpu"] }))
        );
    }
}
