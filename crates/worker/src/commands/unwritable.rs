//! Outputs that cannot be written (fault class OUTPUT_UNWRITABLE), recognised in Blender's and
//! FFmpeg's messages and in the I/O errors of the file commands. It is not a missing input:
//! the job's inputs were fine, and maybe only this worker's view of the storage is wrong (a
//! read-only or absent mount), so the manager tries other workers before blaming the job.

use std::collections::VecDeque;
use std::io;

use castanet_protocol::v1::FaultClass;

use super::CommandError;

/// The OS's words (strerror) for "cannot write there". A full disk is not among them: it has
/// its own class.
const WRITE_ERRORS: [&str; 6] = [
    "Read-only file system",
    "Permission denied",
    "Operation not permitted",
    "Not a directory",
    "Is a directory",
    // The output's directory is absent and could not be made (Blender makes it if it can).
    "No such file or directory",
];

const DISK_FULL: [&str; 2] = ["No space left on device", "Disk quota exceeded"];

/// An output the program said it could not write.
#[derive(Debug, Clone, Default, PartialEq)]
struct Unwritable {
    /// The file, when the program named it.
    path: Option<String>,
    /// The program's own reason, used when no OS error line names the file.
    reason: Option<String>,
}

/// Rewrites `result` as OUTPUT_UNWRITABLE when `found` explains it: only failures that an
/// unwritable output causes (the exit code, a "file not found" read off the output, frames
/// missing afterwards, or the generic "Read-only file system" class, whose message quotes a
/// line instead of naming the file) are rewritten; crashes, hangs, codec errors and a full
/// disk stay.
fn explain(
    result: Result<(), CommandError>,
    program: &str,
    found: Option<&Unwritable>,
    os_reason: impl Fn(&str) -> Option<String>,
    fallback_path: Option<&str>,
) -> Result<(), CommandError> {
    let (Err(error), Some(found)) = (&result, found) else {
        return result;
    };
    let explained = matches!(
        error,
        CommandError::Failed {
            fault: FaultClass::NonzeroExit
                | FaultClass::MissingInput
                | FaultClass::MissingOutput
                | FaultClass::OutputUnwritable,
            ..
        }
    );
    if !explained {
        return result;
    }
    let path = found.path.as_deref().or(fallback_path);
    let reason = path
        .and_then(&os_reason)
        .or_else(|| found.reason.clone())
        .unwrap_or_else(|| "could not open it for writing".to_string());
    if DISK_FULL.iter().any(|text| reason.contains(text)) {
        return result;
    }
    let path = path.unwrap_or("(not named)");
    let hint = if reason == "No such file or directory" {
        " (its directory is missing)"
    } else {
        ""
    };
    Err(CommandError::new(
        FaultClass::OutputUnwritable,
        format!("{program} cannot write its output {path}: {reason}{hint}"),
    ))
}

/// `(path, reason)` of an OS error line `<path>: <strerror>` about writing.
fn os_error_line(line: &str) -> Option<(&str, &str)> {
    WRITE_ERRORS
        .iter()
        .chain(DISK_FULL.iter())
        .find_map(|text| {
            let path = line.strip_suffix(text)?.strip_suffix(": ")?;
            (!path.is_empty()).then_some((path, *text))
        })
}

/// The text between the quotes in `…<marker>'<text>'`.
fn quoted_after(line: &str, marker: &str) -> Option<String> {
    let (_, rest) = line.split_once(marker)?;
    let rest = rest.trim().strip_prefix('\'')?;
    let (quoted, _) = rest.rsplit_once('\'')?;
    Some(quoted.to_string())
}

/// What Blender said about files it could not save. Blender 3.4–5.x print, for an image:
///
/// ```text
/// imb_savepng: Cannot open file for writing: '/out/frame_0001.png'   (PNG and WebP only)
/// /out/frame_0001.png: Read-only file system                          (not for EXR)
/// Error: Render error (Invalid argument) cannot save: '/out/frame_0001.png'
/// ```
///
/// then quit with exit code 1; for a movie, `Error: Could not open file for writing` and exit 0.
/// The errno in "Render error (…)" is stale for PNG, so the OS error line is preferred.
#[derive(Debug, Default)]
pub struct BlenderWrites {
    found: Option<Unwritable>,
    /// Recent `<path>: <strerror>` lines; they come before or after the line naming the file.
    os_errors: VecDeque<(String, String)>,
}

impl BlenderWrites {
    const OS_ERRORS_KEPT: usize = 16;

