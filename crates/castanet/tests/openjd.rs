//! Open Job Description templates through the real binaries: a template with a 2-D
//! parameter space (Frame 1-3 × Layer bg/fg) and a second step depending on the first,
//! submitted with `castanet submit --openjd`, run by two worker processes. Every render task
//! writes a file named by its parameter values (from an embedded, runnable script run in its
//! session directory); the gathering step lists them all. Also `castanet openjd check` and
//! refusals naming the parameter or the unsupported feature.
mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::cli as castanet;
use common::{Api, ManagerProcess, WorkerProcess};

const TEMPLATE: &str = r##"specificationVersion: jobtemplate-2023-09
name: "Layers {{Param.Shot}}"
parameterDefinitions:
- name: OutDir
  type: PATH
  objectType: DIRECTORY
  dataFlow: OUT
- name: Listing
  type: PATH
- name: Shot
  type: STRING
  default: sh010
  allowedValues: [sh010, sh020]
steps:
- name: Render
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "1-3"
    - name: Layer
      type: STRING
      range: [bg, fg]
  script:
    actions:
      onRun:
        command: "{{Task.File.Render}}"
        args: ["{{Param.OutDir}}", "{{Task.Param.Frame}}", "{{Task.Param.Layer}}"]
        timeout: 60
    embeddedFiles:
    - name: Render
      type: TEXT
      runnable: true
      filename: render.sh
      data: |
        #!/bin/sh
        set -e
        out="$1/frame-$2-$3.txt"
        echo "{{Step.Name}} {{Task.Param.Frame}} {{Task.Param.Layer}} {{Param.Shot}} $(date +%s%N)" > "$out.part"
        echo "{{Session.WorkingDirectory}}" >> "$out.part"
        pwd >> "$out.part"
        mv "$out.part" "$out"
- name: Gather
  dependencies:
  - dependsOn: Render
  script:
    actions:
      onRun:
        command: /bin/sh
        args: ["{{Task.File.Gather}}", "{{Param.OutDir}}", "{{Param.Listing}}"]
    embeddedFiles:
    - name: Gather
      type: TEXT
      data: |
        set -e
        ls "$1" | sort > "$2.part"
        date +%s%N >> "$2.part"
        mv "$2.part" "$2"
"##;

