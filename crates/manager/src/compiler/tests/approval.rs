//! The approval gate's script API: a job type with `compileApproved(job)` is gated, its
//! preview pass and final pass as the built-in authors them, and `job.onComplete()`.

use serde_json::json;

use super::*;

fn settings() -> serde_json::Value {
    json!({
        "frames": "1-12", "chunk_size": 4, "preview_every_nth": 3,
        "preview_resolution_percentage": 20, "preview_samples": 2,
        "render_output_root": "/render", "add_path_components": 0,
        "render_output_path": "/render/shot/{timestamp}/######",
        "blendfile": "/projects/shot.blend", "format": "PNG",
        "image_file_extension": ".png", "scene": "Scene",
    })
}

/// The job fields a streamed compile hands out first (with the gate and the on-complete).
#[derive(Default)]
struct FieldsSink(Option<CompiledJobFields>, usize);

impl CompileSink for FieldsSink {
    fn job(&mut self, job: CompiledJobFields) -> Result<(), CompileError> {
        self.0 = Some(job);
        Ok(())
    }
    fn dependencies(&mut self, _: Vec<(String, Vec<String>)>) -> Result<(), CompileError> {
        Ok(())
    }
    fn tasks(&mut self, tasks: Vec<AuthoredTask>) -> Result<(), CompileError> {
        self.1 += tasks.len();
        Ok(())
    }
}

fn fields_of(registry: &JobTypeRegistry, input: CompileInput) -> CompiledJobFields {
    let mut sink = FieldsSink::default();
    registry
        .compile_streaming(input, &mut sink)
        .expect("compiles");
    sink.0.expect("job fields handed out")
}

fn arg_after<'a>(args: &'a serde_json::Value, flag: &str) -> &'a str {
    let list = args.as_array().expect("args");
    let at = list.iter().position(|v| v == flag).expect("flag present");
    list[at + 1].as_str().expect("text")
}

#[test]
fn the_built_in_renders_a_reduced_preview_of_every_nth_frame_and_is_gated() {
    let registry = built_ins();
    let job = registry
        .compile(input("blender-render-with-approval", settings()))
        .expect("compiles");
    // Frames 1, 4, 7, 10 in chunks of 4: one preview task.
    let names: Vec<&str> = job.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["preview-1,4,7,10"]);
    let args = &commands(&job.tasks[0])[0].parameters["args"];
    let expr = arg_after(args, "--python-expr");
    assert!(expr.contains("render.resolution_percentage = 20"), "{expr}");
    assert!(expr.contains("'samples', 2"), "{expr}");
    let output = arg_after(args, "--render-output");
    assert!(
        output.starts_with("/render/shot/") && output.ends_with("/preview/######"),
        "{output}"
    );
    let fields = fields_of(&registry, input("blender-render-with-approval", settings()));
    assert!(fields.approval_gate);
    let plain = fields_of(
        &registry,
        input(
            "simple-blender-render",
            json!({
                "frames": "1-2", "render_output_root": "/r", "add_path_components": 0,
                "render_output_path": "/r/######", "blendfile": "/b.blend", "fps": 24.0,
                "format": "PNG", "image_file_extension": ".png", "scene": "Scene",
            }),
        ),
    );
    assert!(!plain.approval_gate, "no compileApproved, no gate");
}

#[test]
fn compile_approved_authors_the_full_quality_pass_into_the_normal_output() {
    let registry = built_ins();
    let job = registry
        .compile(input("blender-render-with-approval", settings()))
        .expect("compiles");
    let stored = input("blender-render-with-approval", settings());
    let pass = registry
        .compile_approved(&stored, job.settings.clone())
        .expect("final pass compiles");
    let names: Vec<&str> = pass.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["render-1-4", "render-5-8", "render-9-12"]);
    assert_eq!(pass.tasks[1].frames.as_deref(), Some("5-8"));
    assert_eq!(pass.tasks[1].steps_total, 4);
    let args = &commands(&pass.tasks[0])[0].parameters["args"];
    let output = arg_after(args, "--render-output");
    assert!(
        !output.contains("preview") && !output.contains("{timestamp}"),
        "{output}"
    );
    assert!(!arg_after(args, "--python-expr").contains("resolution_percentage"));
    assert_eq!(pass.on_complete, None);
}

#[test]
fn on_complete_from_the_script_and_the_errors_a_script_author_sees() {
    let dir = temp_dir();
    write_script(
        dir.path(),
        "gated.js",
        "const JOB_TYPE = { label: 'Gated', settings: [] };\n\
         function compileJob(job) { job.addTask(author.Task('look', 'misc')); job.onComplete(\"cp -r out 'review server:'\"); }\n\
         function compileApproved(job) {\n\
           const a = author.Task('final-a', 'misc'); const b = author.Task('final-b', 'misc');\n\
           b.addDependency(a); job.addTask(a); job.addTask(b); job.onComplete('echo final');\n\
         }\n",
    );
    let registry = registry_in(dir.path(), SandboxLimits::default());
    let fields = fields_of(&registry, input("gated", json!({})));
    assert!(fields.approval_gate);
    assert_eq!(
        fields.on_complete.as_deref(),
        Some("cp -r out 'review server:'")
    );
    let pass = registry
        .compile_approved(&input("gated", json!({})), serde_json::Map::new())
        .expect("compiles");
    assert_eq!(pass.tasks[1].dependencies, [pass.tasks[0].uuid.clone()]);
    assert_eq!(pass.on_complete.as_deref(), Some("echo final"));

    let error =
        compile_custom("job.addTask(author.Task('a', 'misc')); job.onComplete('echo \"open');")
            .expect_err("unbalanced quotes");
    assert!(error.to_string().contains("unterminated"), "{error}");
    let error = compile_custom("job.addTask(author.Task('a', 'misc')); job.onComplete('  ');")
        .expect_err("empty");
    assert!(error.to_string().contains("job.onComplete()"), "{error}");
    let dir = temp_dir();
    write_script(
        dir.path(),
        "custom_type.js",
        &script_with_body("job.addTask(author.Task('a', 'misc'));"),
    );
    let error = registry_in(dir.path(), SandboxLimits::default())
        .compile_approved(&input("custom-type", json!({})), serde_json::Map::new())
        .err()
        .expect("no compileApproved");
    assert!(error.to_string().contains("compileApproved"), "{error}");
}
