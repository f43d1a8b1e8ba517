//! A prompt for the command-line tools: a MIDI file read onto a model's grid, what to keep of
//! it (from the workflow flags) and the chords to follow (typed, or read from a file).

use anyhow::{bail, Context, Result};
use jit_music::chords::{
    estimate_chords, parse_progression, read_pop909_chords, ChordSpan, ChordTrack,
};
use jit_music::condition::Keep;
use jit_music::generate::Prompt;
use jit_music::midi;
use jit_music::roll::{
    one_voice_per_pitch, read_pop909_downbeats, score_to_roll, Grid, GridNote, RollNote,
    RollOptions, RollSpec,
};
use std::path::Path;

/// A MIDI file on a model's grid: its first window.
#[derive(Debug, Clone)]
pub struct PromptFile {
    /// The notes of the first window (frames from its start), with their parts.
    pub notes: Vec<GridNote>,
    pub parts: Vec<String>,
    pub melody_part: Option<u16>,
    /// Frames the whole file spans.
    pub file_frames: usize,
    pub frames_per_bar: usize,
    /// The file's first tempo.
    pub tempo: f64,
    /// Its chords over the window: POP909's annotations beside it, else estimated.
    pub chords: Option<ChordTrack>,
}

/// Frames per bar and per beat of a grid, in 4/4 (the seconds grid at 120 BPM).
pub fn grid_bar_beat(grid: Grid) -> (usize, usize) {
    match grid {
        Grid::Beats { steps_per_beat } => (4 * steps_per_beat as usize, steps_per_beat as usize),
        Grid::Seconds { fps } => (2 * fps as usize, (fps / 2).max(1) as usize),
    }
}

/// Read `path` onto `spec`'s grid, the window starting at bar `from_bar` (1-based; POP909
/// downbeat and chord annotations are used when present).
pub fn read_prompt(path: &Path, spec: &RollSpec, from_bar: usize) -> Result<PromptFile> {
    let score = midi::read_file(path)?;
    let opts = RollOptions {
        downbeats: read_pop909_downbeats(path),
        ..RollOptions::for_grid(spec.grid, spec.articulation)
    };
    let sr = score_to_roll(&score, &opts)?;
    let (grid_fpb, spb) = grid_bar_beat(spec.grid);
    let fpb = sr.frames_per_bar.unwrap_or(grid_fpb).max(1);
    let w = spec.frames;
    let bars = sr.bar_starts();
    let origin = match from_bar {
        0 => bail!("bars are numbered from 1"),
        1 => 0,
        b => match bars.get(b - 1) {
            Some(&f) => f,
            None => bail!(
                "{}: no bar {b} (the file has {} bars)",
                path.display(),
                bars.len()
            ),
        },
    };
    let notes: Vec<GridNote> = sr
        .notes
        .iter()
        .filter(|n| n.note.start >= origin && n.note.start < origin + w)
        .map(|n| GridNote {
            note: RollNote {
                start: n.note.start - origin,
                end: n.note.end.min(origin + w) - origin,
                ..n.note
            },
            part: n.part,
        })
        .collect();
    let chords = match read_pop909_chords(path) {
        Some(labels) => Some(ChordTrack::from_seconds(&score, &sr, &labels).crop(origin, w)),
        None => {
            let plain: Vec<RollNote> = notes.iter().map(|n| n.note).collect();
            Some(estimate_chords(&plain, w, fpb, spb))
        }
    };
    Ok(PromptFile {
        melody_part: sr.melody_part(),
        notes,
        parts: sr.parts.clone(),
        file_frames: sr.roll.frames().saturating_sub(origin),
        frames_per_bar: fpb,
        tempo: score.initial_bpm(),
        chords,
    })
}

