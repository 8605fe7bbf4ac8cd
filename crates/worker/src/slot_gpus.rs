//! Pinning slots to GPUs. The operator writes which GPUs each slot may use (`--slot-gpus`);
//! at start-up this is checked against the GPUs found and turned into, per slot, the
//! environment its child processes get (`CUDA_VISIBLE_DEVICES`, `HIP_VISIBLE_DEVICES`) and
//! the Cycles device Blender is told to render with.
//!
//! Syntax: `auto`, or a comma-separated list with one entry per slot (slot 0 first). An
//! entry is a GPU index as the worker reports it (`nvidia-smi`'s index for NVIDIA cards),
//! several indices joined by `+` (`0+1`), or `none` (the slot sees no GPU). Slots without
//! an entry are not pinned: their processes see every GPU, as without the option.

use std::fmt;
use std::str::FromStr;

use castanet_protocol::v1::Gpu;

use crate::error::WorkerError;
use crate::gpu::{GpuVendor, vendor_of};

/// Hides every device of a vendor: an invalid first index ends the list the runtimes accept.
const NO_DEVICE: &str = "-1";

/// What the operator asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SlotGpus {
    /// No pinning: every child process sees every GPU.
    #[default]
    Unpinned,
    /// Spread the NVIDIA and AMD GPUs found over the slots.
    Auto,
    /// Entry `i` is slot `i`'s choice; slots past the list are unpinned.
    Explicit(Vec<SlotChoice>),
}

/// One slot's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotChoice {
    /// These GPU indices (at least one, no repeats).
    Gpus(Vec<u32>),
    /// No GPU at all: the slot renders on the CPU.
    NoGpu,
}

/// Why a `--slot-gpus` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("slot GPUs {value:?}: {reason}")]
pub struct SlotGpusSyntaxError {
    value: String,
    reason: String,
}

impl FromStr for SlotGpus {
    type Err = SlotGpusSyntaxError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| SlotGpusSyntaxError {
            value: value.to_string(),
            reason,
        };
        let trimmed = value.trim();
        if trimmed.eq_ignore_ascii_case("auto") {
            return Ok(Self::Auto);
        }
        if trimmed.is_empty() {
            return Err(fail(
                "empty; use \"auto\" or GPU indices like \"0,1\"".into(),
            ));
        }
        let mut choices = Vec::new();
        for (slot, entry) in trimmed.split(',').enumerate() {
            let entry = entry.trim();
            if entry.eq_ignore_ascii_case("none") {
                choices.push(SlotChoice::NoGpu);
                continue;
            }
            let mut indices = Vec::new();
            for device in entry.split('+').map(str::trim) {
                let index: u32 = device.parse().map_err(|_| {
                    fail(format!(
                        "slot {slot}: {device:?} is not a GPU index (expected e.g. \"0\", \"0+1\" or \"none\")"
                    ))
                })?;
                if indices.contains(&index) {
                    return Err(fail(format!("slot {slot}: GPU {index} is listed twice")));
                }
                indices.push(index);
            }
            choices.push(SlotChoice::Gpus(indices));
        }
        Ok(Self::Explicit(choices))
    }
}

impl fmt::Display for SlotGpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unpinned => f.write_str("unpinned"),
            Self::Auto => f.write_str("auto"),
            Self::Explicit(choices) => {
                let entries: Vec<String> = choices
                    .iter()
                    .map(|choice| match choice {
                        SlotChoice::NoGpu => "none".to_string(),
                        SlotChoice::Gpus(indices) => indices
                            .iter()
                            .map(u32::to_string)
                            .collect::<Vec<_>>()
                            .join("+"),
                    })
                    .collect();
                f.write_str(&entries.join(","))
            }
        }
    }
}

impl SlotGpus {
    /// The checks that need no GPU list: not more entries than slots.
    pub(crate) fn check_slot_count(&self, slots: u32) -> Result<(), WorkerError> {
        if let Self::Explicit(choices) = self
            && choices.len() > slots as usize
        {
            return Err(WorkerError::InvalidConfig(format!(
                "slot GPUs {:?} has {} entries but the worker has only {slots} slot(s)",
                self.to_string(),
                choices.len(),
            )));
        }
        Ok(())
    }
}

/// What a pinned slot's processes get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotPin {
    /// The worker's GPU indices this slot uses (empty: none).
    pub gpus: Vec<u32>,
    /// Set in every child process's environment.
    pub env: Vec<(String, String)>,
    /// Blender's `--cycles-device` value ("CUDA", "HIP" or "CPU").
    pub cycles_device: &'static str,
}

