//! The training data pipeline: a MIDI folder parsed once (in parallel) into a content-keyed cache
//! of rolls, notes and chords ([`cache`]), then random bar-aligned windows with pitch-shift
//! augmentation and, for a conditioned model, the conditions of every workflow ([`draw`]),
//! drawn by a prefetch thread so that loading never stalls a training step ([`batch`]).

mod batch;
mod cache;
mod draw;

pub use batch::{prefetch, Batch, Sampler};
pub use draw::{Drawn, CONDITION_MIX};

use anyhow::{bail, Context, Result};
use cache::Converted;
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::chords::{estimate_chords, read_pop909_chords, ChordTrack};
use jit_music::midi::{self, find_midi_files};
use jit_music::roll::{
    read_pop909_downbeats, score_to_roll, Channels, Conditions, Grid, GridNote, PianoRoll,
    RollNote, RollOptions, RollSpec, PITCHES,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How files become training rolls (part of the cache key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataConfig {
    pub grid: Grid,
    pub articulation: bool,
    /// Window length in frames (the model's input width).
    pub frames: usize,
    /// Pitch-shift augmentation range in semitones (+/-).
    pub pitch_shift: i32,
    /// Windows with fewer active cells than this are skipped as (nearly) empty.
    pub min_active_cells: usize,
    /// Labels from the first sub-folder under the data folder.
    pub classes_from_dirs: bool,
    /// Fraction of files held out for validation (at least one file when > 0).
    pub val_fraction: f64,
    /// Sample classes equally often (else in proportion to their windows).
    pub balance_classes: bool,
    /// Extra sampling weight per class name (default 1), e.g. to favour the main style.
    #[serde(default)]
    pub class_weights: BTreeMap<String, f64>,
    /// The model's roll channels.
    #[serde(default)]
    pub channels: Channels,
    /// The conditions the model takes (drawn per window, see [`draw`]).
    #[serde(default)]
    pub conditions: Conditions,
}

impl DataConfig {
    /// The roll the model sees.
    pub fn roll_spec(&self) -> RollSpec {
        RollSpec {
            grid: self.grid,
            pitch_low: 0,
            pitches: PITCHES,
            frames: self.frames,
            articulation: self.articulation && self.channels == Channels::Intensity,
            channels: self.channels,
            conditions: self.conditions,
        }
    }
}

/// One file, converted.
#[derive(Debug, Clone)]
pub struct Song {
    pub path: PathBuf,
    pub label: u32,
    /// The intensity roll (articulated as configured).
    pub roll: PianoRoll,
    /// Frames at which a window may start (bar lines on the beats grid).
    pub starts: Vec<usize>,
    /// The notes on the grid with their parts, sorted by start.
    pub notes: Vec<GridNote>,
    /// The longest note, in frames (bounds the search for notes sounding into a window).
    pub longest: usize,
    pub frames_per_bar: usize,
    pub melody_part: Option<u16>,
    /// Annotated (POP909) or estimated chords.
    pub chords: Option<ChordTrack>,
}

impl Song {
    /// A song from notes alone (tests, tools): roll painted from them, bars every `fpb` frames.
    pub fn from_notes(path: PathBuf, label: u32, notes: Vec<GridNote>, fpb: usize) -> Song {
        let plain: Vec<RollNote> = notes.iter().map(|n| n.note).collect();
        let frames = plain.iter().map(|n| n.end).max().unwrap_or(0);
        let roll = jit_music::roll::notes_to_roll(&plain, frames);
        Song {
            path,
            label,
            starts: (0..frames).step_by(fpb.max(1)).collect(),
            longest: plain.iter().map(|n| n.end - n.start).max().unwrap_or(0),
            roll,
            notes,
            frames_per_bar: fpb.max(1),
            melody_part: None,
            chords: None,
        }
    }

    /// The notes sounding in frames `start..start + len`, from the window start and cut to it
    /// (a note held into the window starts at 0), with their parts.
    pub fn window(&self, start: usize, len: usize) -> Vec<GridNote> {
        let end = start + len;
        let from = self
            .notes
            .partition_point(|n| n.note.start + self.longest < start);
        self.notes[from..]
            .iter()
            .take_while(|n| n.note.start < end)
            .filter(|n| n.note.end > start)
            .map(|n| GridNote {
                note: RollNote {
                    start: n.note.start.max(start) - start,
                    end: n.note.end.min(end) - start,
                    ..n.note
                },
                part: n.part,
            })
            .collect()
    }
}

/// The result of reading a folder.
pub struct Dataset {
    pub train: Arc<Vec<Song>>,
    pub val: Arc<Vec<Song>>,
    pub classes: Vec<String>,
    pub failures: Vec<(PathBuf, String)>,
    pub cache_hits: usize,
    pub files: usize,
}

impl Dataset {
    pub fn train_windows(&self) -> usize {
        self.train.iter().map(|s| s.starts.len()).sum()
    }
    pub fn val_windows(&self) -> usize {
        self.val.iter().map(|s| s.starts.len()).sum()
    }
}

/// Recursively list MIDI files, following symlinked folders (so a folder of links can combine
/// corpora into classes).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    find_midi_files(dir).with_context(|| format!("cannot read folder {}", dir.display()))
}

/// The class names `--classes-from-dirs` gives the files under `dir` (sorted): what the model's
/// class count is, known before any file is read.
pub fn class_names(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = list_files(dir)?.iter().map(|f| class_of(dir, f)).collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// The class name of a file: its first folder below `root`.
fn class_of(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .ok()
        .and_then(|rel| {
            let mut comps = rel.components();
            let first = comps.next()?;
            // A file directly in root has no class folder.
            comps.next()?;
            Some(first.as_os_str().to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "default".into())
}

/// Whether a file goes to the validation split: a stable hash of its path, never by window.
fn is_val(path: &Path, fraction: f64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    let h = blake3::hash(path.to_string_lossy().as_bytes());
    let x = u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or([0; 8]));
    (x as f64 / u64::MAX as f64) < fraction
}

/// Read `dir` into a dataset, using (and filling) the roll cache in `cache_dir`.
pub fn load_dataset(
    dir: &Path,
    cache_dir: &Path,
    cfg: &DataConfig,
    quiet: bool,
) -> Result<Dataset> {
    let files = list_files(dir)?;
    if files.is_empty() {
        bail!(
            "no MIDI files (.mid/.midi) found under {}; point --midi-dir at a folder of MIDI files",
            dir.display()
        );
    }
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("cannot create cache folder {}", cache_dir.display()))?;
    let pb = if quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(files.len() as u64)
    };
    pb.set_style(
        ProgressStyle::with_template(
            "reading MIDI {bar:30} {pos}/{len} files ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    type Loaded = std::result::Result<(Converted, bool), String>;
    let results: Vec<(PathBuf, Loaded)> = files
        .par_iter()
        .map(|path| {
            let r = convert_cached(path, cache_dir, cfg);
            pb.inc(1);
            (path.clone(), r)
        })
        .collect();
    pb.finish_and_clear();

    let mut class_names: BTreeMap<String, u32> = BTreeMap::new();
    if cfg.classes_from_dirs {
        for (p, _) in &results {
            class_names.entry(class_of(dir, p)).or_insert(0);
        }
        for (i, v) in class_names.values_mut().enumerate() {
            *v = i as u32;
        }
    }
    let mut train = Vec::new();
    let mut val = Vec::new();
    let mut failures = Vec::new();
    let mut cache_hits = 0;
    for (path, r) in results {
        match r {
            Err(e) => failures.push((path, e)),
            Ok((c, hit)) => {
                cache_hits += usize::from(hit);
                let starts = window_starts(&c.roll, &c.bars, cfg);
                if starts.is_empty() {
                    continue;
                }
                let label = if cfg.classes_from_dirs {
                    class_names[&class_of(dir, &path)]
                } else {
                    0
                };
                let song = Song {
                    path: path.clone(),
                    label,
                    roll: c.roll,
                    starts,
                    longest: c
                        .notes
                        .iter()
                        .map(|n| n.note.end - n.note.start)
                        .max()
                        .unwrap_or(0),
                    notes: c.notes,
                    frames_per_bar: c.frames_per_bar,
                    melody_part: c.melody_part,
                    chords: c.chords,
                };
                if is_val(&path, cfg.val_fraction) {
                    val.push(song);
                } else {
                    train.push(song);
                }
            }
        }
    }
    // A small folder can hash every file into the held-out split: train on them instead (the
    // run then has no validation loss rather than no data).
    if train.is_empty() && !val.is_empty() {
        train.append(&mut val);
        if train.len() > 1 {
            if let Some(s) = train.pop() {
                val.push(s);
            }
        }
    }
    if val.is_empty() && cfg.val_fraction > 0.0 && train.len() > 1 {
        // Keep at least one held-out file: the last one (sorted order, so stable).
        if let Some(s) = train.pop() {
            val.push(s);
        }
    }
    let ds = Dataset {
        train: Arc::new(train),
        val: Arc::new(val),
        classes: class_names.keys().cloned().collect(),
        failures,
        cache_hits,
        files: files.len(),
    };
    if ds.train.is_empty() {
        bail!(
            "none of the {} MIDI files under {} gave a usable window ({} failed to read{})",
            files.len(),
            dir.display(),
            ds.failures.len(),
            ds.failures
                .first()
                .map(|(p, e)| format!("; e.g. {}: {e}", p.display()))
                .unwrap_or_default()
        );
    }
    Ok(ds)
}

/// Read one file through the cache: `(conversion, whether it came from the cache)`.
fn convert_cached(
    path: &Path,
    cache_dir: &Path,
    cfg: &DataConfig,
) -> std::result::Result<(Converted, bool), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let downbeats = read_pop909_downbeats(path);
    let chord_text = path
        .parent()
        .and_then(|d| std::fs::read_to_string(d.join("chord_midi.txt")).ok());
    let key = cache::key(
        &bytes,
        &(cfg.grid, cfg.articulation, &downbeats),
        &[chord_text],
    );
    let cpath = cache_dir.join(format!("{key}.song"));
    if let Some(c) = cache::read(&cpath) {
        return Ok((c, true));
    }
    let score = midi::parse(&bytes).map_err(|e| e.to_string())?;
    let opts = RollOptions {
        downbeats,
        ..RollOptions::for_grid(cfg.grid, cfg.articulation)
    };
    let sr = score_to_roll(&score, &opts).map_err(|e| e.to_string())?;
    let frames_per_bar = sr.frames_per_bar.unwrap_or(cfg.frames / 8).max(1);
    let plain: Vec<RollNote> = sr.notes.iter().map(|n| n.note).collect();
    let chords = match (read_pop909_chords(path), cfg.grid) {
        (Some(labels), _) => Some(ChordTrack::from_seconds(&score, &sr, &labels)),
        (None, Grid::Beats { steps_per_beat }) => Some(estimate_chords(
            &plain,
            sr.roll.frames(),
            frames_per_bar,
            steps_per_beat as usize,
        )),
        (None, Grid::Seconds { .. }) => None,
    };
    let c = Converted {
        bars: sr.bar_starts(),
        frames_per_bar,
        melody_part: sr.melody_part(),
        notes: sr.notes,
        chords,
        roll: sr.roll,
    };
    // A cache that cannot be written only costs a re-parse next time.
    let _ = cache::write(&cpath, &c);
    Ok((c, false))
}

/// Window starts of a roll: its bar lines (beats grid: annotated or estimated downbeats) or every
/// quarter of a window (seconds grid), keeping those whose window is not (nearly) empty.
fn window_starts(roll: &PianoRoll, bars: &[usize], cfg: &DataConfig) -> Vec<usize> {
    let candidates: Vec<usize> = if bars.is_empty() {
        (0..roll.frames())
            .step_by((cfg.frames / 4).max(1))
            .collect()
    } else {
        bars.iter()
            .copied()
            .filter(|&b| b < roll.frames())
            .collect()
    };
    candidates
        .into_iter()
        .filter(|&s| roll.active_cells(s, cfg.frames) >= cfg.min_active_cells)
        .collect()
}
