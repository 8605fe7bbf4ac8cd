//! `castanet preview-video JOB [--output FILE]` (what the job's live preview video holds,
//! or the video itself) and `castanet frames JOB` (every frame of the job with an image).
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::Args;
use serde_json::Value;

use crate::api_client::{Answer, ApiClient};
use crate::output::{Align, emit, table};

#[derive(Args)]
pub struct PreviewVideoArgs {
    /// Job id.
    job: String,
    /// Save the video (MP4) here instead of printing where it is.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub async fn preview_video(manager: &str, args: PreviewVideoArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let path = format!("/api/v3/jobs/{}/preview-video", args.job);
    let info = match client.get(&path).await? {
        Answer::Json(info) => info,
        Answer::Empty => {
            eprintln!(
                "no preview video yet: no frame of the job has been rendered, or it has no frame range"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let url = info
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("GET {path}: the answer has no url: {info}"))?;
    if let Some(output) = &args.output {
        let video = client.get_bytes(url).await?;
        std::fs::write(output, &video)
            .with_context(|| format!("cannot write {}", output.display()))?;
        eprintln!("saved {} ({} bytes)", output.display(), video.len());
        return Ok(ExitCode::SUCCESS);
    }
    let number = |key: &str| info.get(key).and_then(Value::as_f64).unwrap_or_default();
    emit(&format!(
        "{} of {} frames rendered (from frame {}, {} fps, {}×{})\nupdated {}\n{}\n",
        number("rendered_frames"),
        number("frame_count"),
        number("first_frame"),
        number("fps"),
        number("width"),
        number("height"),
        info.get("updated").and_then(Value::as_str).unwrap_or(""),
        client.url(url),
    ))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn frames(manager: &str, job: &str) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(manager);
    let path = format!("/api/v3/jobs/{job}/rendered-frames");
    let answer = client.get_json(&path).await?;
    let frames = answer
        .get("frames")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("GET {path}: the answer has no frames list: {answer}"))?;
    if frames.is_empty() {
        eprintln!("no frame of this job has been rendered yet");
        return Ok(ExitCode::SUCCESS);
    }
    let text = |frame: &Value, key: &str| {
        frame
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let rows: Vec<Vec<String>> = frames
        .iter()
        .map(|frame| {
            vec![
                frame
                    .get("frame")
                    .and_then(Value::as_i64)
                    .map_or_else(String::new, |f| f.to_string()),
                text(frame, "task_id"),
                text(frame, "updated"),
                client.url(&text(frame, "image")),
            ]
        })
        .collect();
    let headers = [
        ("FRAME", Align::Right),
        ("TASK", Align::Left),
        ("UPDATED", Align::Left),
        ("IMAGE", Align::Left),
    ];
    emit(&table(&headers, &rows))?;
    Ok(ExitCode::SUCCESS)
}
