//! Whole-template tests, on templates written for Castanet.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::{Error, expand};

const RENDER: &str = r#"
specificationVersion: jobtemplate-2023-09
name: "Shot {{Param.Shot}}"
description: Two dependent steps over a 2-D space.
parameterDefinitions:
- name: Shot
  type: STRING
  default: sh010
- name: OutDir
  type: PATH
  objectType: DIRECTORY
  dataFlow: OUT
- name: Last
  type: INT
  default: 3
  minValue: 1
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "1-{{Param.Last}}"
    - name: Layer
      type: STRING
      range: [bg, fg]
  script:
    actions:
      onRun:
        command: "{{Task.File.Run}}"
        args: ["{{Param.OutDir}}", "{{Task.Param.Frame}}", "{{ Task.RawParam.Layer }}"]
        timeout: 60
    embeddedFiles:
    - name: Run
      type: TEXT
      runnable: true
      filename: run.sh
      data: |
        #!/bin/sh
        echo "{{Job.Name}} {{Step.Name}} in {{Session.WorkingDirectory}}" > "$1/$2-$3"
- name: Gather
  dependencies:
  - dependsOn: Render
  script:
    actions:
      onRun:
        command: ls
        args: ["{{Param.OutDir}}"]
"#;

fn params(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

fn refusal(template: &str, values: &[(&str, Value)]) -> Error {
    expand(template, &params(values)).expect_err("the template should be refused")
}

#[test]
fn expands_a_two_dimensional_space_and_a_dependent_step() {
    let job = expand(RENDER, &params(&[("OutDir", json!("/out"))])).unwrap();
    assert_eq!(job.name, "Shot sh010");
    assert_eq!(job.steps.len(), 2);
    let render = &job.steps[0];
    let names: Vec<&str> = render.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Render Frame=1 Layer=bg",
            "Render Frame=1 Layer=fg",
            "Render Frame=2 Layer=bg",
            "Render Frame=2 Layer=fg",
            "Render Frame=3 Layer=bg",
            "Render Frame=3 Layer=fg",
        ]
    );
    let task = &render.tasks[3];
    assert_eq!(task.action.command, "{{Task.File.Run}}");
    assert_eq!(task.action.args, ["/out", "2", "fg"]);
    assert_eq!(task.action.timeout_seconds, Some(60));
    assert_eq!(task.files.len(), 1);
    assert_eq!(task.files[0].filename.as_deref(), Some("run.sh"));
    assert!(task.files[0].runnable);
    assert_eq!(
        task.files[0].data,
        "#!/bin/sh\necho \"Shot sh010 Render in {{Session.WorkingDirectory}}\" > \"$1/$2-$3\"\n"
    );
    let gather = &job.steps[1];
    assert_eq!(gather.dependencies, ["Render"]);
    assert_eq!(gather.tasks.len(), 1);
    assert_eq!(gather.tasks[0].name, "Gather");
    assert_eq!(gather.tasks[0].action.args, ["/out"]);
    assert_eq!(job.task_count(), 7);
    let last = job.parameters.iter().find(|p| p.name == "Last").unwrap();
    assert_eq!(last.value, "3");
}

#[test]
fn parameter_values_from_text_change_the_space() {
    let job = expand(
        RENDER,
        &params(&[
            ("OutDir", json!("/o")),
            ("Last", json!("5")),
            ("Shot", json!("x")),
        ]),
    )
    .unwrap();
    assert_eq!(job.steps[0].tasks.len(), 10);
    assert_eq!(job.name, "Shot x");
}

#[test]
fn bad_parameter_values_name_the_parameter_and_rule() {
    let e = refusal(RENDER, &[("OutDir", json!("/o")), ("Last", json!(0))]);
    assert_eq!(e.to_string(), "parameter Last: 0 is below minValue 1");
    let e = refusal(RENDER, &[]);
    assert!(
        e.to_string()
            .contains("parameter OutDir (PATH) needs a value"),
        "{e}"
    );
    let e = refusal(RENDER, &[("OutDir", json!("/o")), ("Frames", json!(2))]);
    assert!(e.to_string().starts_with("parameter Frames:"), "{e}");
}

#[test]
fn combination_expressions_pair_and_multiply() {
    let template = r#"
specificationVersion: jobtemplate-2023-09
name: Wedges
steps:
- name: Wedge
  parameterSpace:
    taskParameterDefinitions:
    - {name: Star, type: INT, range: "3-5"}
    - {name: Swirl, type: FLOAT, range: [5.5, 10.0, "15"]}
    - {name: Frame, type: INT, range: [1, "2"]}
    combination: "(Star, Swirl) * Frame"
  script:
    actions:
      onRun: {command: echo, args: ["{{Task.Param.Star}}/{{Task.Param.Swirl}}/{{Task.Param.Frame}}"]}
"#;
    let job = expand(template, &BTreeMap::new()).unwrap();
    let args: Vec<&str> = job.steps[0]
        .tasks
        .iter()
        .map(|t| t.action.args[0].as_str())
        .collect();
    assert_eq!(
        args,
        [
            "3/5.5/1", "3/5.5/2", "4/10.0/1", "4/10.0/2", "5/15/1", "5/15/2"
        ]
    );
}

