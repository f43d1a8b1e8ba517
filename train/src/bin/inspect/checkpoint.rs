//! `inspect CKPT`: what a checkpoint rebuilds, where it came from, and whether its checksum
//! holds.

use anyhow::Result;
use std::path::Path;

pub(super) fn is_checkpoint(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("safetensors" | "pt" | "pth")
    )
}

/// Print what a checkpoint rebuilds and where it came from.
pub(super) fn inspect_checkpoint(path: &Path) -> Result<()> {
    use jit_music::checkpoint::{self, Weights};
    let w = checkpoint::load(path, Weights::Ema1)?;
    let m = &w.meta;
    let params: usize = w.tensors.values().map(|t| t.elem_count()).sum();
    let dtype = w.tensors.values().next().map_or("?".to_string(), |t| {
        format!("{:?}", t.dtype()).to_lowercase()
    });
    println!("{}", path.display());
    println!(
        "  name        {}",
        if m.name.is_empty() { "-" } else { &m.name }
    );
    println!(
        "  model       {} ({:.2}M parameters, {dtype}), step {}",
        m.config.preset_name().unwrap_or("custom size"),
        params as f64 / 1e6,
        m.step
    );
    println!(
        "  roll        {} pitches x {} frames, {}, {}{}",
        m.roll.pitches,
        m.roll.frames,
        m.roll.grid.describe(),
        m.roll.channels.describe(),
        if m.roll.articulation {
            ", articulated"
        } else {
            ""
        }
    );
    println!(
        "  patches     {}x{} (pitches x frames, {} tokens)",
        m.config.patch_h,
        m.config.patch_w,
        m.config.num_patches()
    );
    println!("  conditions  {}", m.roll.conditions.describe());
    let default_class = u64::from(m.default_class());
    let default_class = Some(default_class);
    if m.classes.is_empty() {
        println!("  styles      none (unconditional)");
    } else {
        let names: Vec<String> = m
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if Some(i as u64) == default_class {
                    format!("{c} (default)")
                } else {
                    c.clone()
                }
            })
            .collect();
        println!("  styles      {}", names.join(", "));
    }
    let s = &m.sampler;
    println!(
        "  sampler     {:?} {} steps, cfg {} on ({}, {}), threshold {}, dip split {}",
        s.method,
        s.steps,
        s.cfg_scale,
        s.cfg_interval.0,
        s.cfg_interval.1,
        m.recommended_threshold(),
        m.recommended_dip()
    );
    println!("  checksum    {}", checksum_note(path));
    let info = &m.info;
    if let Some(c) = info["train"]["command"].as_str() {
        println!("  trained by  {c}");
    }
    if let Some(n) = info["data"]["files"].as_u64() {
        println!(
            "  data        {n} files ({} train, {} held out), {} windows",
            info["data"]["train_files"], info["data"]["val_files"], info["data"]["train_windows"]
        );
    }
    for key in ["loss_smooth", "val_loss"] {
        if let Some(v) = info[key].as_f64() {
            println!("  {key:<11} {v:.4}");
        }
    }
    if let Some(ev) = info["evaluation"].as_object() {
        println!(
            "  evaluation  {}",
            serde_json::to_string(ev).unwrap_or_default()
        );
    }
    Ok(())
}

/// Whether the file's checksum was verified (loading has checked it) or there is none to check.
fn checksum_note(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    if bytes.starts_with(b"PK") {
        return "none (the original's .pt format has none)".into();
    }
    match jit_music::checkpoint::stored_hash(&bytes) {
        Some(sum) => format!("{sum}, verified"),
        None => "none (written before checksums: damage to the weights cannot be detected, \
                 only non-finite values)"
            .into(),
    }
}
