//! `evaluate --coherence` and `evaluate --chords`: samples made from prompts or chords (found by
//! their sidecars), measured against what they were given, beside real music and a baseline.

use crate::prompt::read_prompt;
use crate::sidecar::Sidecar;
use anyhow::{bail, Context, Result};
use jit_music::chords::ChordTrack;
use jit_music::condition::Keep;
use jit_music::eval::coherence::{
    chord_fit, coherence, mean_chord_fit, mean_coherence, ChordFit, Coherence,
};
use jit_music::midi;
use jit_music::roll::{score_to_roll, RollNote, RollOptions, RollSpec};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// One generated sample with what it was made from.
struct Case {
    /// The sample's path relative to the folder searched.
    rel: PathBuf,
    side: Sidecar,
    /// The generated notes (frames from the window start).
    generated: Vec<RollNote>,
    /// The prompt window's real notes.
    real: Vec<RollNote>,
    /// The prompt file's chords over the window (annotated or estimated).
    real_chords: Option<ChordTrack>,
}

/// The sidecars (`.json`) under `dir`, searched recursively, sorted.
fn sidecar_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every sample under `dir` that has a sidecar, with its prompt read on `spec`'s grid.
fn cases(dir: &Path, spec: &RollSpec) -> Result<Vec<Case>> {
    let mut out = Vec::new();
    for p in sidecar_files(dir)? {
        let Ok(side) = Sidecar::read(&p) else {
            continue;
        };
        let folder = p.parent().unwrap_or(dir);
        let generated = file_notes(&folder.join(&side.file), spec)?;
        // The real music: the prompt's window, or the song the chords came from.
        let source = side.prompt.clone().or_else(|| {
            side.chords_source
                .as_ref()
                .map(PathBuf::from)
                .filter(|p| midi::is_midi_path(p) && p.is_file())
        });
        let (real, real_chords) = match &source {
            Some(file) => {
                let f = read_prompt(file, spec, side.from_bar.max(1))?;
                (f.notes.iter().map(|n| n.note).collect(), f.chords)
            }
            None => (Vec::new(), None),
        };
        out.push(Case {
            rel: folder
                .strip_prefix(dir)
                .unwrap_or(Path::new(""))
                .join(&side.file),
            side,
            generated,
            real,
            real_chords,
        });
    }
    if out.is_empty() {
        bail!("{}: no samples with sidecars (.json) found", dir.display());
    }
    Ok(out)
}

/// A generated file's notes on the grid (bar 1 at tick 0), inside the model's window.
fn file_notes(path: &Path, spec: &RollSpec) -> Result<Vec<RollNote>> {
    let score = midi::read_file(path)?;
    let opts = RollOptions {
        downbeats: Some(vec![0.0]),
        ..RollOptions::for_grid(spec.grid, false)
    };
    let sr = score_to_roll(&score, &opts)?;
    Ok(sr
        .notes
        .iter()
        .map(|n| n.note)
        .filter(|n| n.start < spec.frames)
        .collect())
}

/// The notes of `notes` in the region a keep spec left free (`true`) or kept (`false`).
fn region(notes: &[RollNote], keep: &Keep, free: bool) -> Vec<RollNote> {
    notes
        .iter()
        .filter(|n| {
            let kept = match *keep {
                Keep::New => false,
                Keep::Continue { keep_frames } => n.start < keep_frames,
                Keep::Fill { start, end } => n.start < start || n.start >= end,
                Keep::KeepPitches { low, high } => n.pitch >= low && n.pitch <= high,
                Keep::KeepNotes => false,
            };
            kept != free
        })
        .copied()
        .collect()
}

/// Coherence of the samples, the real music and another song with the prompts' context.
#[derive(Debug, Serialize)]
pub struct CoherenceReport {
    pub samples: usize,
    pub model: Coherence,
    pub real: Coherence,
    pub other_song: Coherence,
}

/// `--coherence DIR`: samples made with `--prompt` and a keep flag.
pub fn coherence_report(dir: &Path, spec: &RollSpec) -> Result<CoherenceReport> {
    let cases: Vec<Case> = cases(dir, spec)?
        .into_iter()
        .filter(|c| c.side.prompt.is_some() && c.side.keep != Keep::New)
        .collect();
    if cases.is_empty() {
        bail!(
            "{}: no samples made from a prompt (--prompt with a keep flag)",
            dir.display()
        );
    }
    let seg = spec.grid.frames_per_bar(4, 4).unwrap_or(16) / 2;
    let (mut model, mut real, mut other) = (Vec::new(), Vec::new(), Vec::new());
    for (i, c) in cases.iter().enumerate() {
        let keep = &c.side.keep;
        let (context, gen_free, real_free) = if *keep == Keep::KeepNotes {
            // The kept part is the prompt's notes the sample also has; the rest is new, and the
            // real song's rest is what it really plays around that part.
            let kept: Vec<RollNote> = c
                .generated
                .iter()
                .filter(|n| c.real.contains(n))
                .copied()
                .collect();
            let gen_free = c
                .generated
                .iter()
                .filter(|n| !kept.contains(n))
                .copied()
                .collect();
            let real_free = c
                .real
                .iter()
                .filter(|n| !kept.contains(n))
                .copied()
                .collect();
            (kept, gen_free, real_free)
        } else {
            (
                region(&c.real, keep, false),
                region(&c.generated, keep, true),
                region(&c.real, keep, true),
            )
        };
        // Another song: the next case with another prompt file.
        let next = (1..cases.len())
            .map(|k| &cases[(i + k) % cases.len()])
            .find(|o| o.side.prompt != c.side.prompt);
        model.push(coherence(&context, &gen_free, seg));
        let real_free: Vec<RollNote> = real_free;
        if !real_free.is_empty() {
            real.push(coherence(&context, &real_free, seg));
        }
        if let Some(o) = next {
            other.push(coherence(&context, &region(&o.real, keep, true), seg));
        }
    }
    Ok(CoherenceReport {
        samples: cases.len(),
        model: mean_coherence(&model),
        real: mean_coherence(&real),
        other_song: mean_coherence(&other),
    })
}

