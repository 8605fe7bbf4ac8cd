//! What this machine offers: platform name, hostname, CPU cores, RAM, GPUs (`gpu.rs`), and
//! the render software it can run (Blender and FFmpeg versions).

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use castanet_protocol::v1::Capabilities;

/// How long `blender --version` / `ffmpeg -version` may take before the tool counts as absent.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// "linux", "windows" or "darwin" (Go's names, as Flamenco uses them); other systems as Rust names them.
pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// The machine's hostname, or "castanet-worker" when it cannot be read.
pub fn hostname() -> String {
    crate::platform::hostname()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "castanet-worker".to_string())
}

/// Logical CPUs available to this process.
pub fn cpu_cores() -> u32 {
    std::thread::available_parallelism()
        .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
        .unwrap_or(1)
}

/// Total RAM in bytes (from /proc/meminfo on Linux; 0 where unknown).
pub fn ram_bytes() -> u64 {
    if cfg!(target_os = "linux") {
        std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| parse_meminfo_total(&text))
            .unwrap_or(0)
    } else {
        0
    }
}

/// `MemTotal:       16318412 kB` → bytes.
fn parse_meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let mut fields = line["MemTotal:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    let unit = match fields.next() {
        None => 1,
        Some(u) if u.eq_ignore_ascii_case("kb") => 1024,
        Some(u) if u.eq_ignore_ascii_case("mb") => 1024 * 1024,
        Some(_) => return None,
    };
    value.checked_mul(unit)
}

/// Cores, RAM, GPUs and software versions, for SignOn.
pub async fn capabilities() -> Capabilities {
    let (gpus, software) = tokio::join!(crate::gpu::detect(), detect_software());
    Capabilities {
        cpu_cores: cpu_cores(),
        ram_bytes: ram_bytes(),
        gpus,
        software,
    }
}

/// Versions of Blender and FFmpeg found on PATH; a tool that is absent or hangs is not listed.
pub async fn detect_software() -> HashMap<String, String> {
    let (blender, ffmpeg) =
        tokio::join!(probe("blender", "--version"), probe("ffmpeg", "-version"));
    let mut software = HashMap::new();
    for (name, line) in [("blender", blender), ("ffmpeg", ffmpeg)] {
        match line {
            Some(line) => {
                let version = version_from_line(&line);
                tracing::info!(tool = name, %version, "found {name}");
                software.insert(name.to_string(), version);
            }
            None => tracing::info!(tool = name, "{name} not found on PATH"),
        }
    }
    software
}

/// Runs `exe arg` and returns the line that names the tool (else the first non-empty line).
async fn probe(exe: &str, arg: &str) -> Option<String> {
    let run = tokio::process::Command::new(exe)
        .arg(arg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(PROBE_TIMEOUT, run).await.ok()?.ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.clone().next()?;
    let named = lines.find(|l| l.to_ascii_lowercase().starts_with(exe));
    Some(named.unwrap_or(first).to_string())
}

/// "Blender 3.4.1" → "3.4.1"; "ffmpeg version 5.1.9-0+deb12u1 Copyright …" → "5.1.9-0+deb12u1".
fn version_from_line(line: &str) -> String {
    let words: Vec<&str> = line.split_whitespace().collect();
    if let Some(pos) = words.iter().position(|w| w.eq_ignore_ascii_case("version"))
        && let Some(version) = words.get(pos + 1)
    {
        return version.to_string();
    }
    words
        .iter()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        .map(|w| w.to_string())
        .unwrap_or_else(|| line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_first_lines() {
        assert_eq!(version_from_line("Blender 3.4.1"), "3.4.1");
        assert_eq!(version_from_line("Blender 4.2.0 LTS"), "4.2.0");
        assert_eq!(
            version_from_line(
                "ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2025 the FFmpeg developers"
            ),
            "5.1.9-0+deb12u1"
        );
        assert_eq!(
            version_from_line("ffmpeg version N-1234-gabc"),
            "N-1234-gabc"
        );
        assert_eq!(version_from_line("weird tool"), "weird tool");
    }

    #[test]
    fn meminfo_total_is_parsed() {
        let text = "MemTotal:       16318412 kB\nMemFree:         1000 kB\n";
        assert_eq!(parse_meminfo_total(text), Some(16_318_412 * 1024));
        assert_eq!(parse_meminfo_total("MemFree: 1 kB\n"), None);
        assert_eq!(parse_meminfo_total("MemTotal: lots kB\n"), None);
    }

    #[test]
    fn machine_facts_are_plausible() {
        assert!(cpu_cores() >= 1);
        assert!(!hostname().is_empty());
        assert!(["linux", "windows", "darwin"].contains(&platform()) || !platform().is_empty());
        if cfg!(target_os = "linux") {
            assert!(ram_bytes() > 0);
        }
    }

    #[tokio::test]
    async fn missing_tools_are_not_listed() {
        assert_eq!(probe("castanet-no-such-tool-xyz", "--version").await, None);
    }
}
