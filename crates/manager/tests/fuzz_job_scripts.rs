//! Property fuzzing of custom job-type scripts that misbehave: loop, recurse without end,
//! allocate without bound, throw at (or from inside) every API call, or tamper with the globals
//! the prelude uses. Each compile ends in bounded time with an error that names the job type,
//! never a crash; through a real manager the submission is a 400, nothing is stored, and other
//! jobs submit normally meanwhile.
mod common;
mod fuzz_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use castanet_manager::compiler::{
    CompileError, CompileInput, CompiledJob, JobTypeRegistry, SandboxLimits,
};
use proptest::prelude::*;
use serde_json::json;

const TIME_LIMIT: Duration = Duration::from_millis(300);
/// Time limit, plus what a debug build needs to start a sandbox, finish a native call the limit
/// cannot interrupt (at most about half a second) and report, on a busy machine.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Far beyond any answer time: the compile hangs.
const HUNG_AFTER: Duration = Duration::from_secs(120);
/// Error messages quote at most 4096 characters of what a script made, plus their own words.
const MAX_MESSAGE_CHARS: usize = 4096 + 200;

/// Misbehaviour inside `compileJob(job)`, one statement each.
const HOSTILE_STATEMENTS: &[&str] = &[
    // loops
    "while (true) {}",
    "for (;;) { try { for (;;) {} } catch (e) {} }",
    "author.Task('t', 'misc').constructor.prototype.addCommand = function () { for (;;) {} }; author.Task('t', 'misc').addCommand(1);",
    "Array.prototype.push = function () { for (;;) {} }; job.addTask(author.Task('t', 'misc'));",
    // recursion
    "function down() { return down() + 1; } down();",
    "function again() { try { return again(); } catch (e) { return again(); } } again();",
    "let o = {}; for (let i = 0; i < 200000; i++) o = { o }; job.settings.deep = o;",
    "let o = {}; for (let i = 0; i < 1000; i++) o = { o }; job.addTask(author.Task('t', 'misc')); job.tasks[0].addCommand(author.Command('c', { o }));",
    // allocation
    "let s = 'x'; for (;;) s += s;",
    "const all = []; for (;;) all.push({ all });",
    "frameChunker('1-1000000', 1);",
    "frameChunker('0-2147483647', 1);",
    "shellSplit('a '.repeat(1 << 22));",
    "shellSplit('a '.repeat(1 << 24));",
    "throw new Error('x'.repeat(1 << 24));",
    "frameChunker('1,'.repeat(1 << 22) + 'x', 1);",
    "author.Task('t'.repeat(1 << 22), 'misc').addDependency(42);",
    "for (let i = 0; ; i++) job.addTask(author.Task('t' + i, 'misc'));",
    // throwing at and from API calls
    "author.Task({ toString() { throw new Error('no name'); } }, 'misc');",
    "author.Task('t');",
    "author.Command('c', 42);",
    "author.Command('c', {}, -1);",
    "job.addTask(42);",
    "job.addTask(author.Task('t', 'misc')); job.tasks[0].addCommand(author.Command('c', { get p() { throw new Error('getter'); } }));",
    "job.addTask(author.Task('t', 'misc')); job.tasks[0].addCommand(author.Command('c', { toJSON() { throw 42; } }));",
    "job.addTask(author.Task('t', 'misc')); job.tasks[0].addCommand(author.Command('c', { toJSON() { for (;;) {} } }));",
    "print({ toString() { throw new Error('print'); }, toJSON() { throw 1; } });",
    "path.join({ toString() { throw undefined; } });",
    "formatTimestampLocal(1e300);",
    "throw undefined;",
    "throw Symbol('thrown');",
    "throw { get message() { throw 1; } };",
    "throw new Proxy({}, { get() { for (;;) {} } });",
    "throw null;",
    // tampering with what the prelude relies on
    "JSON.stringify = function () { throw new Error('no JSON'); }; job.addTask(author.Task('t', 'misc'));",
    "JSON.stringify = function () { return '['; }; job.addTask(author.Task('t', 'misc'));",
    "let calls = 0; const real = JSON.stringify; JSON.stringify = function (value) { return calls++ === 0 ? '{\"settings\":{},\"metadata\":{},\"createdTasks\":1000000000000000,\"readUuids\":[]}' : real(value); };",
    "job.tasks.length = 4294967295; return;",
    "job.tasks = new Proxy([], { get() { throw new Error('proxy'); } });",
    "Object.defineProperty(author.Task('t', 'misc').constructor, Symbol.hasInstance, { value: () => true }); job.addTask({ name: 't', type: 'misc' });",
    "const t = author.Task('t', 'misc'); job.addTask(t); job.addTask(t);",
    "const a = author.Task('a', 'misc'); const b = author.Task('b', 'misc'); a.addDependency(b); b.addDependency(a); job.addTask(a); job.addTask(b);",
    "job.settings = null;",
    "job.metadata = { get x() { throw new Error('metadata'); } };",
];