#[test]
fn json_templates_are_read_too() {
    let template = json!({
        "specificationVersion": "jobtemplate-2023-09",
        "name": "J",
        "steps": [{"name": "S", "script": {"actions": {"onRun": {"command": "true"}}}}]
    });
    let job = expand(&template.to_string(), &BTreeMap::new()).unwrap();
    assert_eq!(job.task_count(), 1);
}

/// A minimal template with `extra` spliced into its only step (indented as a step key).
fn with_step(extra: &str) -> String {
    format!(
        "specificationVersion: jobtemplate-2023-09\nname: J\nsteps:\n- name: S\n  script:\n    \
         actions:\n      onRun:\n        command: echo\n{extra}"
    )
}

#[test]
fn unsupported_features_are_refused_by_name_and_place() {
    let cases = [
        (
            "specificationVersion: jobtemplate-2023-09\nname: J\njobEnvironments: []\nsteps: []\n".to_owned(),
            "jobEnvironments is not supported",
        ),
        (
            "specificationVersion: jobtemplate-2023-09\nextensions: [TASK_CHUNKING]\nname: J\nsteps: []\n".to_owned(),
            "extensions is not supported",
        ),
        (
            "specificationVersion: jobtemplate-2099-01\nname: J\nsteps: []\n".to_owned(),
            "specificationVersion \"jobtemplate-2099-01\" is not supported",
        ),
        (with_step("  hostRequirements: {}\n"), "steps[0].hostRequirements is not supported"),
        (with_step("  stepEnvironments: []\n"), "steps[0].stepEnvironments is not supported"),
        (
            with_step("        cancelation: {mode: NOTIFY_THEN_TERMINATE}\n"),
            "NOTIFY_THEN_TERMINATE is not supported",
        ),
        (
            with_step("    embeddedFiles:\n    - {name: F, type: BINARY, data: x}\n"),
            "steps[0].script.embeddedFiles[0].type BINARY is not supported",
        ),
        (
            with_step("        args: [\"{{Env.File.Enter}}\"]\n"),
            "steps[0].script.actions.onRun.args[0]: Env.File.Enter is not supported",
        ),
    ];
    for (template, expected) in cases {
        let e = expand(&template, &BTreeMap::new()).expect_err(expected);
        assert!(matches!(e, Error::Unsupported(_)), "{expected}: {e:?}");
        assert!(e.to_string().contains(expected), "{expected}: {e}");
    }
}

#[test]
fn broken_templates_are_refused_with_their_place() {
    let cases = [
        (
            with_step("  color: blue\n"),
            "steps[0].color is not a field of a step",
        ),
        (
            with_step("  dependencies: [{dependsOn: Nope}]\n"),
            "there is no step named \"Nope\"",
        ),
        (
            with_step("        args: [\"{{Task.File.Missing}}\"]\n"),
            "names no embedded file",
        ),
        (
            with_step("        args: [\"{{Task.Param.Frame}}\"]\n"),
            "names no task parameter",
        ),
        (
            with_step("        timeout: 0\n"),
            "timeout must be a positive whole number",
        ),
        (
            "name: J\nsteps: []\n".to_owned(),
            "specificationVersion is required",
        ),
        ("[1, 2]".to_owned(), "not valid YAML or JSON"),
        ("a: [".to_owned(), "not valid YAML or JSON"),
    ];
    for (template, expected) in cases {
        let e = expand(&template, &BTreeMap::new()).expect_err(expected);
        assert!(e.to_string().contains(expected), "{expected}: {e}");
    }
}

#[test]
fn dependency_cycles_are_refused() {
    let template = r#"
specificationVersion: jobtemplate-2023-09
name: J
steps:
- {name: A, dependencies: [{dependsOn: B}], script: {actions: {onRun: {command: a}}}}
- {name: B, dependencies: [{dependsOn: A}], script: {actions: {onRun: {command: b}}}}
"#;
    let e = expand(template, &BTreeMap::new()).unwrap_err();
    assert!(e.to_string().contains("dependency cycle"), "{e}");
}

#[test]
fn too_many_tasks_are_refused_before_they_are_made() {
    let template = r#"
specificationVersion: jobtemplate-2023-09
name: J
steps:
- name: Huge
  parameterSpace:
    taskParameterDefinitions:
    - {name: A, type: INT, range: "1-100000"}
    - {name: B, type: INT, range: "1-100000"}
  script: {actions: {onRun: {command: a}}}
"#;
    let e = expand(template, &BTreeMap::new()).unwrap_err();
    assert!(matches!(e, Error::TooBig(_)), "{e:?}");
}
