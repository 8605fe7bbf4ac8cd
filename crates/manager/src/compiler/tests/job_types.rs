//! Job types as clients see them: built-ins, custom scripts and their caching, settings
//! validation, etags.

use serde_json::{Value, json};

use super::*;

#[test]
fn echo_sleep_test_makes_one_echo_and_n_dependent_sleeps() {
    let registry = built_ins();
    let job = registry
        .compile(input(
            "echo-sleep-test",
            json!({"message": "hi", "sleep_repeats": 39}),
        ))
        .expect("compiles");

    assert_eq!(job.tasks.len(), 40);
    let echo = &job.tasks[0];
    assert_eq!(
        (echo.name.as_str(), echo.task_type.as_str(), echo.priority),
        ("echo", "misc", 50)
    );
    assert_eq!(
        commands(echo),
        vec![AuthoredCommand {
            name: "echo".to_owned(),
            parameters: json!({"message": "hi"}),
            total_step_count: 0
        }]
    );
    assert!(echo.dependencies.is_empty());
    for (index, sleep) in job.tasks[1..].iter().enumerate() {
        assert_eq!(sleep.name, format!("sleep-{}", index + 1));
        assert_eq!(sleep.task_type, "misc");
        let sleep_commands = commands(sleep);
        assert_eq!(sleep_commands[0].name, "sleep");
        assert_eq!(
            sleep_commands[0].parameters,
            json!({"duration_in_seconds": 1})
        );
        assert_eq!(sleep.dependencies, vec![echo.uuid.clone()]);
    }
    let uuids: std::collections::HashSet<&str> =
        job.tasks.iter().map(|task| task.uuid.as_str()).collect();
    assert_eq!(uuids.len(), 40, "every task has its own uuid");

    assert_eq!(
        job.settings["sleep_duration_seconds"],
        json!(1),
        "default filled in"
    );
    assert_eq!(
        job.metadata.get("user.name").map(String::as_str),
        Some("Ada")
    );
    assert_eq!(
        job.etag,
        registry.get("echo-sleep-test").expect("listed").etag
    );
}

#[test]
fn job_type_info_serializes_as_flamencos_available_job_type() {
    let listed = built_ins().list().expect("list");
    let echo = listed
        .iter()
        .find(|info| info.name == "echo-sleep-test")
        .expect("built-in listed");
    let json = serde_json::to_value(echo).expect("serializes");

    assert_eq!(json["label"], "Echo Sleep Test");
    assert_eq!(json["etag"].as_str().map(str::len), Some(40));
    let message = &json["settings"][0];
    assert_eq!(message["key"], "message");
    assert_eq!(message["type"], "string");
    assert_eq!(message["required"], true);
    assert!(
        message.get("default").is_none(),
        "message is required, with no default"
    );
    assert_eq!(message["visible"], "visible");
    let duration = json["settings"][1].as_object().expect("object");
    assert_eq!(duration["type"], "int32");
    assert_eq!(duration["propargs"], json!({"min": 0}));
    for absent in [
        "subtype", "choices", "eval", "evalInfo", "label", "visible", "required", "editable",
    ] {
        assert!(
            !duration.contains_key(absent),
            "{absent} should be omitted: {duration:?}"
        );
    }

    let dir = temp_dir();
    write_script(
        dir.path(),
        "plain_type.js",
        "const JOB_TYPE = { label: 'Plain', extra: 1, settings: [\
         { key: 'frames', type: 'string', unknownKey: true, evalInfo: { showLinkButton: true } }] };\
         function compileJob(job) {}",
    );
    let plain = registry_in(dir.path(), SandboxLimits::default())
        .get("plain-type")
        .expect("loads");
    let json = serde_json::to_value(&plain).expect("serializes");
    let mut top: Vec<&str> = json
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    top.sort_unstable();
    assert_eq!(
        top,
        ["etag", "label", "name", "settings"],
        "no description key when absent"
    );
    assert_eq!(
        json["settings"][0],
        json!({"key": "frames", "type": "string", "evalInfo": {"showLinkButton": true, "description": ""}})
    );
}