/// How samples follow their chords, beside real songs and a baseline.
#[derive(Debug, Serialize)]
pub struct ChordReport {
    pub samples: usize,
    pub model: ChordFit,
    /// The prompt songs' own notes against their chords (annotated or estimated).
    pub real: Option<ChordFit>,
    /// The baseline folder's samples against the same chords.
    pub baseline: Option<ChordFit>,
}

/// `--chords DIR [--baseline DIR2]`: samples made with `--chords`/`--chords-from`.
pub fn chord_report(dir: &Path, baseline: Option<&Path>, spec: &RollSpec) -> Result<ChordReport> {
    let cases: Vec<Case> = cases(dir, spec)?
        .into_iter()
        .filter(|c| c.side.chords.is_some())
        .collect();
    if cases.is_empty() {
        bail!("{}: no samples made with chords", dir.display());
    }
    let fit = |notes: &[RollNote], c: &Case| {
        let track = c.side.chords.as_ref().expect("filtered");
        chord_fit(notes, track)
    };
    let model: Vec<ChordFit> = cases.iter().map(|c| fit(&c.generated, c)).collect();
    let real: Vec<ChordFit> = cases
        .iter()
        .filter_map(|c| Some(chord_fit(&c.real, c.real_chords.as_ref()?)))
        .collect();
    let base = match baseline {
        Some(b) => {
            let base_cases = cases_by_file(b, spec)?;
            let fits: Vec<ChordFit> = cases
                .iter()
                .filter_map(|c| {
                    let g = base_cases.iter().find(|(f, _)| *f == c.rel)?;
                    Some(fit(&g.1, c))
                })
                .collect();
            if fits.is_empty() {
                bail!(
                    "--baseline {}: no sample file names in common with {}",
                    b.display(),
                    dir.display()
                );
            }
            Some(mean_chord_fit(&fits))
        }
        None => None,
    };
    Ok(ChordReport {
        samples: cases.len(),
        model: mean_chord_fit(&model),
        real: (!real.is_empty()).then(|| mean_chord_fit(&real)),
        baseline: base,
    })
}

/// The generated notes of every sample under `dir`, by path relative to `dir`.
fn cases_by_file(dir: &Path, spec: &RollSpec) -> Result<Vec<(PathBuf, Vec<RollNote>)>> {
    let mut out = Vec::new();
    for p in sidecar_files(dir)? {
        let Ok(side) = Sidecar::read(&p) else {
            continue;
        };
        let folder = p.parent().unwrap_or(dir);
        let rel = folder
            .strip_prefix(dir)
            .unwrap_or(Path::new(""))
            .join(&side.file);
        out.push((rel, file_notes(&folder.join(&side.file), spec)?));
    }
    Ok(out)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("  -  ".into(), |x| format!("{:5.1}%", 100.0 * x))
}

fn num(v: Option<f64>) -> String {
    v.map_or("  -  ".into(), |x| format!("{x:6.3}"))
}

impl CoherenceReport {
    pub fn to_text(&self) -> String {
        let row = |name: &str, c: &Coherence| {
            format!(
                "{name:<14} {:>8} {:>8} {:>8} {:>8}\n",
                num(c.pc_correlation),
                pct(c.key_agreement),
                pct(c.on_scale),
                pct(c.chord_reuse)
            )
        };
        format!(
            "coherence with the prompt ({} samples): generated region vs the kept context\n\
             {:<14} {:>8} {:>8} {:>8} {:>8}\n{}{}{}",
            self.samples,
            "",
            "pc corr",
            "same key",
            "on scale",
            "chords",
            row("model", &self.model),
            row("real", &self.real),
            row("other song", &self.other_song)
        )
    }
}

impl ChordReport {
    pub fn to_text(&self) -> String {
        let row = |name: &str, c: &ChordFit| {
            format!(
                "{name:<22} {:>10} {:>12}\n",
                pct(c.tone_share),
                pct(c.bass_on_root)
            )
        };
        let mut s = format!(
            "following the given chords ({} samples)\n{:<22} {:>10} {:>12}\n",
            self.samples, "", "chord tones", "bass on root"
        );
        s += &row("model with chords", &self.model);
        if let Some(b) = &self.baseline {
            s += &row("baseline (no chords)", b);
        }
        if let Some(r) = &self.real {
            s += &row("real songs (their own)", r);
        }
        s
    }
}