/// Each slot's pin (None: unpinned), checked against the GPUs this machine has. When no GPU
/// was found, explicit indices are passed on as CUDA indices unchecked (a driver the
/// detection does not know may still offer them).
pub fn resolve(
    spec: &SlotGpus,
    slots: u32,
    found: &[Gpu],
) -> Result<Vec<Option<SlotPin>>, WorkerError> {
    spec.check_slot_count(slots)?;
    let slots = slots as usize;
    let choices: Vec<Option<SlotChoice>> = match spec {
        SlotGpus::Unpinned => vec![None; slots],
        SlotGpus::Auto => auto_choices(slots, found),
        SlotGpus::Explicit(choices) => (0..slots).map(|i| choices.get(i).cloned()).collect(),
    };
    choices
        .into_iter()
        .enumerate()
        .map(|(slot, choice)| choice.map(|c| pin_for(slot, &c, found)).transpose())
        .collect()
}

/// Usable GPUs dealt out round-robin: with more GPUs than slots a slot gets several, with
/// fewer, slots share. Nothing to pin when no usable GPU was found.
fn auto_choices(slots: usize, found: &[Gpu]) -> Vec<Option<SlotChoice>> {
    let usable: Vec<u32> = found
        .iter()
        .filter(|gpu| vendor_of(gpu) != GpuVendor::Intel)
        .map(|gpu| gpu.index)
        .collect();
    if usable.is_empty() {
        return vec![None; slots];
    }
    (0..slots)
        .map(|slot| {
            let mine: Vec<u32> = if usable.len() >= slots {
                usable.iter().skip(slot).step_by(slots).copied().collect()
            } else {
                vec![usable[slot % usable.len()]]
            };
            Some(SlotChoice::Gpus(mine))
        })
        .collect()
}

fn pin_for(slot: usize, choice: &SlotChoice, found: &[Gpu]) -> Result<SlotPin, WorkerError> {
    let has_amd = found.iter().any(|g| vendor_of(g) == GpuVendor::Amd);
    let indices = match choice {
        SlotChoice::NoGpu => Vec::new(),
        SlotChoice::Gpus(indices) => indices.clone(),
    };
    let (mut cuda, mut hip) = (Vec::new(), Vec::new());
    for &index in &indices {
        if found.is_empty() {
            cuda.push(index);
            continue;
        }
        let Some(gpu) = found.iter().find(|g| g.index == index) else {
            let known: Vec<String> = found
                .iter()
                .map(|g| format!("{} ({})", g.index, g.name))
                .collect();
            return Err(WorkerError::InvalidConfig(format!(
                "slot GPUs: slot {slot} names GPU {index}, but this machine's GPUs are {}",
                known.join(", ")
            )));
        };
        // CUDA and HIP number their own vendor's cards from 0, in the order found.
        let vendor = vendor_of(gpu);
        let ordinal = found
            .iter()
            .take_while(|g| g.index != index)
            .filter(|g| vendor_of(g) == vendor)
            .count() as u32;
        match vendor {
            GpuVendor::Nvidia => cuda.push(ordinal),
            GpuVendor::Amd => hip.push(ordinal),
            GpuVendor::Intel => {
                return Err(WorkerError::InvalidConfig(format!(
                    "slot GPUs: slot {slot} names GPU {index} ({}), but only NVIDIA and AMD GPUs can be pinned",
                    gpu.name
                )));
            }
        }
    }
    let mut env = vec![
        // CUDA's own default order is fastest-first; bus order matches nvidia-smi's indices.
        ("CUDA_DEVICE_ORDER".to_string(), "PCI_BUS_ID".to_string()),
        ("CUDA_VISIBLE_DEVICES".to_string(), device_list(&cuda)),
    ];
    // HIP also obeys CUDA_VISIBLE_DEVICES unless its own variable is set.
    if has_amd {
        env.push(("HIP_VISIBLE_DEVICES".to_string(), device_list(&hip)));
    }
    let cycles_device = if !cuda.is_empty() {
        "CUDA"
    } else if !hip.is_empty() {
        "HIP"
    } else {
        "CPU"
    };
    Ok(SlotPin {
        gpus: indices,
        env,
        cycles_device,
    })
}