fn submitted_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("prints the job id")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_dimensional_template_with_dependent_steps_runs_on_real_workers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).expect("output dir");
    let listing = dir.path().join("listing.txt");
    let template = dir.path().join("layers.yaml");
    std::fs::write(&template, TEMPLATE).expect("template");
    let template_arg = template.to_str().expect("utf-8 path");

    // Checked locally, without a manager.
    let (ok, text, err) = castanet("http://127.0.0.1:9", &["openjd", "check", template_arg]);
    assert!(!ok, "OutDir has no default: {text}{err}");
    assert!(
        text.contains("parameter OutDir (PATH) needs a value"),
        "{text}"
    );
    let (ok, text, err) = castanet(
        "http://127.0.0.1:9",
        &[
            "openjd",
            "check",
            template_arg,
            "--param",
            "OutDir=/o",
            "--param",
            "Listing=/l",
        ],
    );
    assert!(ok, "{text}{err}");
    assert!(
        text.contains("accepted: job \"Layers sh010\", 2 steps, 7 tasks"),
        "{text}"
    );
    assert!(
        text.contains("step Gather: 1 tasks (after Render)"),
        "{text}"
    );

    std::fs::write(
        dir.path().join("castanet-manager.toml"),
        "registration_secret = \"openjd\"\n",
    )
    .expect("config");
    let manager = ManagerProcess::start(dir.path(), "127.0.0.1:0");
    let url = manager.url.clone();
    let api = Api::new(&url);
    let workers: Vec<WorkerProcess> = (1..=2)
        .map(|n| {
            let name = format!("worker-{n}");
            WorkerProcess::start(&manager, &dir.path().join(&name), &name, 1)
        })
        .collect();
    api.wait_connected(2, Duration::from_secs(30)).await;

    // A value outside allowedValues is refused before anything is sent, naming the rule.
    let out_param = format!("OutDir={}", out.display());
    let listing_param = format!("Listing={}", listing.display());
    let (ok, _, err) = castanet(
        &url,
        &[
            "submit",
            "--openjd",
            template_arg,
            "--param",
            &out_param,
            "--param",
            &listing_param,
            "--param",
            "Shot=sh999",
        ],
    );
    assert!(!ok, "{err}");
    assert!(
        err.contains("layers.yaml") && err.contains("parameter Shot"),
        "{err}"
    );

    let (ok, text, err) = castanet(
        &url,
        &[
            "submit",
            "--openjd",
            template_arg,
            "--param",
            &out_param,
            "--param",
            &listing_param,
            "--param",
            "Shot=sh020",
            "--priority",
            "70",
        ],
    );
    assert!(ok, "{text}{err}");
    let job_id = submitted_id(&text);
    let job = api
        .wait_for_job(&job_id, Duration::from_secs(60), |j| {
            matches!(
                j["status"].as_str(),
                Some("completed" | "failed" | "canceled")
            )
        })
        .await;
    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["type"], "openjd");
    assert_eq!(job["name"], "Layers sh020");
    assert_eq!(job["priority"], 70);
    let tasks = api.tasks(&job_id).await;
    assert_eq!(tasks.len(), 7);
    assert!(
        tasks.iter().all(|t| t["status"] == "completed"),
        "{tasks:?}"
    );

    // Every (Frame, Layer) ran once with its own values, in a session directory of its own
    // that is gone afterwards.
    let mut render_times = Vec::new();
    let mut sessions = BTreeSet::new();
    for frame in 1..=3 {
        for layer in ["bg", "fg"] {
            let file = out.join(format!("frame-{frame}-{layer}.txt"));
            let content = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let lines: Vec<&str> = content.lines().collect();
            assert_eq!(lines.len(), 3, "{content}");
            let words: Vec<&str> = lines[0].split(' ').collect();
            assert_eq!(
                words[..4],
                ["Render", &frame.to_string(), layer, "sh020"],
                "{content}"
            );
            render_times.push(words[4].parse::<u128>().expect("a timestamp"));
            let session = lines[1];
            assert!(session.contains("castanet-openjd-"), "{content}");
            assert!(
                lines[2].ends_with(
                    Path::new(session)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("?")
                ),
                "the script ran in its session directory: {content}"
            );
            assert!(!Path::new(session).exists(), "{session} was removed");
            sessions.insert(session.to_owned());
        }
    }
    assert_eq!(sessions.len(), 6, "each task had its own session directory");

    // The gathering step ran after every render and saw all six outputs.
    let listing_text = std::fs::read_to_string(&listing).expect("the listing was written");
    let mut lines: Vec<&str> = listing_text.lines().collect();
    let gathered_at: u128 = lines
        .pop()
        .and_then(|t| t.parse().ok())
        .expect("a timestamp");
    let expected: Vec<String> = (1..=3)
        .flat_map(|f| ["bg", "fg"].map(|l| format!("frame-{f}-{l}.txt")))
        .collect();
    assert_eq!(lines, expected);
    assert!(
        render_times.iter().all(|t| *t <= gathered_at),
        "{render_times:?} then {gathered_at}"
    );

    // An unsupported feature is refused by the manager too, naming it (here sent without the
    // CLI's local check).
    let refused = TEMPLATE.replacen(
        "- name: Gather\n",
        "- name: Gather\n  hostRequirements: {}\n",
        1,
    );
    let answer = reqwest::Client::new()
        .post(format!("{url}/api/v3/jobs/openjd"))
        .json(&serde_json::json!({"template": refused, "parameters": {"OutDir": "/o", "Listing": "/l"}}))
        .send()
        .await
        .expect("the manager answers");
    assert_eq!(answer.status().as_u16(), 400);
    let body: serde_json::Value = answer.json().await.expect("JSON");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("steps[1].hostRequirements is not supported")),
        "{body}"
    );

    for worker in workers {
        worker.stop();
    }
    manager.stop();
}
