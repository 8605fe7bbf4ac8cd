//! Property fuzzing of settings validation: job settings checked against a job type's `JOB_TYPE`
//! (random setting specs, random submitted values) and the manager's own config file (random
//! values for its keys, unknown keys). Nothing panics, and every refusal names the offending
//! setting or key.
mod fuzz_support;

use std::collections::BTreeMap;

use castanet_manager::ManagerConfig;
use castanet_manager::compiler::{CompileError, CompileInput, JobTypeRegistry, SandboxLimits};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Any JSON value, with the numbers that sit on int32 and float edges.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![
            Just(i64::from(i32::MAX) + 1),
            Just(i64::from(i32::MIN) - 1),
            Just(i64::from(i32::MAX)),
            -3i64..3
        ]
        .prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![Just(2.5f64), Just(3.0), Just(1e300), Just(-0.0)].prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..3)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// One entry of `JOB_TYPE.settings`, sometimes malformed.
fn setting_spec(key: String) -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            8 => prop::sample::select(vec!["string", "int32", "float", "bool"]).prop_map(str::to_owned),
            1 => "[a-z0-9]{0,6}",
        ],
        prop::option::of(any::<bool>()),
        prop::option::of(json_value()),
        prop::option::of(prop::collection::vec("[a-c]{0,3}", 0..3)),
        prop::option::of((prop::option::of(json_value()), prop::option::of(json_value()))),
    )
        .prop_map(move |(kind, required, default, choices, bounds)| {
            let mut spec = json!({ "key": key.clone(), "type": kind });
            if let Some(required) = required {
                spec["required"] = json!(required);
            }
            if let Some(default) = default {
                spec["default"] = default;
            }
            if let Some(choices) = choices {
                spec["choices"] = json!(choices);
            }
            if let Some((min, max)) = bounds {
                spec["propargs"] = json!({ "min": min, "max": max });
            }
            spec
        })
}

fn job_type_settings() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::btree_set("[a-e]{1,3}", 0..5)
        .prop_flat_map(|keys| keys.into_iter().map(setting_spec).collect::<Vec<_>>())
}

fn submitted_settings() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-e]{1,3}", json_value(), 0..6)
        .prop_map(|map| map.into_iter().collect())
}

fn input(settings: Map<String, Value>) -> CompileInput {
    CompileInput {
        job_id: "2f0c8f5e-0000-4000-8000-000000000001".to_owned(),
        name: "fuzzed settings".to_owned(),
        job_type: "fuzzed".to_owned(),
        priority: 50,
        settings,
        metadata: BTreeMap::new(),
        worker_tag: None,
        shaman_checkout_id: None,
        created: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        type_etag: None,
        target_task_seconds: None,
    }
}

/// The key a setting problem is about: the first `"…"` in `setting "key" …`.
fn named_key(problem: &str) -> Option<&str> {
    let rest = problem.strip_prefix("setting \"")?;
    rest.split_once('"').map(|(key, _)| key)
}