    pub fn note(&mut self, line: &str) {
        let line = crate::progress::blender::strip_render_prefix(line.trim());
        if let Some((path, reason)) = os_error_line(line) {
            if self.os_errors.len() == Self::OS_ERRORS_KEPT {
                self.os_errors.pop_front();
            }
            self.os_errors
                .push_back((path.to_string(), reason.to_string()));
            return;
        }
        if self.found.as_ref().is_some_and(|f| f.path.is_some()) {
            return;
        }
        let found = if let Some(path) = quoted_after(line, "Cannot open file for writing: ") {
            Unwritable {
                path: Some(path),
                reason: None,
            }
        } else if line.starts_with("Error: Render error (") && line.contains(") cannot save: '") {
            let reason = line
                .strip_prefix("Error: Render error (")
                .and_then(|rest| rest.split_once(") cannot save: "))
                .map(|(reason, _)| reason.to_string());
            Unwritable {
                path: quoted_after(line, ") cannot save: "),
                reason,
            }
        } else if let Some(path) = line.strip_prefix("Cannot save Node File Output to ") {
            Unwritable {
                path: Some(path.trim().to_string()),
                reason: None,
            }
        } else if line.ends_with("Could not open file for writing") {
            // A movie output; Blender does not name the file.
            Unwritable::default()
        } else {
            return;
        };
        self.found = Some(found);
    }

    /// `result` as OUTPUT_UNWRITABLE when Blender said it could not save; `render_output` (the
    /// `-o` argument) names the output when Blender did not.
    pub fn explain(
        &self,
        result: Result<(), CommandError>,
        render_output: Option<&str>,
    ) -> Result<(), CommandError> {
        let os_reason = |path: &str| {
            self.os_errors
                .iter()
                .rev()
                .find(|(p, _)| p == path)
                .map(|(_, reason)| reason.clone())
        };
        explain(
            result,
            "Blender",
            self.found.as_ref(),
            os_reason,
            render_output,
        )
    }
}

/// What FFmpeg said about its output file: `<output>: <strerror>` (FFmpeg ≤ 5) or
/// `Error opening output <output>: <strerror>` (FFmpeg 6 and later).
#[derive(Debug)]
pub struct FfmpegWrites {
    output: String,
    found: Option<Unwritable>,
}

impl FfmpegWrites {
    pub fn new(output: &str) -> Self {
        Self {
            output: output.to_string(),
            found: None,
        }
    }

    pub fn note(&mut self, line: &str) {
        if self.found.is_some() || self.output.is_empty() {
            return;
        }
        let needle = format!("{}: ", self.output);
        let reason = line.match_indices(&needle).find_map(|(at, _)| {
            let rest = line[at + needle.len()..].trim_end();
            WRITE_ERRORS
                .iter()
                .chain(DISK_FULL.iter())
                .find(|text| rest.starts_with(*text))
        });
        if let Some(reason) = reason {
            self.found = Some(Unwritable {
                path: Some(self.output.clone()),
                reason: Some(reason.to_string()),
            });
        }
    }

    /// `result` as OUTPUT_UNWRITABLE when FFmpeg said it could not open its output.
    pub fn explain(&self, result: Result<(), CommandError>) -> Result<(), CommandError> {
        explain(result, "FFmpeg", self.found.as_ref(), |_| None, None)
    }
}

