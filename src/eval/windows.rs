//! Windows: a file's notes cut into bars on the beats grid (annotated downbeats where a real
//! file has them, tick 0 for generated files), and folders of files read into windows.

use crate::midi::{FileError, MidiError, Score, TimeSignature};
use crate::roll::{
    read_pop909_downbeats, resolve_meter, roll_to_notes, score_to_roll, RollNote, RollOptions,
    Velocity,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Where a window came from: its file (index into the set's file list) and first bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WindowSource {
    pub file: usize,
    pub bar: usize,
}

/// The notes whose onsets fall in `bars` bars, on the beats grid, with times relative to the
/// window's first bar line. Notes are sorted by `(start, pitch)`, `start < frames()`, and ends
/// are clipped to `frames()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub source: WindowSource,
    /// Frames per quarter note.
    pub steps_per_beat: usize,
    /// Frames per bar (16 for 4/4 at 4 steps per beat).
    pub frames_per_bar: usize,
    pub bars: usize,
    pub notes: Vec<RollNote>,
}

impl Window {
    /// A window from notes in frames relative to its first bar line. Notes starting outside the
    /// window or with an empty span are dropped; ends are clipped. Zero sizes are raised to 1.
    pub fn new(
        mut notes: Vec<RollNote>,
        steps_per_beat: usize,
        frames_per_bar: usize,
        bars: usize,
    ) -> Self {
        let steps_per_beat = steps_per_beat.max(1);
        let frames_per_bar = frames_per_bar.max(1);
        let bars = bars.max(1);
        let frames = frames_per_bar * bars;
        notes.retain(|n| n.start < frames && n.end > n.start && n.pitch < 128);
        for n in &mut notes {
            n.end = n.end.min(frames);
        }
        notes.sort_by_key(|n| (n.start, n.pitch, n.end));
        notes.dedup_by_key(|n| (n.start, n.pitch));
        Self {
            source: WindowSource::default(),
            steps_per_beat,
            frames_per_bar,
            bars,
            notes,
        }
    }

    /// Window length in frames.
    pub fn frames(&self) -> usize {
        self.frames_per_bar * self.bars
    }

    /// Per frame, a bit mask of the sounding pitches (bit p = MIDI pitch p). Length `frames()`.
    pub fn frame_masks(&self) -> Vec<u128> {
        let frames = self.frames();
        let mut m = vec![0u128; frames];
        // Defensive against hand-built windows: out-of-range notes are skipped or clipped.
        for n in self.notes.iter().filter(|n| n.pitch < 128) {
            let end = n.end.min(frames);
            if n.start < end {
                for x in &mut m[n.start..end] {
                    *x |= 1u128 << n.pitch;
                }
            }
        }
        m
    }

    /// The notes with onsets in bar `b`, with starts relative to the bar line.
    pub fn bar_notes(&self, b: usize) -> impl Iterator<Item = RollNote> + '_ {
        let (lo, hi) = (b * self.frames_per_bar, (b + 1) * self.frames_per_bar);
        self.notes
            .iter()
            .filter(move |n| n.start >= lo && n.start < hi)
            .map(move |n| RollNote {
                start: n.start - lo,
                end: n.end.saturating_sub(lo).max(n.start - lo),
                ..*n
            })
    }
}

/// How files are cut into windows.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOptions {
    /// Bars per window.
    pub bars: usize,
    /// Frames per quarter note of the beats grid.
    pub steps_per_beat: u32,
    /// A window with fewer notes is "(nearly) empty": skipped, and counted.
    pub min_notes: usize,
    /// Bars between window starts: `bars` for non-overlapping windows (the default), less for
    /// overlapping ones (the memorisation search uses 1, so that a copy of a training excerpt
    /// starting on any bar line meets a training window aligned with it).
    pub hop_bars: usize,
    /// Generated files: bar lines start at tick 0 (no phase estimation), and a last partial
    /// window is kept however short. Real files: bar lines from annotated downbeats
    /// (`beat_midi.txt`) or estimated; a last window shorter than half is dropped.
    pub generated: bool,
}

impl WindowOptions {
    /// `bars` bars at `steps_per_beat`, at least one note per bar on average.
    pub fn new(bars: usize, steps_per_beat: u32, generated: bool) -> Self {
        Self {
            bars: bars.max(1),
            steps_per_beat: steps_per_beat.max(1),
            min_notes: bars.max(2),
            hop_bars: bars.max(1),
            generated,
        }
    }
}

impl Default for WindowOptions {
    fn default() -> Self {
        Self::new(8, 4, false)
    }
}

/// The windows of one file, and how many (nearly) empty ones were skipped.
#[derive(Debug, Clone, Default)]
pub struct FileWindows {
    pub windows: Vec<Window>,
    pub skipped_empty: usize,
}