/// Misbehaviour outside `compileJob`, at load time or in `JOB_TYPE`.
const HOSTILE_PREAMBLES: &[&str] = &[
    "",
    "while (true) {}",
    "JOB_TYPE.settings.push(JOB_TYPE);",
    "JOB_TYPE.label = { toJSON() { throw new Error('label'); } };",
    "JOB_TYPE.settings = [{ key: '' }];",
    "JOB_TYPE.settings = [{ key: 'k', type: 'int32', default: 1e400 }];",
    "delete globalThis.compileJob; var compileJob = 42;",
];

fn script(preamble: &str, statements: &[(String, bool)]) -> String {
    let body: String = statements
        .iter()
        .map(|(statement, caught)| {
            if *caught {
                format!("  try {{ {statement} }} catch (e) {{}}\n")
            } else {
                format!("  {statement}\n")
            }
        })
        .collect();
    format!(
        "const JOB_TYPE = {{ label: 'Hostile', settings: [] }};\n\
         {preamble}\n\
         function compileJob(job) {{\n{body}  job.addTask(author.Task('last', 'misc'));\n}}\n"
    )
}

fn input(job_type: &str) -> CompileInput {
    CompileInput {
        job_id: "2f0c8f5e-0000-4000-8000-000000000001".to_owned(),
        name: "hostile".to_owned(),
        job_type: job_type.to_owned(),
        priority: 50,
        settings: serde_json::Map::new(),
        metadata: BTreeMap::new(),
        worker_tag: None,
        shaman_checkout_id: None,
        created: chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("valid time"),
        type_etag: None,
        target_task_seconds: None,
    }
}

fn registry(dir: &Path) -> JobTypeRegistry {
    let limits = SandboxLimits {
        memory_bytes: 32 * 1024 * 1024,
        time: TIME_LIMIT,
    };
    JobTypeRegistry::new(Some(dir.to_path_buf()), limits)
}

/// Compiles job type `hostile` from `dir`. A compile that never ends ends the whole test run
/// with the script that did it: a hang cannot be turned into a failure to shrink (each try
/// would leave a thread running), and a run that never ends says nothing.
fn compile_watched(dir: &Path, code: &str) -> Result<CompiledJob, CompileError> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let registry = registry(dir);
    std::thread::spawn(move || {
        let _ = sender.send(registry.compile(input("hostile")));
    });
    receiver.recv_timeout(HUNG_AFTER).unwrap_or_else(|_| {
        eprintln!("the compile did not end within {HUNG_AFTER:?}; the script:\n{code}");
        std::process::exit(101)
    })
}

