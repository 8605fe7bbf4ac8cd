//! Where each command writes and which files it reads, read from its parameters without
//! running it, for the worker's check before a task runs (`self_check`). A parameter that does
//! not read is left to the command itself, which names it properly when it runs.
use std::path::{Path, PathBuf};

use super::Params;

/// The directories command `name` writes into: absolute paths only (a relative one depends on
/// where the program runs), without Blender's blend-relative `//` paths and templated
/// (`{stem}`) ones.
pub fn output_directories(name: &str, parameters_json: &str) -> Vec<PathBuf> {
    let Ok(params) = Params::parse(parameters_json) else {
        return Vec::new();
    };
    let text = |key: &str| params.string(key).ok().map(str::to_owned);
    let written: Option<String> = match name {
        "blender-render" => params
            .string_list("args")
            .ok()
            .and_then(|args| super::blender::render_output(&args))
            .filter(|output| !output.starts_with("//")),
        "frames-to-video" => text("outputFile"),
        "ffmpeg-each" => text("outputPattern"),
        "copy-file" | "move-directory" => text("dest"),
        // Made, not written into: see `directories_made`.
        _ => None,
    };
    written
        .as_deref()
        .and_then(directory_of)
        .into_iter()
        .collect()
}

/// The directories command `name` makes (`create-directory`): one that exists already needs
/// no write at all; a missing one needs its nearest existing parent to take it.
pub fn directories_made(name: &str, parameters_json: &str) -> Vec<PathBuf> {
    if !matches!(name, "create-directory" | "make-directory") {
        return Vec::new();
    }
    let Ok(params) = Params::parse(parameters_json) else {
        return Vec::new();
    };
    params
        .string("path")
        .ok()
        .filter(|path| !path.contains('{'))
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .into_iter()
        .collect()
}

/// The files command `name` reads that must be there before it starts (absolute paths only):
/// the .blend of `blender-render`, the source of `copy-file` and `move-directory`.
pub fn input_files(name: &str, parameters_json: &str) -> Vec<PathBuf> {
    let Ok(params) = Params::parse(parameters_json) else {
        return Vec::new();
    };
    let key = match name {
        "blender-render" => "blendfile",
        "copy-file" | "move-directory" => "src",
        _ => return Vec::new(),
    };
    params
        .string(key)
        .ok()
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
        .into_iter()
        .collect()
}

/// The directories whose files command `name` reads (absolute paths only): the folder of the
/// frames `frames-to-video` and `ffmpeg-each` take (`inputGlob`). A worker without shared
/// storage fetches their files before the task runs.
pub fn input_directories(name: &str, parameters_json: &str) -> Vec<PathBuf> {
    if !matches!(name, "frames-to-video" | "ffmpeg-each") {
        return Vec::new();
    }
    let Ok(params) = Params::parse(parameters_json) else {
        return Vec::new();
    };
    params
        .string("inputGlob")
        .ok()
        .and_then(|glob| Path::new(glob).parent().map(Path::to_path_buf))
        .filter(|dir| dir.is_absolute() && !dir.to_string_lossy().contains(['*', '?', '[']))
        .into_iter()
        .collect()
}

/// The directory a written path lands in: a path ending in a separator is one (Blender's
/// `-o /renders/shot/`), anything else is a file (or a frame pattern) in its parent.
fn directory_of(path: &str) -> Option<PathBuf> {
    let as_path = Path::new(path);
    if path.contains('{') || !as_path.is_absolute() {
        return None;
    }
    if path.ends_with('/') || path.ends_with(std::path::MAIN_SEPARATOR) {
        Some(as_path.to_path_buf())
    } else {
        as_path.parent().map(Path::to_path_buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(name: &str, params: serde_json::Value) -> Vec<PathBuf> {
        output_directories(name, &params.to_string())
    }

    #[test]
    fn each_writing_command_names_its_directory() {
        let render = serde_json::json!({"exe": "blender", "blendfile": "/p/a.blend",
            "args": ["--render-output", "/renders/shot/######", "--render-frame", "1"]});
        assert_eq!(
            dirs("blender-render", render),
            [PathBuf::from("/renders/shot")]
        );
        let folder = serde_json::json!({"args": ["-o", "/renders/shot/"]});
        assert_eq!(
            dirs("blender-render", folder),
            [PathBuf::from("/renders/shot/")]
        );
        let video = serde_json::json!({"outputFile": "/renders/shot.mp4"});
        assert_eq!(dirs("frames-to-video", video), [PathBuf::from("/renders")]);
        let copy = serde_json::json!({"src": "/a/b", "dest": "/c/d"});
        assert_eq!(dirs("copy-file", copy), [PathBuf::from("/c")]);
        let mkdir = serde_json::json!({"path": "/c/new"}).to_string();
        assert!(output_directories("create-directory", &mkdir).is_empty());
        assert_eq!(
            directories_made("create-directory", &mkdir),
            [PathBuf::from("/c/new")]
        );
    }

    #[test]
    fn inputs_are_the_blend_file_and_the_sources() {
        let render = serde_json::json!({"blendfile": "/p/a.blend", "args": []});
        assert_eq!(
            input_files("blender-render", &render.to_string()),
            [PathBuf::from("/p/a.blend")]
        );
        let copy = serde_json::json!({"src": "/a/b", "dest": "/c/d"});
        assert_eq!(
            input_files("copy-file", &copy.to_string()),
            [PathBuf::from("/a/b")]
        );
        let relative = serde_json::json!({"blendfile": "a.blend"});
        assert!(input_files("blender-render", &relative.to_string()).is_empty());
        assert!(input_files("echo", "{}").is_empty());
    }

    #[test]
    fn frame_folders_are_read_by_the_video_commands() {
        let video = serde_json::json!({"inputGlob": "/renders/shot/*.png"}).to_string();
        assert_eq!(
            input_directories("frames-to-video", &video),
            [PathBuf::from("/renders/shot")]
        );
        let wild = serde_json::json!({"inputGlob": "/renders/*/x.png"}).to_string();
        assert!(input_directories("ffmpeg-each", &wild).is_empty());
        assert!(input_directories("blender-render", &video).is_empty());
    }

    #[test]
    fn paths_that_cannot_be_checked_here_are_left_out() {
        let relative = serde_json::json!({"args": ["-o", "//renders/######"]});
        assert!(dirs("blender-render", relative).is_empty());
        let templated = serde_json::json!({"outputPattern": "/out/{stem}/{stem}.mp4"});
        assert!(dirs("ffmpeg-each", templated).is_empty());
        assert!(
            dirs(
                "frames-to-video",
                serde_json::json!({"outputFile": "out.mp4"})
            )
            .is_empty()
        );
        assert!(dirs("echo", serde_json::json!({"message": "hi"})).is_empty());
        assert!(dirs("blender-render", serde_json::json!({"args": 42})).is_empty());
        assert!(output_directories("copy-file", "not json").is_empty());
    }
}