proptest! {
    #![proptest_config(fuzz_support::cases(256))]

    #[test]
    fn job_settings_are_validated_and_every_problem_names_its_setting(
        specs in job_type_settings(),
        given in submitted_settings(),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let job_type = json!({ "label": "Fuzzed", "settings": specs });
        let script = format!(
            "const JOB_TYPE = {job_type};\n\
             function compileJob(job) {{ job.addTask(author.Task('t', 'misc')); }}\n"
        );
        std::fs::write(dir.path().join("fuzzed.js"), script).expect("write script");
        let registry = JobTypeRegistry::new(Some(dir.path().to_path_buf()), SandboxLimits::default());
        let keys: Vec<&str> = specs.iter().filter_map(|spec| spec["key"].as_str()).collect();
        match registry.compile(input(given.clone())) {
            Ok(job) => {
                for spec in &specs {
                    let key = spec["key"].as_str().unwrap_or_default();
                    let value = job.settings.get(key).filter(|value| !value.is_null());
                    if spec["required"] == json!(true) && spec.get("default").is_none_or(Value::is_null) {
                        prop_assert!(value.is_some(), "required {key} missing: {:?}", job.settings);
                    }
                    let Some(value) = value else { continue };
                    let given_here = given.get(key).filter(|given| !given.is_null());
                    if given_here.is_none() {
                        continue; // a default, kept as the job type wrote it
                    }
                    match spec["type"].as_str() {
                        Some("int32") => prop_assert!(
                            value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
                            "{key} = {value}"
                        ),
                        Some("float") => prop_assert!(value.is_number(), "{key} = {value}"),
                        Some("bool") => prop_assert!(value.is_boolean(), "{key} = {value}"),
                        Some("string") => {
                            prop_assert!(value.is_string(), "{key} = {value}");
                            if let Some(choices) = spec["choices"].as_array() {
                                prop_assert!(choices.contains(value), "{key} = {value}");
                            }
                        }
                        _ => {}
                    }
                    if let (Some(number), Some(min)) = (value.as_f64(), spec["propargs"]["min"].as_f64()) {
                        prop_assert!(number >= min, "{key} = {value} < {min}");
                    }
                    if let (Some(number), Some(max)) = (value.as_f64(), spec["propargs"]["max"].as_f64()) {
                        prop_assert!(number <= max, "{key} = {value} > {max}");
                    }
                }
            }
            Err(CompileError::InvalidSettings(problems)) => {
                prop_assert!(!problems.is_empty());
                for problem in &problems {
                    let key = named_key(problem);
                    prop_assert!(key.is_some_and(|key| keys.contains(&key)), "{problem}");
                }
            }
            Err(error @ CompileError::Script { .. }) => {
                // A malformed JOB_TYPE: the message points into it.
                let message = error.to_string();
                prop_assert!(message.contains("JOB_TYPE"), "{message}");
            }
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}

// ---- the manager's config file -----------------------------------------------------------------

/// Top-level keys of the config with the kind of value each wants.
const CONFIG_KEYS: &[&str] = &[
    "farm_name",
    "listen",
    "database",
    "storage_root",
    "scripts_dir",
    "flamenco_compat_version",
    "script_time_limit_ms",
    "script_memory_limit_mb",
    "script_memory_total_mb",
    "task_timeout_seconds",
    "worker_timeout_seconds",
    "startup_grace_seconds",
    "sleep_schedule_check_seconds",
    "task_fail_after_softfail_count",
    "blocklist_threshold",
    "job_fail_percent",
];

/// A TOML value for a key: sometimes right, often of the wrong kind or out of range.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-1".to_owned()),
        Just("1.5".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("true".to_owned()),
        any::<String>().prop_map(|text| toml_string(&text)),
        Just("[1, \"a\"]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        Just("1979-05-27T07:32:00Z".to_owned()),
    ]
}

fn toml_string(text: &str) -> String {
    // serde_json's escaping is valid TOML basic-string escaping for every character.
    Value::from(text).to_string()
}

proptest! {
    #![proptest_config(fuzz_support::cases(128))]

    #[test]
    fn a_bad_config_value_is_refused_with_its_key_named(
        key in prop::sample::select(CONFIG_KEYS),
        value in toml_value(),
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("castanet-manager.toml");
        let text = format!("registration_secret = \"s\"\n{key} = {value}\n");
        std::fs::write(&path, &text).expect("write config");
        match ManagerConfig::load_or_create(&path) {
            Ok((config, created)) => {
                prop_assert!(!created);
                // Whatever was accepted, the derived limits stay usable.
                prop_assert!(config.concurrent_scripts() >= 1);
                let policy = config.failure_policy();
                prop_assert!((1..=100).contains(&policy.job_fail_percent));
            }
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.contains("castanet-manager.toml"), "{message}");
                prop_assert!(message.contains(key), "{key} = {value}: {message}");
            }
        }
    }

    #[test]
    fn unknown_keys_and_tables_are_named(
        key in "[a-z_]{1,12}",
        table in prop::option::of(prop::sample::select(vec!["shaman", "access", "retention", "tls", "variables.x"])),
        value in toml_value(),
    ) {
        prop_assume!(!CONFIG_KEYS.contains(&key.as_str()) && key != "registration_secret");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("castanet-manager.toml");
        let table_line = table.map(|table| format!("[{table}]\n")).unwrap_or_default();
        let text = format!("registration_secret = \"s\"\n{table_line}{key} = {value}\n");
        std::fs::write(&path, &text).expect("write config");
        if let Err(error) = ManagerConfig::load_or_create(&path) {
            let message = error.to_string();
            prop_assert!(message.contains(&key), "{text}: {message}");
        }
    }
}