/// Says at start-up what each slot got, so the operator can check the pinning.
pub fn log_pins(spec: &SlotGpus, pins: &[Option<SlotPin>], found: &[Gpu]) {
    if *spec == SlotGpus::Unpinned {
        return;
    }
    if pins.iter().all(Option::is_none) {
        tracing::info!(slot_gpus = %spec, "no GPU to pin slots to; every slot sees every device");
        return;
    }
    if found.is_empty() {
        tracing::warn!(slot_gpus = %spec, "no GPU was detected; passing the slot GPU indices on unchecked as CUDA devices");
    }
    for (slot, pin) in pins.iter().enumerate() {
        match pin {
            Some(pin) => {
                let env: Vec<String> = pin.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
                tracing::info!(slot, gpus = ?pin.gpus, cycles_device = pin.cycles_device, env = %env.join(" "), "slot pinned");
            }
            None => tracing::info!(slot, "slot not pinned"),
        }
    }
}

fn device_list(ordinals: &[u32]) -> String {
    if ordinals.is_empty() {
        return NO_DEVICE.to_string();
    }
    ordinals
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Adds `-- --cycles-device DEVICE` to a Blender command line unless the job already chose
/// a device (Blender hands everything after `--` to Cycles' own argument parser).
pub fn add_cycles_device(argv: &mut Vec<String>, device: &str) {
    let python_args = argv.iter().position(|a| a == "--");
    if let Some(start) = python_args {
        let chosen = argv[start + 1..]
            .iter()
            .any(|a| a == "--cycles-device" || a.starts_with("--cycles-device="));
        if chosen {
            return;
        }
    } else {
        argv.push("--".to_string());
    }
    argv.push("--cycles-device".to_string());
    argv.push(device.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(index: u32, name: &str) -> Gpu {
        Gpu {
            name: name.into(),
            vram_bytes: 0,
            index,
        }
    }

    fn env_of<'a>(pin: &'a SlotPin, name: &str) -> Option<&'a str> {
        pin.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_syntax_is_read() {
        assert_eq!("auto".parse(), Ok(SlotGpus::Auto));
        assert_eq!(" AUTO ".parse(), Ok(SlotGpus::Auto));
        assert_eq!(
            "0, 1+2 ,none".parse(),
            Ok(SlotGpus::Explicit(vec![
                SlotChoice::Gpus(vec![0]),
                SlotChoice::Gpus(vec![1, 2]),
                SlotChoice::NoGpu,
            ]))
        );
        for bad in ["", " ", "0,,1", "a", "0+", "-1", "1+1", "0;1"] {
            let err = bad.parse::<SlotGpus>().err();
            assert!(err.is_some(), "{bad:?} should be rejected");
            assert!(
                err.is_some_and(|e| e.to_string().contains(&format!("{bad:?}"))),
                "the error names the value {bad:?}"
            );
        }
        let twice = "0+1+0".parse::<SlotGpus>().err().map(|e| e.to_string());
        assert_eq!(
            twice.as_deref(),
            Some("slot GPUs \"0+1+0\": slot 0: GPU 0 is listed twice")
        );
    }

    #[test]
    fn display_round_trips() {
        for text in ["auto", "0,1+2,none"] {
            let parsed: SlotGpus = text.parse().expect("valid");
            assert_eq!(parsed.to_string(), text);
        }
    }

    #[test]
    fn more_entries_than_slots_is_an_error_naming_the_value() {
        let spec: SlotGpus = "0,1,2".parse().expect("valid");
        let err = resolve(&spec, 2, &[]).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid worker configuration: slot GPUs \"0,1,2\" has 3 entries but the worker has only 2 slot(s)"
            )
        );
    }

    #[test]
    fn unknown_indices_are_errors_when_gpus_were_found() {
        let found = [
            gpu(0, "NVIDIA GeForce RTX 3090"),
            gpu(1, "NVIDIA RTX A4000"),
        ];
        let spec: SlotGpus = "0,1+5".parse().expect("valid");
        let err = resolve(&spec, 2, &found).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid worker configuration: slot GPUs: slot 1 names GPU 5, but this machine's GPUs are 0 (NVIDIA GeForce RTX 3090), 1 (NVIDIA RTX A4000)"
            )
        );
        let intel = [gpu(0, "Intel GPU 9a49")];
        let err = resolve(&"0".parse().expect("valid"), 1, &intel)
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("only NVIDIA and AMD")));
    }

    #[test]
    fn without_detected_gpus_indices_pass_through_as_cuda() {
        let spec: SlotGpus = "0,1+2".parse().expect("valid");
        let pins = resolve(&spec, 3, &[]).expect("valid");
        assert_eq!(pins.len(), 3);
        let first = pins[0].as_ref().expect("pinned");
        assert_eq!(env_of(first, "CUDA_VISIBLE_DEVICES"), Some("0"));
        assert_eq!(env_of(first, "HIP_VISIBLE_DEVICES"), None);
        assert_eq!(first.cycles_device, "CUDA");
        let second = pins[1].as_ref().expect("pinned");
        assert_eq!(env_of(second, "CUDA_VISIBLE_DEVICES"), Some("1,2"));
        assert_eq!(pins[2], None);
    }

    #[test]
    fn mixed_vendors_get_their_own_ordinals() {
        // NVIDIA first (nvidia-smi), then the AMD render nodes.
        let found = [
            gpu(0, "NVIDIA GeForce RTX 3090"),
            gpu(1, "AMD GPU 73bf"),
            gpu(2, "AMD GPU 744c"),
        ];
        let spec: SlotGpus = "0,2,none".parse().expect("valid");
        let pins = resolve(&spec, 3, &found).expect("valid");
        let nvidia = pins[0].as_ref().expect("pinned");
        assert_eq!(env_of(nvidia, "CUDA_VISIBLE_DEVICES"), Some("0"));
        assert_eq!(env_of(nvidia, "HIP_VISIBLE_DEVICES"), Some(NO_DEVICE));
        assert_eq!(nvidia.cycles_device, "CUDA");
        let amd = pins[1].as_ref().expect("pinned");
        assert_eq!(env_of(amd, "CUDA_VISIBLE_DEVICES"), Some(NO_DEVICE));
        assert_eq!(env_of(amd, "HIP_VISIBLE_DEVICES"), Some("1"));
        assert_eq!(amd.cycles_device, "HIP");
        let cpu = pins[2].as_ref().expect("pinned");
        assert_eq!(env_of(cpu, "CUDA_VISIBLE_DEVICES"), Some(NO_DEVICE));
        assert_eq!(env_of(cpu, "HIP_VISIBLE_DEVICES"), Some(NO_DEVICE));
        assert_eq!(cpu.cycles_device, "CPU");
    }

    #[test]
    fn auto_spreads_the_gpus_over_the_slots() {
        let four: Vec<Gpu> = (0..4).map(|i| gpu(i, "NVIDIA RTX A4000")).collect();
        let gpus_of = |pins: Vec<Option<SlotPin>>| -> Vec<Vec<u32>> {
            pins.into_iter()
                .map(|p| p.map(|p| p.gpus).unwrap_or_default())
                .collect()
        };
        assert_eq!(
            gpus_of(resolve(&SlotGpus::Auto, 2, &four).expect("valid")),
            [vec![0, 2], vec![1, 3]]
        );
        assert_eq!(
            gpus_of(resolve(&SlotGpus::Auto, 3, &four[..2]).expect("valid")),
            [vec![0], vec![1], vec![0]]
        );
        // Intel cards cannot be pinned and are left to every slot.
        let intel = [gpu(0, "Intel GPU 9a49")];
        assert_eq!(
            resolve(&SlotGpus::Auto, 2, &intel).expect("valid"),
            [None, None]
        );
        assert_eq!(
            resolve(&SlotGpus::Auto, 2, &[]).expect("valid"),
            [None, None]
        );
        assert_eq!(
            resolve(&SlotGpus::Unpinned, 2, &four).expect("valid"),
            [None, None]
        );
    }

    #[test]
    fn cycles_device_goes_after_the_double_dash_unless_chosen() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut plain = strings(&["-b", "scene.blend", "-f", "1"]);
        add_cycles_device(&mut plain, "CUDA");
        assert_eq!(
            plain,
            strings(&[
                "-b",
                "scene.blend",
                "-f",
                "1",
                "--",
                "--cycles-device",
                "CUDA"
            ])
        );
        let mut with_dash = strings(&["-b", "x.blend", "--", "--cycles-print-stats"]);
        add_cycles_device(&mut with_dash, "HIP");
        assert_eq!(
            with_dash,
            strings(&[
                "-b",
                "x.blend",
                "--",
                "--cycles-print-stats",
                "--cycles-device",
                "HIP"
            ])
        );
        for chosen in [
            strings(&["-b", "x.blend", "--", "--cycles-device", "OPTIX"]),
            strings(&["-b", "x.blend", "--", "--cycles-device=CPU"]),
        ] {
            let mut argv = chosen.clone();
            add_cycles_device(&mut argv, "CUDA");
            assert_eq!(argv, chosen);
        }
    }
}