/// The workflow flags of a prompt, as the tools take them.
#[derive(Debug, Clone, Default)]
pub struct KeepFlags {
    pub keep_bars: Option<usize>,
    pub keep_frames: Option<usize>,
    /// "A..B", 1-based bars, inclusive.
    pub fill: Option<String>,
    /// "LOW..HIGH", MIDI pitches, inclusive.
    pub keep_pitches: Option<String>,
    /// A part's name, "melody", "accompaniment" (all but the melody) or "all".
    pub keep_part: Option<String>,
}

impl KeepFlags {
    pub fn any(&self) -> bool {
        self.keep_bars.is_some()
            || self.keep_frames.is_some()
            || self.fill.is_some()
            || self.keep_pitches.is_some()
            || self.keep_part.is_some()
    }
}

/// `A..B` as two numbers, `A <= B`.
pub fn parse_range(s: &str, what: &str) -> Result<(usize, usize)> {
    let (a, b) = s
        .split_once("..")
        .with_context(|| format!("{what} must look like A..B, got `{s}`"))?;
    let num = |x: &str| -> Result<usize> {
        x.trim()
            .parse()
            .with_context(|| format!("bad {what} `{s}`: `{}` is not a number", x.trim()))
    };
    let (a, b) = (num(a)?, num(b)?);
    if b < a {
        bail!("{what} `{s}`: the end is before the start");
    }
    Ok((a, b))
}

/// The prompt the flags ask for: what to keep and the notes it keeps from.
pub fn prompt_from_flags(f: &KeepFlags, file: &PromptFile, w: usize) -> Result<Prompt> {
    let chosen = [
        f.keep_bars.is_some() || f.keep_frames.is_some(),
        f.fill.is_some(),
        f.keep_pitches.is_some(),
        f.keep_part.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        bail!("with --prompt, give exactly one of --keep-bars/--keep-frames, --fill A..B, --keep-pitches LOW..HIGH, --keep-part NAME");
    }
    let fpb = file.frames_per_bar;
    let bars = w / fpb.max(1);
    let notes = prompt_notes(file, f.keep_part.as_deref())?;
    let keep = if let Some(n) = f.keep_bars.map(|b| b * fpb).or(f.keep_frames) {
        if n >= w {
            bail!("keeping {n} frames leaves nothing to generate: the model writes {w} frames ({bars} bars)");
        }
        if n == 0 {
            bail!("--keep-bars/--keep-frames 0 keeps nothing: leave out --prompt for a new idea");
        }
        Keep::Continue { keep_frames: n }
    } else if let Some(text) = &f.fill {
        let (b0, b1) = parse_range(text, "--fill")?;
        if b0 == 0 {
            bail!("--fill bars are numbered from 1");
        }
        if b0 > bars {
            bail!("--fill {text}: the model writes {bars} bars");
        }
        Keep::Fill {
            start: (b0 - 1) * fpb,
            end: (b1 * fpb).min(w),
        }
    } else if let Some(text) = &f.keep_pitches {
        let (lo, hi) = parse_range(text, "--keep-pitches")?;
        if hi > 127 {
            bail!("--keep-pitches: MIDI pitches go up to 127");
        }
        Keep::KeepPitches {
            low: lo as u8,
            high: hi as u8,
        }
    } else {
        Keep::KeepNotes
    };
    let needed = match keep {
        Keep::Continue { keep_frames } => keep_frames,
        Keep::New | Keep::KeepNotes => 0,
        Keep::Fill { .. } | Keep::KeepPitches { .. } => w,
    };
    if file.file_frames < needed {
        eprintln!(
            "note: the prompt has {} frames, fewer than the {needed} kept; the rest of the kept region is silence",
            file.file_frames
        );
    }
    Ok(Prompt { notes, keep })
}

/// The prompt's notes as one channel plays them: all of them, or the part `keep_part` names.
pub fn prompt_notes(file: &PromptFile, keep_part: Option<&str>) -> Result<Vec<RollNote>> {
    let notes = match keep_part {
        Some(name) => part_notes(file, name)?,
        None => file.notes.iter().map(|n| n.note).collect(),
    };
    Ok(one_voice_per_pitch(&notes))
}

