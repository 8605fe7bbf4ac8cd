//! The GPUs this machine offers, for the sign-on capabilities. NVIDIA cards are read from
//! `nvidia-smi` (name, memory, and the index CUDA_VISIBLE_DEVICES uses); without it, from
//! the driver's `/proc/driver/nvidia/gpus/*/information`. Other GPUs (AMD, Intel) are found
//! through their DRM render nodes in `/sys/class/drm`. Virtual display adapters (virtio,
//! QXL, VMware, Bochs) are no render devices and are left out. A machine without GPUs
//! reports none; nothing here is an error.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use castanet_protocol::v1::Gpu;

/// How long `nvidia-smi` may take before the GPUs count as absent.
const NVIDIA_SMI_TIMEOUT: Duration = Duration::from_secs(10);

const VENDOR_NVIDIA: u32 = 0x10de;
const VENDOR_AMD: u32 = 0x1002;
const VENDOR_INTEL: u32 = 0x8086;

/// Every GPU found, NVIDIA first (in nvidia-smi's order), then the other render nodes.
pub async fn detect() -> Vec<Gpu> {
    let mut gpus = match nvidia_smi().await {
        Some(found) => found,
        None => nvidia_proc(Path::new("/proc/driver/nvidia/gpus")),
    };
    // NVIDIA's own tools describe its cards better than the render nodes do.
    let skip_nvidia = !gpus.is_empty();
    for mut gpu in drm_render_nodes(Path::new("/sys/class/drm"), skip_nvidia) {
        gpu.index = gpus.len() as u32;
        gpus.push(gpu);
    }
    for gpu in &gpus {
        tracing::info!(index = gpu.index, name = %gpu.name, vram_bytes = gpu.vram_bytes, "found a GPU");
    }
    if gpus.is_empty() {
        tracing::info!("no GPU found");
    }
    gpus
}

/// `nvidia-smi --query-gpu=…` when the tool is installed and works.
async fn nvidia_smi() -> Option<Vec<Gpu>> {
    let run = tokio::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=index,name,memory.total",
            "--format=csv,noheader,nounits",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(NVIDIA_SMI_TIMEOUT, run)
        .await
        .ok()?
        .ok()?;
    if !output.status.success() {
        tracing::info!(status = %output.status, "nvidia-smi is installed but failed");
        return None;
    }
    Some(parse_nvidia_smi(&String::from_utf8_lossy(&output.stdout)))
}

/// Lines like `0, NVIDIA GeForce RTX 3090, 24576` (memory in MiB).
fn parse_nvidia_smi(text: &str) -> Vec<Gpu> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(',').map(str::trim);
            let index = fields.next()?.parse().ok()?;
            let name = fields.next().filter(|n| !n.is_empty())?.to_string();
            let mebibytes: u64 = fields.next().and_then(|m| m.parse().ok()).unwrap_or(0);
            Some(Gpu {
                name,
                vram_bytes: mebibytes.saturating_mul(1024 * 1024),
                index,
            })
        })
        .collect()
}

/// One GPU per `<bus id>/information` file of the NVIDIA driver (no memory size there).
fn nvidia_proc(dir: &Path) -> Vec<Gpu> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut bus_ids: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    bus_ids.sort();
    bus_ids
        .iter()
        .filter_map(|bus| std::fs::read_to_string(bus.join("information")).ok())
        .enumerate()
        .map(|(index, info)| Gpu {
            name: model_from_information(&info).unwrap_or_else(|| "NVIDIA GPU".to_string()),
            vram_bytes: 0,
            index: index as u32,
        })
        .collect()
}

/// `Model: \t\t NVIDIA GeForce RTX 3090` → the model name.
fn model_from_information(info: &str) -> Option<String> {
    info.lines()
        .find_map(|line| line.strip_prefix("Model:"))
        .map(|model| model.trim().to_string())
        .filter(|model| !model.is_empty())
}

/// GPUs behind `renderD*` nodes of the real GPU vendors.
fn drm_render_nodes(class_dir: &Path, skip_nvidia: bool) -> Vec<Gpu> {
    let Ok(entries) = std::fs::read_dir(class_dir) else {
        return Vec::new();
    };
    let mut nodes: Vec<_> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        .map(|e| e.path())
        .collect();
    nodes.sort();
    nodes
        .iter()
        .filter_map(|node| {
            let device = node.join("device");
            let vendor = read_hex(&device.join("vendor"))?;
            let name = match vendor {
                VENDOR_NVIDIA if skip_nvidia => return None,
                VENDOR_NVIDIA => "NVIDIA",
                VENDOR_AMD => "AMD",
                VENDOR_INTEL => "Intel",
                _ => return None,
            };
            let model = read_hex(&device.join("device"))
                .map(|id| format!("{name} GPU {id:04x}"))
                .unwrap_or_else(|| format!("{name} GPU"));
            // amdgpu reports its memory; other drivers do not.
            let vram_bytes = std::fs::read_to_string(device.join("mem_info_vram_total"))
                .ok()
                .and_then(|t| t.trim().parse().ok())
                .unwrap_or(0);
            Some(Gpu {
                name: model,
                vram_bytes,
                index: 0,
            })
        })
        .collect()
}