/// An I/O error while writing `path` (a file command's destination) as OUTPUT_UNWRITABLE, when
/// it means the location cannot be written; `None` for other errors.
pub fn write_failure(what: &str, error: &io::Error) -> Option<CommandError> {
    let unwritable = matches!(
        error.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::NotADirectory
    );
    unwritable.then(|| CommandError::new(FaultClass::OutputUnwritable, format!("{what}: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_1() -> Result<(), CommandError> {
        Err(CommandError::new(
            FaultClass::NonzeroExit,
            "command exited abnormally with code 1",
        ))
    }

    fn blender(lines: &[&str], result: Result<(), CommandError>) -> Result<(), CommandError> {
        let mut writes = BlenderWrites::default();
        for line in lines {
            writes.note(line);
        }
        writes.explain(result, Some("/out/frame_####"))
    }

    fn unwritable(message: &str) -> Result<(), CommandError> {
        Err(CommandError::new(FaultClass::OutputUnwritable, message))
    }

    #[test]
    fn blender_png_names_the_file_and_the_os_reason() {
        let lines = [
            "Fra:1 Mem:10.06M (Peak 10.83M) | Time:00:00.05 | Scene, ViewLayer | Finished",
            "imb_savepng: Cannot open file for writing: '/ro/out/frame_0001.png'",
            "/ro/out/frame_0001.png: Read-only file system",
            "Error: Render error (Invalid argument) cannot save: '/ro/out/frame_0001.png'",
            " Time: 00:00.21 (Saving: 00:00.16)",
            "Blender quit",
        ];
        assert_eq!(
            blender(&lines, exit_1()),
            unwritable(
                "Blender cannot write its output /ro/out/frame_0001.png: Read-only file system"
            )
        );
        // The generic classification already saw "Read-only file system"; the file is named.
        let generic = Err(CommandError::new(
            FaultClass::OutputUnwritable,
            "command exited abnormally with code 1: /ro/out/frame_0001.png: Read-only file system",
        ));
        assert_eq!(
            blender(&lines, generic),
            unwritable(
                "Blender cannot write its output /ro/out/frame_0001.png: Read-only file system"
            )
        );
        // A directory Blender could not make on a read-only mount: not a missing input.
        let lines = [
            "imb_savepng: Cannot open file for writing: '/ro/new/frame_0001.png'",
            "/ro/new/frame_0001.png: No such file or directory",
            "Error: Render error (Invalid argument) cannot save: '/ro/new/frame_0001.png'",
        ];
        let missing = Err(CommandError::new(
            FaultClass::MissingInput,
            "command exited abnormally with code 1: /ro/new/frame_0001.png: No such file or directory",
        ));
        assert_eq!(
            blender(&lines, missing),
            unwritable(
                "Blender cannot write its output /ro/new/frame_0001.png: No such file or directory \
                 (its directory is missing)"
            )
        );
    }

    #[test]
    fn blender_other_formats_and_movies() {
        // JPEG: the OS error comes before the line naming the file.
        let lines = [
            "/f/out/frame_0001.jpg: Not a directory",
            "Error: Render error (Invalid argument) cannot save: '/f/out/frame_0001.jpg'",
        ];
        assert_eq!(
            blender(&lines, exit_1()),
            unwritable("Blender cannot write its output /f/out/frame_0001.jpg: Not a directory")
        );
        // EXR: only the render error, whose errno is right.
        let lines = [
            "Error: Error writing render result, Not a directory (see console)",
            "Error: Render error (Not a directory) cannot save: '/f/out/frame_0001.exr'",
        ];
        assert_eq!(
            blender(&lines, exit_1()),
            unwritable("Blender cannot write its output /f/out/frame_0001.exr: Not a directory")
        );
        // Blender 5 prefixes its lines.
        let lines = [
            "12:00:01.250 render | Error: Render error (Permission denied) cannot save: '/x/a.png'",
        ];
        assert_eq!(
            blender(&lines, exit_1()),
            unwritable("Blender cannot write its output /x/a.png: Permission denied")
        );
        // A movie: Blender exits 0 without naming the file; the frames are then missing.
        let missing_frames = Err(CommandError::new(
            FaultClass::MissingOutput,
            "Blender exited normally but did not write frame(s) 1",
        ));
        assert_eq!(
            blender(&["Error: Could not open file for writing"], missing_frames),
            unwritable(
                "Blender cannot write its output /out/frame_####: could not open it for writing"
            )
        );
    }

    #[test]
    fn blender_failures_an_unwritable_output_does_not_explain_stay() {
        let lines = ["Error: Render error (Invalid argument) cannot save: '/x/a.png'"];
        assert_eq!(blender(&lines, Ok(())), Ok(()), "every frame was verified");
        let crash = Err(CommandError::new(
            FaultClass::Crashed,
            "killed by signal 11",
        ));
        assert_eq!(blender(&lines, crash.clone()), crash);
        // A full disk keeps its own class.
        let full = [
            "/x/a.png: No space left on device",
            "Error: Render error (Invalid argument) cannot save: '/x/a.png'",
        ];
        assert_eq!(blender(&full, exit_1()), exit_1());
        // Unrelated lines, and a missing .blend, change nothing.
        let lines = [
            "Warning: Unable to open '/tex/wood.png'",
            "Read blend: /x.blend",
        ];
        assert_eq!(blender(&lines, exit_1()), exit_1());
    }

    #[test]
    fn ffmpeg_names_its_output() {
        let out = "/ro/clip.mp4";
        for line in [
            "/ro/clip.mp4: Read-only file system",
            "[out#0/mp4 @ 0x55d0c] Error opening output /ro/clip.mp4: Read-only file system",
        ] {
            let mut writes = FfmpegWrites::new(out);
            writes.note("Input #0, image2, from '/in/*.png':");
            writes.note(line);
            assert_eq!(
                writes.explain(exit_1()),
                unwritable("FFmpeg cannot write its output /ro/clip.mp4: Read-only file system")
            );
        }
        // The output's directory is absent: FFmpeg's "No such file or directory" is about the
        // output, not an input.
        let mut writes = FfmpegWrites::new("/none/clip.mp4");
        writes.note("/none/clip.mp4: No such file or directory");
        let missing = Err(CommandError::new(FaultClass::MissingInput, "x"));
        assert!(matches!(
            writes.explain(missing),
            Err(CommandError::Failed {
                fault: FaultClass::OutputUnwritable,
                ..
            })
        ));
        // An input whose name starts like the output is still an input.
        let mut writes = FfmpegWrites::new("/x/a");
        writes.note("/x/a.png: No such file or directory");
        let missing = Err(CommandError::new(FaultClass::MissingInput, "x"));
        assert_eq!(writes.explain(missing.clone()), missing);
    }

    #[test]
    fn write_errors_of_file_commands() {
        let readonly = io::Error::from(io::ErrorKind::ReadOnlyFilesystem);
        assert!(matches!(
            write_failure("cannot create directory /ro/x", &readonly),
            Some(CommandError::Failed { fault: FaultClass::OutputUnwritable, message })
                if message.starts_with("cannot create directory /ro/x: ")
        ));
        let notdir = io::Error::from_raw_os_error(libc::ENOTDIR);
        assert!(write_failure("x", &notdir).is_some());
        let denied = io::Error::from_raw_os_error(libc::EACCES);
        assert!(write_failure("x", &denied).is_some());
        let full = io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(write_failure("x", &full), None);
        let absent = io::Error::from(io::ErrorKind::NotFound);
        assert_eq!(write_failure("x", &absent), None);
    }
}