/// The notes of the part `name` ("melody", "accompaniment", "all" or a track name).
fn part_notes(file: &PromptFile, name: &str) -> Result<Vec<RollNote>> {
    let lower = name.to_ascii_lowercase();
    let pick = |keep: &dyn Fn(u16) -> bool| -> Vec<RollNote> {
        file.notes
            .iter()
            .filter(|n| keep(n.part))
            .map(|n| n.note)
            .collect()
    };
    let notes = match lower.as_str() {
        "all" => pick(&|_| true),
        "melody" | "accompaniment" => {
            let Some(m) = file.melody_part else {
                bail!(
                    "--keep-part {name}: cannot tell the melody in this file (parts: {}); name a part",
                    part_list(file)
                );
            };
            let melody = lower == "melody";
            pick(&|p| (p == m) == melody)
        }
        _ => {
            let Some(i) = file.parts.iter().position(|p| p.eq_ignore_ascii_case(name)) else {
                bail!(
                    "--keep-part {name}: no such part (parts: {}; or melody, accompaniment, all)",
                    part_list(file)
                );
            };
            pick(&|p| usize::from(p) == i)
        }
    };
    if notes.is_empty() {
        bail!("--keep-part {name}: that part has no notes in the model's window");
    }
    Ok(notes)
}

fn part_list(file: &PromptFile) -> String {
    file.parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if p.is_empty() {
                format!("#{i} (unnamed)")
            } else {
                p.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Chords from `--chords TEXT` or `--chords-from FILE` on `spec`'s window. A file is a MIDI file
/// (POP909's chord annotations beside it, else chords estimated from its notes; the window starts
/// at bar `from_bar`, as a prompt's), a POP909-style `start end label` list in seconds (at
/// `tempo`), or a progression as `--chords` takes it.
pub fn read_chords(
    text: Option<&str>,
    from: Option<&Path>,
    spec: &RollSpec,
    tempo: f64,
    from_bar: usize,
) -> Result<Option<(ChordTrack, String)>> {
    let (fpb, spb) = grid_bar_beat(spec.grid);
    let w = spec.frames;
    match (text, from) {
        (Some(_), Some(_)) => bail!("give --chords or --chords-from, not both"),
        (Some(t), None) => Ok(Some((parse_progression(t, fpb, spb, w)?, t.to_string()))),
        (None, Some(path)) => {
            let shown = path.display().to_string();
            if midi::is_midi_path(path) {
                let file = read_prompt(path, spec, from_bar)?;
                let chords = file.chords.context("no chords could be read from it")?;
                return Ok(Some((chords, shown)));
            }
            let body = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            if let Some(spans) = seconds_list(&body, spec, tempo) {
                return Ok(Some((spans, shown)));
            }
            let t = parse_progression(body.trim(), fpb, spb, w)
                .with_context(|| format!("{}", path.display()))?;
            Ok(Some((t, shown)))
        }
        (None, None) => Ok(None),
    }
}

/// A `start end label` list in seconds (POP909's `chord_midi.txt`), at `tempo` from bar 1.
fn seconds_list(body: &str, spec: &RollSpec, tempo: f64) -> Option<ChordTrack> {
    let (_, spb) = grid_bar_beat(spec.grid);
    let frame = |s: f64| (s * tempo / 60.0 * spb as f64).round().max(0.0) as usize;
    let mut spans = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 3 {
            return None;
        }
        let (a, b) = (cols[0].parse::<f64>().ok()?, cols[1].parse::<f64>().ok()?);
        let chord = jit_music::chords::parse_chord(cols[2]).ok()?;
        spans.push(ChordSpan {
            start: frame(a),
            end: frame(b),
            chord,
        });
    }
    (!spans.is_empty()).then(|| ChordTrack::new(spans).crop(0, spec.frames))
}
