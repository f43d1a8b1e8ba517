//! Roll -> Standard MIDI File on the roll's own grid: frames become ticks through the grid
//! (beats: `ticks_per_beat / steps_per_beat` per frame; seconds: through the written tempo).

use crate::midi::{write_smf, MidiWriteSpec, WriteNote};
use crate::roll::{roll_to_notes_split, Grid, PianoRoll, RollNote, Velocity};

/// Settings for writing a generated roll.
#[derive(Debug, Clone)]
pub struct ExportSpec {
    pub grid: Grid,
    /// Pitch of row 0.
    pub pitch_low: u8,
    pub bpm: f64,
    pub threshold: f32,
    /// Split runs at dips (see [`roll_to_notes_split`]); 0 = plain threshold runs.
    pub dip: f32,
    pub velocity: Velocity,
    pub channel: u8,
    pub track_name: String,
}

impl ExportSpec {
    pub fn new(grid: Grid) -> Self {
        Self {
            grid,
            pitch_low: 0,
            bpm: 120.0,
            threshold: 0.5,
            dip: 0.0,
            velocity: Velocity::default(),
            channel: 0,
            track_name: "JiT-Music".into(),
        }
    }
}

pub const TICKS_PER_BEAT: u16 = 480;

/// The tick of a frame boundary on `grid` at `bpm`.
pub fn frame_to_tick(frame: usize, grid: Grid, bpm: f64) -> u64 {
    let tpb = f64::from(TICKS_PER_BEAT);
    let beats = match grid {
        Grid::Beats { steps_per_beat } => frame as f64 / f64::from(steps_per_beat.max(1)),
        Grid::Seconds { fps } => frame as f64 / f64::from(fps.max(1)) * bpm / 60.0,
    };
    (beats * tpb).round() as u64
}

/// Notes (frames) -> MIDI file bytes.
pub fn notes_to_smf(notes: &[RollNote], spec: &ExportSpec) -> Vec<u8> {
    let wn: Vec<WriteNote> = notes
        .iter()
        .filter_map(|n| {
            let pitch = u16::from(n.pitch) + u16::from(spec.pitch_low);
            (pitch <= 127).then(|| WriteNote {
                pitch: pitch as u8,
                velocity: n.velocity,
                start_tick: frame_to_tick(n.start, spec.grid, spec.bpm),
                end_tick: frame_to_tick(n.end, spec.grid, spec.bpm),
                channel: spec.channel,
            })
        })
        .collect();
    let ws = MidiWriteSpec {
        ticks_per_beat: TICKS_PER_BEAT,
        bpm: spec.bpm,
        time_signature: (4, 4),
        track_name: spec.track_name.clone(),
        program: 0,
    };
    write_smf(&ws, &wn)
}

/// Roll -> notes (threshold, velocity) -> MIDI file bytes.
pub fn roll_to_smf(roll: &PianoRoll, spec: &ExportSpec) -> Vec<u8> {
    notes_to_smf(
        &roll_to_notes_split(roll, spec.threshold, spec.dip, spec.velocity),
        spec,
    )
}