/// Who made a GPU, as far as pinning cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuVendor {
    Nvidia,
    Amd,
    Intel,
}

/// The vendor of a GPU [`detect`] reported: render nodes are named "<vendor> GPU <id>"
/// (see `drm_render_nodes`); everything else came from NVIDIA's driver or tools.
pub fn vendor_of(gpu: &Gpu) -> GpuVendor {
    if gpu.name.starts_with("AMD GPU") {
        GpuVendor::Amd
    } else if gpu.name.starts_with("Intel GPU") {
        GpuVendor::Intel
    } else {
        GpuVendor::Nvidia
    }
}

/// A sysfs id like `0x10de`.
fn read_hex(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    u32::from_str_radix(text.trim().trim_start_matches("0x"), 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nvidia_smi_csv_is_read() {
        let text = "0, NVIDIA GeForce RTX 3090, 24576\n1, NVIDIA RTX A4000, 16376\n\ngarbage\n";
        let gpus = parse_nvidia_smi(text);
        assert_eq!(gpus.len(), 2);
        assert_eq!(gpus[0].name, "NVIDIA GeForce RTX 3090");
        assert_eq!(gpus[0].vram_bytes, 24576 * 1024 * 1024);
        assert_eq!(gpus[1].index, 1);
    }

    #[test]
    fn the_driver_information_names_the_model() {
        let info = "Model: \t\t NVIDIA GeForce GTX 1080\nIRQ:   \t\t 130\n";
        assert_eq!(
            model_from_information(info).as_deref(),
            Some("NVIDIA GeForce GTX 1080")
        );
        assert_eq!(model_from_information("IRQ: 1\n"), None);
    }

    #[test]
    fn render_nodes_of_real_gpus_count_and_virtual_adapters_do_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = |name: &str, vendor: &str, device: &str, vram: Option<&str>| {
            let path = dir.path().join(name).join("device");
            std::fs::create_dir_all(&path).expect("mkdir");
            std::fs::write(path.join("vendor"), vendor).expect("write");
            std::fs::write(path.join("device"), device).expect("write");
            if let Some(vram) = vram {
                std::fs::write(path.join("mem_info_vram_total"), vram).expect("write");
            }
        };
        node("renderD128", "0x1002\n", "0x73bf\n", Some("17163091968\n"));
        node("renderD129", "0x1af4\n", "0x1050\n", None); // virtio-gpu
        node("renderD130", "0x10de\n", "0x2204\n", None);
        node("card0", "0x8086\n", "0x9a49\n", None); // not a render node
        let gpus = drm_render_nodes(dir.path(), false);
        let names: Vec<&str> = gpus.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["AMD GPU 73bf", "NVIDIA GPU 2204"]);
        assert_eq!(gpus[0].vram_bytes, 17_163_091_968);
        let without_nvidia = drm_render_nodes(dir.path(), true);
        assert_eq!(without_nvidia.len(), 1);
        let vendors: Vec<GpuVendor> = gpus.iter().map(vendor_of).collect();
        assert_eq!(vendors, [GpuVendor::Amd, GpuVendor::Nvidia]);
    }

    #[tokio::test]
    async fn this_machine_is_probed_without_error() {
        // Whatever this machine has: detection ends and every GPU found has a name and a
        // distinct index; with none of the sources present, it reports no GPU.
        let gpus = detect().await;
        let has_nvidia_smi = std::env::var_os("PATH").is_some_and(|path| {
            std::env::split_paths(&path).any(|dir| dir.join("nvidia-smi").is_file())
        });
        let has_render_node = std::fs::read_dir("/sys/class/drm").is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
        });
        if !has_nvidia_smi && !Path::new("/proc/driver/nvidia").exists() && !has_render_node {
            assert!(gpus.is_empty(), "{gpus:?}");
        }
        let mut indices: Vec<u32> = gpus.iter().map(|g| g.index).collect();
        indices.dedup();
        assert_eq!(indices.len(), gpus.len());
        assert!(gpus.iter().all(|g| !g.name.is_empty()));
    }
}
