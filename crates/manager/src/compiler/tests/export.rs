//! What a compile hands out: commands as JSON text that reads back, fresh uuids in ascending
//! order, and — when streamed — the job, then its dependencies, then its tasks.

use serde_json::json;

use super::*;

#[test]
fn commands_keep_every_json_value_and_refuse_what_json_cannot_carry() {
    let job = compile_custom(
        "const t = author.Task('t', 'misc');\n\
         t.addCommand(author.Command('echo', {text: 'caf\\u00e9 \\ud83d\\ude00 \"quoted\" \\\\ back', n: -0, big: 1e21, small: 0.1, list: [undefined, null, true], skipped: undefined}));\n\
         t.addCommand(author.Command('sleep', undefined, 7));\n\
         job.addTask(t);",
    )
    .expect("compiles");
    let task = &job.tasks[0];
    assert_eq!(
        commands(task),
        vec![
            AuthoredCommand {
                name: "echo".to_owned(),
                parameters: json!({
                    "text": "café 😀 \"quoted\" \\ back", "n": 0, "big": 1e21, "small": 0.1,
                    "list": [null, null, true],
                }),
                total_step_count: 0,
            },
            AuthoredCommand {
                name: "sleep".to_owned(),
                parameters: json!({}),
                total_step_count: 7,
            },
        ]
    );
    // A command without steps of its own counts as one.
    assert_eq!(task.steps_total, 8);

    let error = compile_custom(
        "const t = author.Task('t', 'misc');\n\
         t.addCommand(author.Command('echo', {text: 'lone \\ud800 half'}));\n\
         job.addTask(t);",
    )
    .expect_err("a lone surrogate cannot be stored as JSON");
    assert!(
        error.to_string().contains("job.tasks[0] could not be read"),
        "{error}"
    );

    let error = compile_custom(
        "let deep = {}; for (let i = 0; i < 200; i++) deep = {deep};\n\
         const t = author.Task('t', 'misc');\n\
         t.addCommand(author.Command('echo', deep));\n\
         job.addTask(t);",
    )
    .expect_err("nesting beyond what the manager reads back");
    assert!(
        error.to_string().contains("job.tasks[0] could not be read"),
        "{error}"
    );
}

#[test]
fn commands_changed_after_they_were_made_must_still_be_storable() {
    let error = compile_custom(
        "const t = author.Task('t', 'misc');\n\
         const c = author.Command('echo', {});\n\
         c.totalStepCount = 'many';\n\
         t.addCommand(c);\n\
         job.addTask(t);",
    )
    .expect_err("a step count that is not a number");
    assert!(
        error
            .to_string()
            .contains("command 0 was changed into one that cannot be stored"),
        "{error}"
    );
}

#[test]
fn fresh_task_uuids_ascend_in_job_order() {
    let job = built_ins()
        .compile(input(
            "echo-sleep-test",
            json!({"message": "hi", "sleep_repeats": 200}),
        ))
        .expect("compiles");
    assert_eq!(job.tasks.len(), 201);
    assert!(
        job.tasks.windows(2).all(|pair| pair[0].uuid < pair[1].uuid),
        "uuids ascend"
    );
    for task in &job.tasks {
        let uuid = uuid::Uuid::parse_str(&task.uuid).expect("a uuid");
        assert_eq!(uuid.get_version_num(), 4);
    }
}

#[derive(Default)]
struct RecordingSink {
    events: Vec<String>,
    dependencies: Vec<(String, Vec<String>)>,
    tasks: Vec<AuthoredTask>,
}

impl CompileSink for RecordingSink {
    fn job(&mut self, job: CompiledJobFields) -> Result<(), CompileError> {
        self.events.push(format!("job of {} tasks", job.task_count));
        Ok(())
    }

    fn dependencies(
        &mut self,
        dependencies: Vec<(String, Vec<String>)>,
    ) -> Result<(), CompileError> {
        self.events.push("dependencies".to_owned());
        self.dependencies.extend(dependencies);
        Ok(())
    }

    fn tasks(&mut self, tasks: Vec<AuthoredTask>) -> Result<(), CompileError> {
        self.events.push(format!("{} tasks", tasks.len()));
        self.tasks.extend(tasks);
        Ok(())
    }
}

#[test]
fn a_streamed_compile_hands_out_the_job_then_dependencies_then_tasks_in_batches() {
    let mut sink = RecordingSink::default();
    built_ins()
        .compile_streaming(
            input(
                "echo-sleep-test",
                json!({"message": "hi", "sleep_repeats": 1500}),
            ),
            &mut sink,
        )
        .expect("compiles");
    assert_eq!(
        sink.events,
        [
            "job of 1501 tasks",
            "dependencies",
            "1024 tasks",
            "477 tasks"
        ]
    );
    assert!(sink.tasks.iter().all(|task| task.dependencies.is_empty()));
    let echo = &sink.tasks[0].uuid;
    assert_eq!(sink.dependencies.len(), 1500);
    for ((task, waits_for), sleep) in sink.dependencies.iter().zip(&sink.tasks[1..]) {
        assert_eq!((task, waits_for), (&sleep.uuid, &vec![echo.clone()]));
    }

    // A sink that gives up stops the compile with its error.
    struct Refusing;
    impl CompileSink for Refusing {
        fn job(&mut self, _: CompiledJobFields) -> Result<(), CompileError> {
            Err(CompileError::Internal("no room".to_owned()))
        }
        fn dependencies(&mut self, _: Vec<(String, Vec<String>)>) -> Result<(), CompileError> {
            Ok(())
        }
        fn tasks(&mut self, _: Vec<AuthoredTask>) -> Result<(), CompileError> {
            Ok(())
        }
    }
    let error = built_ins()
        .compile_streaming(
            input("echo-sleep-test", json!({"message": "hi"})),
            &mut Refusing,
        )
        .expect_err("the sink refused");
    assert_eq!(error, CompileError::Internal("no room".to_owned()));
}

#[test]
fn a_task_graph_that_cannot_be_read_up_front_fails_where_it_always_did() {
    // The culprit comes after a task with another problem: that one is reported, in task order.
    let error = compile_custom(
        "const a = author.Task('a', 'misc'); a.priority = 'high'; job.addTask(a);\n\
         const b = author.Task('b', 'misc'); b.dependencies.push('not a task'); job.addTask(b);",
    )
    .expect_err("two problems");
    assert!(
        error
            .to_string()
            .contains("task \"a\": priority must be a whole number"),
        "{error}"
    );
    let error = compile_custom(
        "const a = author.Task('a', 'misc'); job.addTask(a); job.tasks.push({name: 'impostor'});",
    )
    .expect_err("not a task");
    assert!(
        error
            .to_string()
            .contains("job.tasks[1] is not a task made by author.Task()"),
        "{error}"
    );
    let error = compile_custom(
        "const b = author.Task('b', 'misc'); b.dependencies = undefined; job.addTask(b);",
    )
    .expect_err("no dependency list");
    assert!(error.to_string().contains("TypeError"), "{error}");
}
