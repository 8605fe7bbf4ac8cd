//! What scripts can do and how their failures come back: errors with locations, limits,
//! dependency checks, and the Flamenco JS API.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::*;

#[test]
fn thrown_strings_and_errors_become_script_errors() {
    let error = compile_custom("throw 'video output is not supported';").expect_err("throws");
    assert_eq!(
        error,
        CompileError::Script {
            job_type: "custom-type".to_owned(),
            message: "video output is not supported".to_owned(),
            location: None
        }
    );

    let error = compile_custom("\n  throw new Error('no frames');").expect_err("throws");
    assert_eq!(
        error.to_string(),
        "job type \"custom-type\" failed at custom_type.js:4: no frames"
    );

    let error = compile_custom("const task = author.Task('  ', 'misc');").expect_err("blank name");
    let CompileError::Script {
        message, location, ..
    } = &error
    else {
        panic!("expected a script error, got {error:?}");
    };
    assert!(
        message.contains("author.Task(): the task name must be a non-empty string"),
        "{message}"
    );
    assert_eq!(
        location.as_deref(),
        Some("custom_type.js:3"),
        "points at the script, not the prelude"
    );
}

#[test]
fn syntax_errors_carry_their_location() {
    let dir = temp_dir();
    write_script(
        dir.path(),
        "broken.js",
        "const JOB_TYPE = { label: 'x', settings: [] };\n\nlet y = ;\n",
    );
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let error = registry
        .compile(input("broken", json!({})))
        .expect_err("syntax error");
    let CompileError::Script {
        location, message, ..
    } = &error
    else {
        panic!("expected a script error, got {error:?}");
    };
    assert_eq!(location.as_deref(), Some("broken.js:3"));
    assert!(message.starts_with("SyntaxError:"), "{message}");
    assert!(
        registry
            .list()
            .expect("list")
            .iter()
            .all(|info| info.name != "broken"),
        "skipped"
    );
}

#[test]
fn endless_loops_hit_the_time_limit() {
    let limits = SandboxLimits {
        time: Duration::from_millis(500),
        ..SandboxLimits::default()
    };
    let dir = temp_dir();
    write_script(dir.path(), "spin.js", &script_with_body("while (true) {}"));
    write_script(dir.path(), "spin_at_load.js", "while (true) {}\n");
    write_script(
        dir.path(),
        "catch_all.js",
        &script_with_body("while (true) { try { while (true) {} } catch (e) {} }"),
    );
    let registry = registry_in(dir.path(), limits);

    for job_type in ["spin", "spin-at-load", "catch-all"] {
        let started = Instant::now();
        let error = registry
            .compile(input(job_type, json!({})))
            .expect_err("must stop");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{job_type} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            error.to_string(),
            format!(
                "job type \"{job_type}\" was stopped: it ran longer than its time limit of 500 ms"
            )
        );
    }
}

#[test]
fn unbounded_allocation_hits_the_memory_limit() {
    let limits = SandboxLimits {
        memory_bytes: 16 * 1024 * 1024,
        ..SandboxLimits::default()
    };
    let dir = temp_dir();
    write_script(
        dir.path(),
        "hog.js",
        &script_with_body("const all = []; while (true) all.push('x'.repeat(4096) + all.length);"),
    );
    write_script(
        dir.path(),
        "big_array.js",
        &script_with_body("const a = []; for (let i = 0; ; i++) a[i] = {i};"),
    );
    let registry = registry_in(dir.path(), limits);
    for job_type in ["hog", "big-array"] {
        let error = registry
            .compile(input(job_type, json!({})))
            .expect_err("must stop");
        assert!(
            matches!(error, CompileError::Limit { .. }),
            "{job_type}: {error:?}"
        );
        assert!(
            error.to_string().contains("memory limit of 16 MiB"),
            "{error}"
        );
    }
}

#[test]
fn dependencies_must_stay_inside_the_job_and_acyclic() {
    let error = compile_custom(
        "const render = author.Task('render', 'blender');\n\
         const video = author.Task('video', 'ffmpeg');\n\
         video.addDependency(render);\n\
         job.addTask(video);",
    )
    .expect_err("dependency on a task never added");
    assert_eq!(
        error.to_string(),
        "job type \"custom-type\" failed: task \"video\" depends on task \"render\", which was never added to the job (use job.addTask)"
    );

    let error = compile_custom(
        "const a = author.Task('a', 'misc'); const b = author.Task('b', 'misc');\n\
         a.addDependency(b); b.addDependency(a); job.addTask(a); job.addTask(b);",
    )
    .expect_err("cycle");
    assert!(
        error
            .to_string()
            .contains("cycle, so these could never run: \"a\", \"b\""),
        "{error}"
    );
}

