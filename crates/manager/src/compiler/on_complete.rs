//! The on-complete task: a command line (from the submission or the job type's
//! `job.onComplete()`) run once the job's last render task finished — e.g. copying the frames to
//! a review server. It runs the worker's `exec` command (no shell) with the job's facts in its
//! environment.
use serde_json::{Map, Value, json};

use super::{AuthoredTask, paths, shell};

/// The longest command line accepted; a command, not a script.
pub const MAX_ON_COMPLETE_BYTES: usize = 8 * 1024;

/// The task's name in the job.
pub const ON_COMPLETE_TASK_NAME: &str = "on-complete";

/// Checks a command line: not empty, not too long, quotes balanced. Says what is wrong.
pub fn check_on_complete(command_line: &str) -> Result<Vec<String>, String> {
    if command_line.len() > MAX_ON_COMPLETE_BYTES {
        return Err(format!(
            "on_complete is {} bytes long; at most {MAX_ON_COMPLETE_BYTES} are accepted",
            command_line.len()
        ));
    }
    if command_line.chars().any(|c| c.is_control() && c != '\t') {
        return Err("on_complete must be one line without control characters".to_owned());
    }
    let words = shell::shell_split(command_line).map_err(|e| format!("on_complete: {e}"))?;
    if words.is_empty() {
        return Err("on_complete must name a program to run".to_owned());
    }
    Ok(words)
}

/// The directory the job renders to, from its settings (`render_output_path`, as the built-in
/// Blender job types keep it); empty when the job type has none.
fn render_output_dir(settings: &Map<String, Value>) -> String {
    settings
        .get("render_output_path")
        .and_then(Value::as_str)
        .map(paths::dirname)
        .unwrap_or_default()
}

/// The on-complete task of job `job_id`; its dependencies are set by the store (every other
/// task of the job).
pub fn on_complete_task(
    job_id: &str,
    job_name: &str,
    settings: &Map<String, Value>,
    command_line: &str,
) -> Result<AuthoredTask, String> {
    let mut words = check_on_complete(command_line)?.into_iter();
    let exe = words.next().unwrap_or_default();
    let args: Vec<String> = words.collect();
    let command = json!([{
        "name": "exec",
        "parameters": {
            "exe": exe,
            "args": args,
            "env": {
                "CASTANET_JOB_ID": job_id,
                "CASTANET_JOB_NAME": job_name,
                "CASTANET_RENDER_OUTPUT": render_output_dir(settings),
            },
        },
        "total_step_count": 0,
    }]);
    Ok(AuthoredTask {
        uuid: uuid::Uuid::new_v4().to_string(),
        name: ON_COMPLETE_TASK_NAME.to_owned(),
        task_type: "misc".to_owned(),
        priority: 50,
        commands_json: command.to_string(),
        steps_total: 1,
        dependencies: Vec::new(),
        frames: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_becomes_an_exec_with_the_job_in_its_environment() {
        let mut settings = Map::new();
        settings.insert("render_output_path".into(), json!("/out/shot/######"));
        let task = on_complete_task("j1", "Shot", &settings, "rsync -a 'my dir' host:").unwrap();
        let commands: Value = serde_json::from_str(&task.commands_json).unwrap();
        let parameters = &commands[0]["parameters"];
        assert_eq!(commands[0]["name"], "exec");
        assert_eq!(parameters["exe"], "rsync");
        assert_eq!(parameters["args"], json!(["-a", "my dir", "host:"]));
        assert_eq!(parameters["env"]["CASTANET_JOB_ID"], "j1");
        assert_eq!(parameters["env"]["CASTANET_RENDER_OUTPUT"], "/out/shot");
        assert_eq!(task.name, ON_COMPLETE_TASK_NAME);
    }

    #[test]
    fn bad_command_lines_are_refused_naming_the_problem() {
        for (line, says) in [
            ("", "name a program"),
            ("   ", "name a program"),
            ("echo 'open", "unterminated"),
            ("echo a\nrm -rf /", "one line"),
        ] {
            let why = check_on_complete(line).unwrap_err();
            assert!(why.contains(says), "{line:?}: {why}");
        }
        assert!(check_on_complete(&"x".repeat(MAX_ON_COMPLETE_BYTES + 1)).is_err());
    }
}