/// Compiles `code` as job type `hostile` and checks the answer: in time, and an error (if any)
/// that is the script's fault and names the job type.
fn compile_checked(code: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("hostile.js"), code).expect("write script");
    let started = Instant::now();
    let outcome = compile_watched(dir.path(), code);
    let took = started.elapsed();
    prop_assert!(took < ANSWER_WITHIN, "took {took:?} for\n{code}");
    if let Err(error) = outcome {
        let message = error.to_string();
        prop_assert!(
            matches!(
                error,
                CompileError::Script { .. } | CompileError::Limit { .. }
            ),
            "{error:?} for\n{code}"
        );
        prop_assert!(message.contains("\"hostile\""), "{message}");
        let length = message.chars().count();
        prop_assert!(
            length <= MAX_MESSAGE_CHARS,
            "{length} characters for\n{code}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(fuzz_support::cases(48))]

    #[test]
    fn hostile_scripts_end_in_time_with_an_error_naming_the_job_type(
        preamble in prop::sample::select(HOSTILE_PREAMBLES),
        statements in prop::collection::vec(
            (prop::sample::select(HOSTILE_STATEMENTS).prop_map(str::to_owned), any::<bool>()),
            1..4,
        ),
    ) {
        compile_checked(&script(preamble, &statements))?;
    }
}

/// Every statement on its own, uncaught, so each one is tried at least once.
#[test]
fn every_hostile_statement_alone_ends_in_time_with_a_named_error() {
    for statement in HOSTILE_STATEMENTS {
        let code = script("", &[((*statement).to_owned(), false)]);
        compile_checked(&code).unwrap_or_else(|failure| panic!("{failure}"));
    }
    for preamble in HOSTILE_PREAMBLES {
        compile_checked(&script(preamble, &[])).unwrap_or_else(|failure| panic!("{failure}"));
    }
}

/// Found by the property: a script that set `job.tasks.length` to 2^32-1 made the manager reserve
/// room for that many tasks (hundreds of gigabytes) before reading the first, and the failed
/// allocation aborted the process (`POST /api/v3/jobs/check` compiles this way).
#[test]
fn a_sparse_task_array_is_refused_without_reserving_room_for_it() {
    let code = "const JOB_TYPE = { label: 'Sparse', settings: [] };\n\
                function compileJob(job) { job.tasks.length = 4294967295; }\n";
    compile_checked(code).unwrap_or_else(|failure| panic!("{failure}"));
}

/// Found by the property: a script that replaced `JSON.stringify` could claim 10^15 created tasks,
/// and the manager made a uuid for each before checking anything (an aborting allocation).
#[test]
fn a_forged_task_count_is_refused_without_allocating_for_it() {
    let code = "const JOB_TYPE = { label: 'Forged', settings: [] };\n\
                function compileJob(job) {\n\
                  job.addTask(author.Task('t', 'misc'));\n\
                  let calls = 0; const real = JSON.stringify;\n\
                  JSON.stringify = function (value) { return calls++ === 0 ? \
                    '{\"settings\":{},\"metadata\":{},\"createdTasks\":1000000000000000,\"readUuids\":[]}' \
                    : real(value); };\n\
                }\n";
    compile_checked(code).unwrap_or_else(|failure| panic!("{failure}"));
}

/// Found by the property: a script that threw a 16 MiB string (or named a task with one) had
/// it returned whole in the error, and so in the 400 answer to the submitter.
#[test]
fn a_huge_thrown_message_is_cut() {
    let code = script(
        "",
        &[("throw new Error('x'.repeat(1 << 24));".to_owned(), false)],
    );
    compile_checked(&code).unwrap_or_else(|failure| panic!("{failure}"));
}

/// Found by the property: `shellSplit` ran in native code the time limit cannot stop and made its
/// words outside the memory limit: an 8 MiB text took 0.7 s past a 0.3 s limit (a 256 MiB one,
/// within the default memory limit, would take gigabytes).
#[test]
fn shell_split_refuses_a_huge_text_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let code = script(
        "",
        &[("shellSplit('a '.repeat(1 << 22));".to_owned(), false)],
    );
    std::fs::write(dir.path().join("hostile.js"), code).expect("write script");
    let started = Instant::now();
    let error = registry(dir.path())
        .compile(input("hostile"))
        .expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(
        error.to_string().contains("at most 1048576 are split"),
        "{error}"
    );
}

// ---- through a real manager ----------------------------------------------------------------