#[test]
fn settings_are_validated_and_defaults_filled() {
    let dir = temp_dir();
    write_script(
        dir.path(),
        "typed.js",
        r#"const JOB_TYPE = { label: "Typed", settings: [
            { key: "output", type: "string", required: true },
            { key: "count", type: "int32", default: 3 },
            { key: "fps", type: "float" },
            { key: "previews", type: "bool", default: false },
            { key: "format", type: "string", choices: ["PNG", "JPEG"], default: "PNG" },
        ] };
        function compileJob(job) {}"#,
    );
    let registry = registry_in(dir.path(), SandboxLimits::default());

    let error = registry
        .compile(input(
            "typed",
            json!({"count": "abc", "fps": true, "previews": 1, "format": "GIF"}),
        ))
        .expect_err("invalid");
    let CompileError::InvalidSettings(problems) = &error else {
        panic!("expected InvalidSettings, got {error:?}");
    };
    assert_eq!(
        problems,
        &vec![
            "setting \"output\" is required but missing".to_owned(),
            "setting \"count\" must be an integer (int32), got string \"abc\"".to_owned(),
            "setting \"fps\" must be a number (float), got boolean true".to_owned(),
            "setting \"previews\" must be a boolean (bool), got number 1".to_owned(),
            "setting \"format\" must be one of \"PNG\", \"JPEG\", got \"GIF\"".to_owned(),
        ]
    );
    assert!(
        error
            .to_string()
            .starts_with("invalid job settings: setting \"output\" is required")
    );

    let error = registry
        .compile(input("typed", json!({"output": "/tmp", "count": 1.5})))
        .expect_err("fractional int32");
    assert!(matches!(error, CompileError::InvalidSettings(ref problems) if problems.len() == 1));
    let error = registry
        .compile(input(
            "typed",
            json!({"output": "/tmp", "count": 3_000_000_000_i64}),
        ))
        .expect_err("int32 overflow");
    assert!(matches!(error, CompileError::InvalidSettings(_)));

    let job = registry
        .compile(input(
            "typed",
            json!({"output": "/tmp", "count": 5.0, "fps": 24, "extra": [1]}),
        ))
        .expect("valid");
    assert_eq!(
        Value::Object(job.settings),
        json!({"output": "/tmp", "count": 5, "fps": 24, "previews": false, "format": "PNG", "extra": [1]})
    );
}

/// Issue 23, item 7: the script's `propargs.min`/`max` bound number settings (Blender's hard
/// limits); `soft_min`/`soft_max` only guide sliders.
#[test]
fn settings_min_and_max_are_enforced() {
    let dir = temp_dir();
    write_script(
        dir.path(),
        "bounded.js",
        r#"const JOB_TYPE = { label: "Bounded", settings: [
            { key: "count", type: "int32", default: 1, propargs: { min: 1, max: 10 } },
            { key: "scale", type: "float", default: 1, propargs: { min: 0.5, soft_max: 2 } },
        ] };
        function compileJob(job) {}"#,
    );
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let error = registry
        .compile(input("bounded", json!({"count": 0, "scale": 0.25})))
        .expect_err("below min");
    let CompileError::InvalidSettings(problems) = &error else {
        panic!("expected InvalidSettings, got {error:?}");
    };
    assert_eq!(
        problems,
        &vec![
            "setting \"count\" must be at least 1, got 0".to_owned(),
            "setting \"scale\" must be at least 0.5, got 0.25".to_owned(),
        ]
    );
    let error = registry
        .compile(input("bounded", json!({"count": 11})))
        .expect_err("above max");
    assert!(
        error
            .to_string()
            .contains("\"count\" must be at most 10, got 11"),
        "{error}"
    );
    registry
        .compile(input("bounded", json!({"count": 10, "scale": 5})))
        .expect("within bounds; soft_max is no limit");
}

#[test]
fn etag_must_match_when_given() {
    let registry = built_ins();
    let etag = registry.get("echo-sleep-test").expect("get").etag;
    let mut submission = input("echo-sleep-test", json!({"message": "hi"}));

    submission.type_etag = Some("0123".to_owned());
    let error = registry
        .compile(submission.clone())
        .expect_err("stale etag");
    assert_eq!(
        error,
        CompileError::EtagMismatch {
            job_type: "echo-sleep-test".to_owned(),
            expected: etag.clone(),
            given: "0123".to_owned()
        }
    );
    for accepted in [Some(etag), Some(String::new()), None] {
        submission.type_etag = accepted;
        registry.compile(submission.clone()).expect("accepted etag");
    }
}

#[test]
fn unknown_job_type_lists_the_known_ones() {
    let dir = temp_dir();
    write_script(dir.path(), "my_custom_type.js", &script_with_body(""));
    let error = registry_in(dir.path(), SandboxLimits::default())
        .get("nope")
        .expect_err("unknown");
    assert_eq!(
        error.to_string(),
        "unknown job type \"nope\"; known types: blender-render-with-approval, echo-sleep-test, ffmpeg-transcode, \
         frames-to-video, my-custom-type, simple-blender-render, single-image-tiled-render"
    );
}