#[test]
fn scripts_get_the_flamenco_api() {
    let job = compile_custom(
        r#"
        const s = job.settings;
        s.chunks = frameChunker("1..10,20-25,40", 4);
        s.count = frameCount("1-10,5-15");
        try { frameChunker("1 10", 2); } catch (e) { s.chunkError = e.message; }
        try { frameChunker("1-3", 0); } catch (e) { s.sizeError = e.message; }
        s.joined = path.join("C:\\render", "shot", "../frames");
        s.parts = [path.dirname("/a/b/c.blend"), path.basename("/a/b/c.blend"), path.stem("x/y.flamenco.blend")];
        s.stamp = formatTimestampLocal(job.created);
        s.split = shellSplit("--title 'My Shot' -t 4");
        s.job = [job.jobID, job.name, job.jobType, job.priority, job.workerTagUUID, job.storage.shamanCheckoutID];
        s.createdIsDate = job.created instanceof Date;
        s.platform = typeof process.platform;
        job.metadata.compiled = true;
        print("compiling", {frames: 3});
        alert("careful");
        const task = author.Task(" render ", " blender ");
        task.priority = 70;
        task.addCommand(author.Command("blender-render", {args: ["-f", 1]}, 3));
        job.addTask(task);
        const video = author.Task("video", "ffmpeg");
        video.addDependency(task);
        job.addTask(video);
        s.uuids = [task.uuid, task.uuid === task.uuid, video.uuid];
        "#,
    )
    .expect("compiles");
    let settings = Value::Object(job.settings);
    assert_eq!(
        settings["chunks"],
        json!(["1-4", "5-8", "9,10,20,21", "22-25", "40"])
    );
    assert_eq!(settings["count"], json!(15));
    assert!(
        settings["chunkError"]
            .as_str()
            .is_some_and(|m| m.contains("\"1 10\" is not a frame number"))
    );
    assert!(
        settings["sizeError"]
            .as_str()
            .is_some_and(|m| m.contains("chunk size"))
    );
    assert_eq!(settings["joined"], "C:/render/frames");
    assert_eq!(settings["parts"], json!(["/a/b", "c.blend", "y.flamenco"]));
    assert_eq!(
        settings["stamp"].as_str().map(str::len),
        Some("2023-11-14_221320".len())
    );
    assert_eq!(settings["split"], json!(["--title", "My Shot", "-t", "4"]));
    assert_eq!(
        settings["job"],
        json!([
            "2f0c8f5e-0000-4000-8000-000000000001",
            "test job",
            "custom-type",
            50,
            "",
            ""
        ])
    );
    assert_eq!(settings["createdIsDate"], true);
    assert_eq!(settings["platform"], "string");
    assert_eq!(
        job.metadata.get("compiled").map(String::as_str),
        Some("true")
    );

    let task = &job.tasks[0];
    assert_eq!(
        (task.name.as_str(), task.task_type.as_str(), task.priority),
        ("render", "blender", 70)
    );
    let task_commands = commands(task);
    assert_eq!(task_commands[0].parameters, json!({"args": ["-f", 1]}));
    assert_eq!(task_commands[0].total_step_count, 3);
    assert_eq!(task.steps_total, 3);
    assert!(uuid::Uuid::parse_str(&task.uuid).is_ok());
    // A uuid the script read is the one stored, also in dependencies.
    assert_eq!(
        settings["uuids"],
        json!([task.uuid, true, job.tasks[1].uuid])
    );
    assert_eq!(job.tasks[1].dependencies, vec![task.uuid.clone()]);
}

#[test]
fn misuse_of_the_api_is_explained() {
    let cases: &[(&str, &str)] = &[
        (
            "job.addTask({name: 'x'});",
            "job.addTask() expects a task made by author.Task()",
        ),
        (
            "const t = author.Task('t', 'misc'); job.addTask(t); job.addTask(t);",
            "appears in job.tasks more than once",
        ),
        (
            "author.Task('t', 'misc').addCommand({name: 'echo'});",
            "expects a command made by author.Command()",
        ),
        (
            "author.Command('echo', {}, -1);",
            "step count must be a whole number",
        ),
        (
            "const t = author.Task('t', 'misc'); t.priority = 1.5; job.addTask(t);",
            "priority must be a whole number",
        ),
        (
            "const t = author.Task('t', 'misc'); t.addDependency(t);",
            "cannot depend on itself",
        ),
        ("job.settings = 5;", "job.settings must stay an object"),
        ("null.x;", "TypeError: cannot read property 'x' of null"),
    ];
    for (body, expected) in cases {
        let error = compile_custom(body).expect_err(body);
        assert!(error.to_string().contains(expected), "{body}: {error}");
    }

    let dir = temp_dir();
    write_script(
        dir.path(),
        "no_compile.js",
        "const JOB_TYPE = { label: 'x', settings: [] };",
    );
    write_script(dir.path(), "no_job_type.js", "function compileJob(job) {}");
    write_script(
        dir.path(),
        "bad_setting.js",
        "var JOB_TYPE = { label: 'x', settings: [{key: 'a', type: 'integer'}] };",
    );
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let message = |job_type: &str| {
        registry
            .compile(input(job_type, json!({})))
            .expect_err(job_type)
            .to_string()
    };
    assert!(message("no-compile").contains("does not define a compileJob(job) function"));
    assert!(message("no-job-type").contains("does not define a JOB_TYPE object"));
    assert!(
        message("bad-setting")
            .contains("JOB_TYPE.settings[0] (\"a\") is invalid: unknown variant `integer`")
    );
}