/// Cut notes on the beats grid (frame 0 on a bar line) into windows.
pub fn windows_from_notes(
    notes: &[RollNote],
    frames_per_bar: usize,
    opts: &WindowOptions,
) -> FileWindows {
    let spb = opts.steps_per_beat.max(1) as usize;
    let fpb = frames_per_bar.max(1);
    let bars = opts.bars.max(1);
    let len = fpb * bars;
    let hop = fpb * opts.hop_bars.clamp(1, bars);
    let total = notes.iter().map(|n| n.end).max().unwrap_or(0);
    let mut out = FileWindows::default();
    let mut sorted: Vec<RollNote> = notes.to_vec();
    sorted.sort_by_key(|n| n.start);
    let mut k = 0usize;
    loop {
        let start = k * hop;
        if start >= total && !(opts.generated && k == 0) {
            break;
        }
        let covered = total.saturating_sub(start).min(len);
        let keep_partial = opts.generated || covered * 2 >= len;
        if covered == len || keep_partial {
            let lo = sorted.partition_point(|n| n.start < start);
            let hi = sorted.partition_point(|n| n.start < start + len);
            let local: Vec<RollNote> = sorted[lo..hi]
                .iter()
                .map(|n| RollNote {
                    start: n.start - start,
                    end: n.end - start,
                    ..*n
                })
                .collect();
            let mut w = Window::new(local, spb, fpb, bars);
            w.source.bar = k * opts.hop_bars.clamp(1, bars);
            if w.notes.len() >= opts.min_notes.max(1) {
                out.windows.push(w);
            } else {
                out.skipped_empty += 1;
            }
        }
        k += 1;
    }
    out
}

/// Cut a parsed score into windows on the beats grid. `downbeats` (seconds) fix the bar lines
/// and the bar length; without them the bar phase is estimated from the onsets (see
/// [`crate::roll::score_to_roll`]) and the bar length comes from [`resolve_meter`].
pub fn windows_from_score(
    score: &Score,
    downbeats: Option<Vec<f64>>,
    opts: &WindowOptions,
) -> Result<FileWindows, MidiError> {
    let mut ro = RollOptions::beats(opts.steps_per_beat.max(1));
    ro.downbeats = if opts.generated {
        // A generated file starts on a bar line at tick 0: an annotated downbeat at 0 s.
        Some(vec![0.0])
    } else {
        downbeats
    };
    let meter = if opts.generated {
        match score.time_signature_at(0) {
            (n, _) if n < 2 => (4, 4),
            other => other,
        }
    } else {
        resolve_meter(score, ro.downbeats.as_deref())
    };
    let sr = if meter == score.time_signature_at(0) {
        score_to_roll(score, &ro)?
    } else {
        let mut fixed = score.clone();
        fixed.time_signatures = vec![TimeSignature {
            tick: 0,
            numerator: meter.0,
            denominator: meter.1,
        }];
        score_to_roll(&fixed, &ro)?
    };
    let fpb = sr
        .frames_per_bar
        .unwrap_or(4 * opts.steps_per_beat.max(1) as usize);
    // Any non-zero cell is a note: the rolls come from MIDI velocities, not model outputs.
    let notes = roll_to_notes(&sr.roll, 0.0, Velocity::Fixed(100));
    Ok(windows_from_notes(&notes, fpb, opts))
}

/// Read one file and cut it into windows (POP909 `beat_midi.txt` downbeats are used when
/// present beside a real file).
pub fn windows_from_file(path: &Path, opts: &WindowOptions) -> Result<FileWindows, FileError> {
    let score = crate::midi::read_file(path)?;
    let downbeats = if opts.generated {
        None
    } else {
        read_pop909_downbeats(path)
    };
    windows_from_score(&score, downbeats, opts).map_err(|source| FileError {
        path: path.to_path_buf(),
        source,
    })
}

/// A file that could not be used, with the reason.
#[derive(Debug, Clone, Serialize)]
pub struct FailedFile {
    pub path: PathBuf,
    pub error: String,
}

/// All windows of a folder of MIDI files.
#[derive(Debug, Clone, Default)]
pub struct LoadedSet {
    /// Every MIDI file found (sorted); [`WindowSource::file`] indexes this list.
    pub files: Vec<PathBuf>,
    pub windows: Vec<Window>,
    /// Files that failed to parse or convert; they contribute no windows.
    pub failed: Vec<FailedFile>,
    /// (Nearly) empty windows that were skipped.
    pub skipped_empty: usize,
}

impl LoadedSet {
    /// Windows of the given files, read in parallel. Never fails: bad files are listed.
    pub fn from_files(files: Vec<PathBuf>, opts: &WindowOptions) -> Self {
        let results: Vec<Result<FileWindows, FileError>> = files
            .par_iter()
            .map(|p| windows_from_file(p, opts))
            .collect();
        let mut set = LoadedSet {
            files,
            ..Default::default()
        };
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(fw) => {
                    set.skipped_empty += fw.skipped_empty;
                    set.windows.extend(fw.windows.into_iter().map(|mut w| {
                        w.source.file = i;
                        w
                    }));
                }
                Err(e) => set.failed.push(FailedFile {
                    path: e.path.clone(),
                    error: e.source.to_string(),
                }),
            }
        }
        set
    }

    /// Every `.mid`/`.midi` under `dir` (recursively). Fails only if the folder can't be listed.
    pub fn from_dir(dir: &Path, opts: &WindowOptions) -> std::io::Result<Self> {
        Ok(Self::from_files(crate::midi::find_midi_files(dir)?, opts))
    }

    /// The path of a window's file.
    pub fn path_of(&self, w: &Window) -> Option<&Path> {
        self.files.get(w.source.file).map(PathBuf::as_path)
    }
}

/// At most `n` windows, drawn without replacement (deterministic for a seed); all of them, in
/// order, when there are no more than `n`.
pub fn sample_windows(windows: &[Window], n: usize, seed: u64) -> Vec<Window> {
    if windows.len() <= n {
        return windows.to_vec();
    }
    let mut idx: Vec<usize> = (0..windows.len()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    idx.shuffle(&mut rng);
    idx.truncate(n);
    idx.sort_unstable();
    idx.into_iter().map(|i| windows[i].clone()).collect()
}