#[test]
fn custom_script_overrides_built_in_and_edits_apply_without_restart() {
    let dir = temp_dir();
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let built_in_etag = registry.get("echo-sleep-test").expect("built-in").etag;

    let version = |label: &str| {
        format!(
            "const JOB_TYPE = {{ label: {label:?}, settings: [] }};\n\
             function compileJob(job) {{ job.addTask(author.Task({label:?}, 'misc')); }}\n"
        )
    };
    write_script(dir.path(), "echo_sleep_test.js", &version("Custom"));
    let custom = registry.get("echo-sleep-test").expect("custom");
    assert_eq!(custom.label, "Custom");
    assert_ne!(custom.etag, built_in_etag);
    assert_eq!(
        registry.list().expect("list").len(),
        BUILT_IN_NAMES.len(),
        "one entry per name"
    );

    write_script(dir.path(), "echo_sleep_test.js", &version("Custom, edited"));
    assert_eq!(
        registry.get("echo-sleep-test").expect("edited").label,
        "Custom, edited"
    );
    let job = registry
        .compile(input("echo-sleep-test", json!({})))
        .expect("compiles");
    assert_eq!(job.tasks[0].name, "Custom, edited");

    // A broken override falls back to the built-in; a removed one too.
    write_script(dir.path(), "echo_sleep_test.js", "this is not javascript");
    assert_eq!(
        registry.get("echo-sleep-test").expect("fallback").etag,
        built_in_etag
    );
    std::fs::remove_file(dir.path().join("echo_sleep_test.js")).expect("remove");
    assert_eq!(
        registry
            .get("echo-sleep-test")
            .expect("built-in again")
            .etag,
        built_in_etag
    );
}

#[test]
fn unchanged_files_are_not_evaluated_again() {
    let dir = temp_dir();
    // Each evaluation gives a new description, which shows whether the cache answered.
    let code = "const JOB_TYPE = { label: 'R', description: String(Math.random()), settings: [] };\n\
                function compileJob(job) {}\n";
    write_script(dir.path(), "random_type.js", code);
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let first = registry.get("random-type").expect("loads");
    assert_eq!(registry.get("random-type").expect("cached"), first);
    let listed = registry.list().expect("list");
    assert_eq!(
        listed.iter().find(|info| info.name == "random-type"),
        Some(&first)
    );
    assert_eq!(
        registry
            .clone()
            .get("random-type")
            .expect("clones share the cache"),
        first
    );

    write_script(dir.path(), "random_type.js", &format!("{code}// edited\n"));
    assert_ne!(
        registry.get("random-type").expect("reloaded").description,
        first.description
    );
}

#[test]
fn tiny_hidden_and_non_js_files_are_ignored() {
    let dir = temp_dir();
    write_script(dir.path(), "tiny.js", "1;");
    write_script(dir.path(), ".hidden_type.js", &script_with_body(""));
    write_script(dir.path(), "notes.txt", &script_with_body(""));
    std::fs::create_dir(dir.path().join("folder.js")).expect("mkdir");
    let names: Vec<String> = registry_in(dir.path(), SandboxLimits::default())
        .list()
        .expect("list")
        .into_iter()
        .map(|info| info.name)
        .collect();
    assert_eq!(names, BUILT_IN_NAMES);
}

#[test]
fn fifty_thousand_tasks_fit_the_default_limits() {
    // About 780 bytes of QuickJS memory per echo-sleep task.
    let job = built_ins()
        .compile(input(
            "echo-sleep-test",
            json!({"message": "hi", "sleep_repeats": 50_000}),
        ))
        .expect("compiles");
    assert_eq!(job.tasks.len(), 50_001);
    assert_eq!(
        job.tasks[50_000].dependencies,
        vec![job.tasks[0].uuid.clone()]
    );
}

#[test]
fn registry_is_shared_between_threads() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<JobTypeRegistry>();
    let registry = built_ins();
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let registry = registry.clone();
            std::thread::spawn(move || {
                registry.compile(input("echo-sleep-test", json!({"message": "hi"})))
            })
        })
        .collect();
    for handle in handles {
        let job = handle.join().expect("thread").expect("compiles");
        assert_eq!(job.tasks.len(), 2);
    }
}

/// Issue 23, item 6: scripts evaluate a few at a time; one that gets no turn in time is
/// refused as busy (503), and that refusal is not remembered as the script's fault.
#[test]
fn script_evaluations_wait_for_a_turn_and_busy_is_not_cached() {
    let dir = temp_dir();
    write_script(dir.path(), "queued.js", &script_with_body(""));
    let gate = gate::ScriptGate::new(1, std::time::Duration::ZERO);
    let registry = JobTypeRegistry::with_gate(
        Some(dir.path().to_path_buf()),
        SandboxLimits::default(),
        gate,
    );
    let held = registry.gate().enter().expect("the only turn");
    for error in [
        registry
            .get("queued")
            .map(|_| ())
            .expect_err("no turn to describe"),
        registry
            .compile(input("echo-sleep-test", json!({"message": "hi"})))
            .map(|_| ())
            .expect_err("no turn to compile"),
    ] {
        assert!(
            matches!(error, CompileError::Busy { running: 1, .. }),
            "{error:?}"
        );
    }
    drop(held);
    registry
        .get("queued")
        .expect("described once a turn is free");
    registry
        .compile(input("echo-sleep-test", json!({"message": "hi"})))
        .expect("compiles once a turn is free");
}
