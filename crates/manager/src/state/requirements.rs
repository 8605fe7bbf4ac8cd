//! Job requirements (minimum RAM, minimum GPUs, required worker tags) and whether a
//! worker's reported capabilities and tag memberships meet them.
use serde::{Deserialize, Serialize};

/// What a job asks of the workers that run its tasks. Stored as JSON on the job
/// (`{}` when it asks nothing, which keeps the scheduler's check to one comparison).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobRequirements {
    /// Minimum RAM the worker reported at sign-on, in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_ram_bytes: Option<u64>,
    /// Minimum number of GPUs the worker reported at sign-on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_gpus: Option<u32>,
    /// Names of worker tags the worker must be a member of (all of them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_tags: Vec<String>,
}

impl JobRequirements {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Parses the stored JSON. Unreadable requirements are an error, never "none": that
    /// would hand tasks to unfit workers.
    pub fn from_stored(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// The JSON stored on the job.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Requirements with duplicate and blank tag names removed, zero minimums dropped.
    pub fn normalised(mut self) -> Self {
        self.required_tags.retain(|t| !t.trim().is_empty());
        self.required_tags.sort();
        self.required_tags.dedup();
        self.min_ram_bytes = self.min_ram_bytes.filter(|&n| n > 0);
        self.min_gpus = self.min_gpus.filter(|&n| n > 0);
        self
    }
}

/// What a worker offers, as far as requirements go.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerCapabilities {
    pub ram_bytes: u64,
    pub gpus: u32,
    /// Names of the worker tags it is a member of.
    pub tags: Vec<String>,
}

impl WorkerCapabilities {
    /// From the capabilities JSON stored at sign-on (`ram_bytes`, `gpus: [...]`) and the
    /// worker's tag names. Missing values count as nothing offered.
    pub fn from_stored(capabilities: &str, tags: Vec<String>) -> Self {
        let value: serde_json::Value = serde_json::from_str(capabilities).unwrap_or_default();
        Self {
            ram_bytes: value["ram_bytes"].as_u64().unwrap_or(0),
            gpus: value["gpus"].as_array().map_or(0, |g| g.len() as u32),
            tags,
        }
    }
}

/// Each requirement the worker does not meet, described for humans (empty: it fits).
pub fn unmet_requirements(req: &JobRequirements, worker: &WorkerCapabilities) -> Vec<String> {
    let mut unmet = Vec::new();
    if let Some(min) = req.min_ram_bytes
        && worker.ram_bytes < min
    {
        unmet.push(format!(
            "needs {} of RAM, has {}",
            gib(min),
            gib(worker.ram_bytes)
        ));
    }
    if let Some(min) = req.min_gpus
        && worker.gpus < min
    {
        unmet.push(format!("needs {min} GPU(s), has {}", worker.gpus));
    }
    let missing: Vec<&str> = req
        .required_tags
        .iter()
        .filter(|t| !worker.tags.contains(t))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        unmet.push(format!("not in required tag(s) {}", missing.join(", ")));
    }
    unmet
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1u64 << 30) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn worker(ram_gib: u64, gpus: u32, tags: &[&str]) -> WorkerCapabilities {
        WorkerCapabilities {
            ram_bytes: ram_gib * GIB,
            gpus,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn each_requirement_is_checked_on_its_own() {
        let needs = |ram: Option<u64>, gpus: Option<u32>, tags: &[&str]| JobRequirements {
            min_ram_bytes: ram.map(|g| g * GIB),
            min_gpus: gpus,
            required_tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        // (requirements, worker, how many requirements it misses)
        let cases = [
            (needs(None, None, &[]), worker(0, 0, &[]), 0),
            (needs(Some(16), None, &[]), worker(16, 0, &[]), 0),
            (needs(Some(16), None, &[]), worker(8, 0, &[]), 1),
            (needs(None, Some(2), &[]), worker(64, 1, &[]), 1),
            (needs(None, Some(2), &[]), worker(64, 2, &[]), 0),
            (
                needs(None, None, &["gpu", "fast"]),
                worker(1, 0, &["gpu"]),
                1,
            ),
            (needs(None, None, &["gpu"]), worker(1, 0, &["gpu", "x"]), 0),
            (needs(Some(32), Some(1), &["gpu"]), worker(8, 0, &[]), 3),
        ];
        for (req, w, misses) in cases {
            let unmet = unmet_requirements(&req, &w);
            assert_eq!(unmet.len(), misses, "{req:?} on {w:?}: {unmet:?}");
        }
    }

    #[test]
    fn stored_forms_round_trip_and_unknown_fields_are_refused() {
        let req = JobRequirements {
            min_ram_bytes: Some(8 * GIB),
            min_gpus: None,
            required_tags: vec!["gpu".into()],
        };
        assert_eq!(JobRequirements::from_stored(&req.to_stored()).unwrap(), req);
        assert_eq!(JobRequirements::default().to_stored(), "{}");
        assert!(JobRequirements::from_stored(r#"{"min_ram": 1}"#).is_err());
        let caps = WorkerCapabilities::from_stored(
            r#"{"ram_bytes": 1024, "gpus": [{"name": "a"}, {"name": "b"}]}"#,
            vec![],
        );
        assert_eq!((caps.ram_bytes, caps.gpus), (1024, 2));
        assert_eq!(WorkerCapabilities::from_stored("{}", vec![]).ram_bytes, 0);
    }

    #[test]
    fn normalising_drops_empty_parts() {
        let req = JobRequirements {
            min_ram_bytes: Some(0),
            min_gpus: Some(0),
            required_tags: vec!["b".into(), " ".into(), "a".into(), "b".into()],
        }
        .normalised();
        assert_eq!(req.required_tags, ["a", "b"]);
        assert!(req.min_ram_bytes.is_none() && req.min_gpus.is_none());
    }
}