const SPIN: &str = "const JOB_TYPE = { label: 'Spin', settings: [] };\n\
                    function compileJob(job) { while (true) {} }\n";
const RECURSE: &str = "const JOB_TYPE = { label: 'Recurse', settings: [] };\n\
                       function compileJob(job) { function f() { try { return f(); } catch (e) { return f(); } } f(); }\n";
const HOG: &str = "const JOB_TYPE = { label: 'Hog', settings: [] };\n\
                   function compileJob(job) { const all = []; for (;;) all.push('x'.repeat(4096) + all.length); }\n";
const THROWER: &str = "const JOB_TYPE = { label: 'Thrower', settings: [] };\n\
                       function compileJob(job) { job.addTask(author.Task('t', 'misc')); \
                       job.tasks[0].addCommand(author.Command('c', { toJSON() { throw new Error('no parameters for you'); } })); }\n";

fn hostile_job(job_type: &str) -> serde_json::Value {
    json!({ "name": format!("{job_type} job"), "type": job_type, "priority": 50,
            "submitter_platform": "linux", "settings": {} })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_submissions_are_refused_by_name_while_other_jobs_go_through() {
    let m = common::start_configured(tempfile::tempdir().expect("temp dir"), |config| {
        config.script_time_limit_ms = 500;
        config.script_memory_limit_mb = 32;
        config.script_memory_total_mb = 64;
    })
    .await;
    let scripts = m.dir.path().join("scripts");
    std::fs::create_dir_all(&scripts).expect("scripts folder");
    for (file, code) in [
        ("spin.js", SPIN),
        ("recurse.js", RECURSE),
        ("hog.js", HOG),
        ("thrower.js", THROWER),
    ] {
        std::fs::write(scripts.join(file), code).expect("write script");
    }

    let started = Instant::now();
    let hostile = ["spin", "recurse", "hog", "thrower"].map(|job_type| {
        let m = &m;
        async move {
            let (status, body) = m.post("/api/v3/jobs", &hostile_job(job_type)).await;
            (job_type, status, body)
        }
    });
    // A normal job submitted while the hostile ones run (it may wait its turn at the gate).
    let normal = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        m.post("/api/v3/jobs", &common::echo_sleep_job(2, 0)).await
    };
    let (answers, (status, job)) = tokio::join!(futures::future::join_all(hostile), normal);
    assert_eq!(status, 200, "{job}");
    for (job_type, status, body) in answers {
        let message = body["message"].as_str().unwrap_or_default();
        assert_eq!(status, 400, "{job_type}: {body}");
        assert!(
            message.contains(&format!("\"{job_type}\"")),
            "{job_type}: {message}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );

    // Only the normal job was stored, and the manager still compiles and stores others.
    let (_, jobs) = m.get("/api/v3/jobs").await;
    assert_eq!(jobs["total"], json!(1), "{jobs}");
    assert_eq!(jobs["jobs"][0]["id"], job["id"], "{jobs}");
    let (status, body) = m.post("/api/v3/jobs", &common::echo_sleep_job(1, 0)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = m.post("/api/v3/jobs/check", &hostile_job("thrower")).await;
    assert_eq!(status, 400, "{body}");
    m.manager.shutdown().await.expect("clean shutdown");
}

/// Found by running every pair of statements: a script that filled its memory with cycles
/// (freed only by the collector), caught the out-of-memory error, then looped catching errors,
/// never ended. The time limit's uncatchable error could not be allocated, so QuickJS threw a
/// catchable out-of-memory error instead, which the loop caught, at every poll.
#[test]
fn a_loop_catching_errors_after_memory_ran_out_ends_at_the_time_limit() {
    let code = script(
        "",
        &[
            (
                "const all = []; for (;;) all.push({ all });".to_owned(),
                true,
            ),
            (
                "for (;;) { try { for (;;) {} } catch (e) {} }".to_owned(),
                true,
            ),
        ],
    );
    compile_checked(&code).unwrap_or_else(|failure| panic!("{failure}"));
}
