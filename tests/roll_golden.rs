//! Parity of the seconds grid with pretty_midi (`../shared/golden/pianoroll.safetensors`):
//! the rolls of 33 real files and the note runs the original reads from them.

mod common;

use candle_core::{DType, Device};
use jit_music::midi::read_file;
use jit_music::roll::{
    pretty_midi_roll, roll_to_notes, score_to_roll, velocity_to_u8, PianoRoll, RollOptions,
    Velocity,
};
use std::collections::BTreeSet;

fn golden_names() -> Vec<String> {
    let t = candle_core::safetensors::load(common::golden("pianoroll.safetensors"), &Device::Cpu)
        .expect("golden rolls");
    let mut names: Vec<String> = t
        .keys()
        .filter_map(|k| k.strip_prefix("roll.").map(String::from))
        .collect();
    names.sort();
    names
}

/// Pins: tempo map from track 0, note pairing (same-tick rule, vel-0 note-off), pedal running
/// max, summed velocities, drums excluded, roll width from each instrument's last event.
#[test]
fn rolls_match_pretty_midi_exactly() {
    let t = candle_core::safetensors::load(common::golden("pianoroll.safetensors"), &Device::Cpu)
        .unwrap();
    let names = golden_names();
    assert_eq!(names.len(), 33);
    for name in &names {
        let gold = &t[&format!("roll.{name}")];
        let (p, frames) = gold.dims2().unwrap();
        assert_eq!(p, 128);
        let gold: Vec<u8> = gold.flatten_all().unwrap().to_vec1().unwrap();
        let score = read_file(&common::golden_midi(name)).unwrap();
        let (ours_frames, raw) = pretty_midi_roll(&score, 16).unwrap();
        // The golden keeps the first 4096 frames.
        assert_eq!(ours_frames.min(4096), frames, "{name}: frame count");
        let mut mismatches = 0;
        for pitch in 0..128 {
            for f in 0..frames {
                let ours = raw[pitch * ours_frames + f].clamp(0.0, 255.0);
                let g = gold[pitch * frames + f];
                // Golden is clipped and truncated to u8; so is ours for the comparison.
                if ours as u8 != g {
                    mismatches += 1;
                }
            }
        }
        assert_eq!(mismatches, 0, "{name}: {mismatches} cells differ");
        // And the stored u8 form (what the original's dataset keeps) agrees too.
        let roll = score_to_roll(&score, &RollOptions::pretty_midi(16))
            .unwrap()
            .roll;
        for pitch in 0..128 {
            for f in 0..frames {
                // Pitch bends make fractional values, which the golden u8 truncates.
                if raw[pitch * ours_frames + f].fract() != 0.0 {
                    continue;
                }
                assert_eq!(
                    roll.get(pitch, f),
                    velocity_to_u8(f64::from(gold[pitch * frames + f]).min(127.0)),
                    "{name}: u8 at pitch {pitch} frame {f}"
                );
            }
        }
    }
}

/// Pins the original's roll -> notes: runs of frames with roll/127 > 0.5, one note per run.
#[test]
fn note_runs_match_golden() {
    let t = candle_core::safetensors::load(common::golden("pianoroll.safetensors"), &Device::Cpu)
        .unwrap();
    for name in golden_names() {
        let gold = t[&format!("notes.{name}")].to_dtype(DType::I64).unwrap();
        let gold: Vec<Vec<i64>> = gold.to_vec2().unwrap();
        let gold: BTreeSet<(u8, usize, usize)> = gold
            .iter()
            .map(|r| (r[0] as u8, r[1] as usize, r[2] as usize))
            .collect();
        let score = read_file(&common::golden_midi(&name)).unwrap();
        let full = score_to_roll(&score, &RollOptions::pretty_midi(16))
            .unwrap()
            .roll;
        let roll: PianoRoll = full.crop(0, full.frames().min(4096));
        let ours: BTreeSet<(u8, usize, usize)> = roll_to_notes(&roll, 0.5, Velocity::Fixed(100))
            .iter()
            .map(|n| (n.pitch, n.start, n.end))
            .collect();
        assert_eq!(ours, gold, "{name}: note runs differ");
    }
}
