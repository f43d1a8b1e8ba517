//! Musical-structure evaluation of generated music against real music.
//!
//! Both sets are cut into windows of a few bars on the beats grid (the grid phase and the bar
//! lines come from [`crate::roll::score_to_roll`], so real files whose 16ths are offset from
//! tick 0 are read correctly). Every window gets a [`FeatureSet`]: one scalar per [`Feature`].
//! For each feature the two sets' values are smoothed into densities (Gaussian KDE), and the
//! *overlapping area* (OA, Yang & Lerch 2018) of the two densities says how alike the sets are:
//! 1 = indistinguishable, 0 = disjoint.
//!
//! Why three families: summary statistics of notes (density, range, durations ...) cannot tell
//! music from note soup. Real POP909 windows with their notes' onsets and pitches shuffled score
//! like real music on every one of them. The [`Family::Harmony`] and [`Family::Melody`] features
//! measure what shuffling destroys: chords, a bass under them, a singable top voice, repeated
//! bars and a key.
//!
//! Calibration: OA depends on the number of windows (small samples overlap less), so a score is
//! only meaningful next to a *ceiling*: as many real, held-out windows scored the same way
//! ([`evaluate_sets`]' `ceiling` argument), and next to corrupted copies of real windows
//! ([`corrupt`]), which show how low note soup scores.

pub mod chart;
pub mod corrupt;
pub mod features;
pub mod harmony;
pub mod melody;
pub mod memorize;
pub mod oa;

use crate::midi::{FileError, MidiError, Score, TimeSignature};
use crate::roll::{
    read_pop909_downbeats, roll_to_notes, score_to_roll, RollNote, RollOptions, Velocity,
};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use memorize::{MemorisationReport, NearCopy};
pub use oa::overlapping_area;

/// Which group a feature belongs to; the summary averages OA per family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Summary statistics of notes: blind to structure, but catch gross density/range errors.
    Notes,
    /// Chords: consonance, triads, bass, harmonic rhythm.
    Harmony,
    /// The top voice and the form: steps/leaps, chord tones, repetition, key.
    Melody,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Notes, Family::Harmony, Family::Melody];

    pub fn name(self) -> &'static str {
        match self {
            Family::Notes => "note statistics",
            Family::Harmony => "harmony",
            Family::Melody => "melody and form",
        }
    }
}

/// One scalar measured on a window. See [`Feature::description`] for how each is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    NotesPerBar,
    Polyphony,
    PitchRange,
    PitchClasses,
    PitchClassEntropy,
    NoteDuration,
    InterOnsetInterval,
    SilenceRatio,
    OnBeat,
    Consonance,
    TriadFit,
    BassRoot,
    ChordDuration,
    ChordChangeOnDownbeat,
    MelodySteps,
    MelodyLeaps,
    MelodyChordTones,
    BarRepetition,
    KeyClarity,
    KeyConsistency,
}

impl Feature {
    /// Number of features.
    pub const COUNT: usize = 20;

    /// Every feature, in report order (grouped by family).
    pub const ALL: [Feature; Feature::COUNT] = [
        Feature::NotesPerBar,
        Feature::Polyphony,
        Feature::PitchRange,
        Feature::PitchClasses,
        Feature::PitchClassEntropy,
        Feature::NoteDuration,
        Feature::InterOnsetInterval,
        Feature::SilenceRatio,
        Feature::OnBeat,
        Feature::Consonance,
        Feature::TriadFit,
        Feature::BassRoot,
        Feature::ChordDuration,
        Feature::ChordChangeOnDownbeat,
        Feature::MelodySteps,
        Feature::MelodyLeaps,
        Feature::MelodyChordTones,
        Feature::BarRepetition,
        Feature::KeyClarity,
        Feature::KeyConsistency,
    ];

    /// Position in [`Feature::ALL`] and in a [`FeatureSet`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// snake_case name, as in the JSON report.
    pub fn name(self) -> &'static str {
        match self {
            Feature::NotesPerBar => "notes_per_bar",
            Feature::Polyphony => "polyphony",
            Feature::PitchRange => "pitch_range",
            Feature::PitchClasses => "pitch_classes",
            Feature::PitchClassEntropy => "pitch_class_entropy",
            Feature::NoteDuration => "note_duration",
            Feature::InterOnsetInterval => "inter_onset_interval",
            Feature::SilenceRatio => "silence_ratio",
            Feature::OnBeat => "on_beat",
            Feature::Consonance => "consonance",
            Feature::TriadFit => "triad_fit",
            Feature::BassRoot => "bass_root",
            Feature::ChordDuration => "chord_duration",
            Feature::ChordChangeOnDownbeat => "chord_change_on_downbeat",
            Feature::MelodySteps => "melody_steps",
            Feature::MelodyLeaps => "melody_leaps",
            Feature::MelodyChordTones => "melody_chord_tones",
            Feature::BarRepetition => "bar_repetition",
            Feature::KeyClarity => "key_clarity",
            Feature::KeyConsistency => "key_consistency",
        }
    }

    /// Short upper-case label for the chart's bitmap font.
    pub fn label(self) -> &'static str {
        match self {
            Feature::NotesPerBar => "NOTES/BAR",
            Feature::Polyphony => "POLYPHONY",
            Feature::PitchRange => "RANGE",
            Feature::PitchClasses => "PCS/BAR",
            Feature::PitchClassEntropy => "PC ENTROPY",
            Feature::NoteDuration => "DURATION",
            Feature::InterOnsetInterval => "IOI",
            Feature::SilenceRatio => "SILENCE",
            Feature::OnBeat => "ON BEAT",
            Feature::Consonance => "CONSONANCE",
            Feature::TriadFit => "TRIAD FIT",
            Feature::BassRoot => "BASS ROOT",
            Feature::ChordDuration => "CHORD LEN",
            Feature::ChordChangeOnDownbeat => "CHG ON BAR",
            Feature::MelodySteps => "MEL STEPS",
            Feature::MelodyLeaps => "MEL LEAPS",
            Feature::MelodyChordTones => "MEL CT",
            Feature::BarRepetition => "REPETITION",
            Feature::KeyClarity => "KEY CLARITY",
            Feature::KeyConsistency => "KEY CONSIST",
        }
    }

    pub fn family(self) -> Family {
        use Feature::*;
        match self {
            NotesPerBar | Polyphony | PitchRange | PitchClasses | PitchClassEntropy
            | NoteDuration | InterOnsetInterval | SilenceRatio | OnBeat => Family::Notes,
            Consonance | TriadFit | BassRoot | ChordDuration | ChordChangeOnDownbeat => {
                Family::Harmony
            }
            MelodySteps | MelodyLeaps | MelodyChordTones | BarRepetition | KeyClarity
            | KeyConsistency => Family::Melody,
        }
    }

    /// Unit of the values (for the table).
    pub fn unit(self) -> &'static str {
        use Feature::*;
        match self {
            NotesPerBar => "notes",
            Polyphony => "pitches",
            PitchRange => "semitones",
            PitchClasses => "classes",
            PitchClassEntropy => "bits",
            NoteDuration | InterOnsetInterval | ChordDuration => "beats",
            KeyClarity | KeyConsistency => "r",
            _ => "share",
        }
    }

    /// One line on how the feature is computed on a window.
    pub fn description(self) -> &'static str {
        use Feature::*;
        match self {
            NotesPerBar => "notes starting in the window / bars",
            Polyphony => "mean number of sounding pitches over frames where anything sounds",
            PitchRange => "highest minus lowest pitch in the window",
            PitchClasses => "distinct pitch classes per bar, mean over non-empty bars",
            PitchClassEntropy => "Shannon entropy of the window's pitch-class histogram of onsets",
            NoteDuration => "mean note length",
            InterOnsetInterval => "mean time between consecutive distinct onsets",
            SilenceRatio => "share of frames where nothing sounds",
            OnBeat => "share of onsets on a beat",
            Consonance => {
                "share of consonant intervals (unison/octave, 3rds, 4th, 5th, 6ths) among all pairs \
                 of simultaneously sounding pitches"
            }
            TriadFit => {
                "per half bar, share of sounding time on the best-fitting major/minor triad; mean"
            }
            BassRoot => "share of half bars whose lowest note is the best triad's root",
            ChordDuration => "mean length of runs of the same best triad (rests extend a chord)",
            ChordChangeOnDownbeat => "share of chord changes that fall on a bar line (vs mid-bar)",
            MelodySteps => "top voice (skyline): share of intervals of 1-2 semitones",
            MelodyLeaps => "top voice: share of intervals of 5 semitones or more",
            MelodyChordTones => {
                "share of top-voice notes on a tone of the triad that the other voices form in \
                 their half bar"
            }
            BarRepetition => {
                "per bar, best Jaccard overlap of its (onset, pitch) set with an earlier bar; mean"
            }
            KeyClarity => {
                "per bar, best correlation of its pitch-class profile with the 24 \
                 Krumhansl-Kessler key profiles; mean"
            }
            KeyConsistency => {
                "per bar, correlation of its profile with the window's best key profile; mean"
            }
        }
    }

    /// The smallest meaningful difference between two values: the KDE bandwidth never goes
    /// below half of it, so degenerate (all-equal) distributions still have a density.
    pub fn resolution(self) -> f64 {
        use Feature::*;
        match self {
            NotesPerBar => 0.5,
            Polyphony => 0.1,
            PitchRange => 1.0,
            PitchClasses => 0.125,
            PitchClassEntropy => 0.05,
            NoteDuration | InterOnsetInterval => 0.05,
            ChordDuration => 0.25,
            _ => 0.02,
        }
    }
}

/// One window's features; `None` where a feature is undefined (no melody intervals, no chord
/// change, ...). Undefined values are left out of that feature's distribution.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FeatureSet {
    pub values: [Option<f64>; Feature::COUNT],
}

impl Default for FeatureSet {
    fn default() -> Self {
        Self {
            values: [None; Feature::COUNT],
        }
    }
}

impl FeatureSet {
    /// Compute every feature of a window.
    pub fn of(window: &Window) -> Self {
        let mut out = FeatureSet::default();
        let masks = window.frame_masks();
        features::note_statistics(window, &masks, &mut out);
        let harmony = harmony::analyse(window, &masks);
        harmony::harmony_features(window, &masks, &harmony, &mut out);
        melody::melody_features(window, &harmony, &mut out);
        out
    }

    pub fn get(&self, f: Feature) -> Option<f64> {
        self.values[f.index()]
    }

    /// Set a value; non-finite values become `None`.
    pub fn set(&mut self, f: Feature, v: Option<f64>) {
        self.values[f.index()] = v.filter(|x| x.is_finite());
    }
}

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

/// The meter to cut bars by, as `(beats per bar, beat unit)`.
///
/// Annotated downbeats win: their median spacing in quarter notes (2..=12) gives the bar. Else
/// the file's time signature at tick 0, except that a one-beat bar (`1/x`) is taken for 4/4:
/// such signatures are export artefacts (every POP909 file declares 1/4 over 4/4 music), and a
/// one-beat "bar" would make every bar-level feature meaningless.
pub fn resolve_meter(score: &Score, downbeats: Option<&[f64]>) -> (u8, u32) {
    if let Some(db) = downbeats.filter(|d| d.len() >= 3) {
        let ppq = f64::from(score.ticks_per_beat.max(1));
        let mut gaps: Vec<f64> = db
            .windows(2)
            .map(|p| (score.tempo.time_to_tick(p[1]) - score.tempo.time_to_tick(p[0])) / ppq)
            .filter(|g| g.is_finite() && *g > 0.0)
            .collect();
        if !gaps.is_empty() {
            gaps.sort_by(f64::total_cmp);
            let beats = gaps[gaps.len() / 2].round();
            if (2.0..=12.0).contains(&beats) {
                return (beats as u8, 4);
            }
        }
    }
    match score.time_signature_at(0) {
        (n, _) if n < 2 => (4, 4),
        other => other,
    }
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

/// Features of many windows, in parallel.
pub fn feature_table(windows: &[Window]) -> Vec<FeatureSet> {
    windows.par_iter().map(FeatureSet::of).collect()
}

/// Mean, spread and count of one feature over a set (undefined values left out).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    /// Windows where the feature is defined.
    pub n: usize,
    pub mean: f64,
    pub sd: f64,
}

impl Stats {
    pub fn of(values: &[f64]) -> Self {
        let n = values.len();
        if n == 0 {
            return Self::default();
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64;
        Self {
            n,
            mean,
            sd: var.sqrt(),
        }
    }
}

/// The defined values of one feature over a table.
pub fn column(table: &[FeatureSet], f: Feature) -> Vec<f64> {
    table.iter().filter_map(|s| s.get(f)).collect()
}

/// OA of every feature between two tables, and the per-family and overall means.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Indexed like [`Feature::ALL`]; `None` where either side has no defined value.
    pub oa: Vec<Option<f64>>,
    /// Mean OA per family, in [`Family::ALL`] order.
    pub families: Vec<Option<f64>>,
    /// Mean of the family means (each family weighs the same, whatever its feature count).
    pub overall: Option<f64>,
}

impl Comparison {
    pub fn feature(&self, f: Feature) -> Option<f64> {
        self.oa.get(f.index()).copied().flatten()
    }

    pub fn family(&self, fam: Family) -> Option<f64> {
        let i = Family::ALL.iter().position(|&x| x == fam)?;
        self.families.get(i).copied().flatten()
    }
}

fn mean_defined(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = xs.flatten().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Compare two feature tables feature by feature.
pub fn compare(a: &[FeatureSet], b: &[FeatureSet]) -> Comparison {
    let oa: Vec<Option<f64>> = Feature::ALL
        .par_iter()
        .map(|&f| overlapping_area(&column(a, f), &column(b, f), f.resolution() * 0.5))
        .collect();
    let families: Vec<Option<f64>> = Family::ALL
        .iter()
        .map(|&fam| {
            mean_defined(
                Feature::ALL
                    .iter()
                    .filter(|f| f.family() == fam)
                    .map(|f| oa[f.index()]),
            )
        })
        .collect();
    let overall = mean_defined(families.iter().copied());
    Comparison {
        oa,
        families,
        overall,
    }
}

/// One feature's line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureReport {
    pub feature: Feature,
    pub family: Family,
    pub unit: &'static str,
    pub description: &'static str,
    pub generated: Stats,
    pub reference: Stats,
    /// The ceiling set's values (real held-out windows), when given.
    pub ceiling_set: Option<Stats>,
    /// OA(generated, reference).
    pub oa: Option<f64>,
    /// OA(ceiling set, reference): what a perfect model reaches with this many windows.
    pub ceiling_oa: Option<f64>,
    /// `oa / ceiling_oa`.
    pub ratio: Option<f64>,
}

/// A family's or the overall summary line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryLine {
    /// Family name, or "overall".
    pub name: String,
    pub oa: Option<f64>,
    pub ceiling_oa: Option<f64>,
    pub ratio: Option<f64>,
}

/// The scores of a calibration baseline (corrupted real windows) against the reference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BaselineReport {
    pub name: String,
    pub description: String,
    pub comparison: Comparison,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    pub generated_windows: usize,
    pub reference_windows: usize,
    pub ceiling_windows: Option<usize>,
    pub features: Vec<FeatureReport>,
    /// One line per family, then the overall line.
    pub summary: Vec<SummaryLine>,
    pub model: Comparison,
    pub ceiling: Option<Comparison>,
    /// Filled by the caller (see [`corrupt::baselines`]); empty otherwise.
    pub baselines: Vec<BaselineReport>,
    /// Filled by the caller (see [`memorize::memorisation`]).
    pub memorisation: Option<MemorisationReport>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 1e-9 => Some(a / b),
        _ => None,
    }
}

/// Score generated windows against reference windows; with `ceiling` (as many real windows
/// not in the reference), also the ceiling and the model's ratio to it.
pub fn evaluate_sets(
    generated: &[Window],
    reference: &[Window],
    ceiling: Option<&[Window]>,
) -> EvalReport {
    let gen_t = feature_table(generated);
    let ref_t = feature_table(reference);
    let ceil_t = ceiling.map(feature_table);
    evaluate_tables(&gen_t, &ref_t, ceil_t.as_deref())
}

/// [`evaluate_sets`] on precomputed feature tables.
pub fn evaluate_tables(
    generated: &[FeatureSet],
    reference: &[FeatureSet],
    ceiling: Option<&[FeatureSet]>,
) -> EvalReport {
    let model = compare(generated, reference);
    let ceil = ceiling.map(|c| compare(c, reference));
    let features = Feature::ALL
        .iter()
        .map(|&f| {
            let oa = model.feature(f);
            let ceiling_oa = ceil.as_ref().and_then(|c| c.feature(f));
            FeatureReport {
                feature: f,
                family: f.family(),
                unit: f.unit(),
                description: f.description(),
                generated: Stats::of(&column(generated, f)),
                reference: Stats::of(&column(reference, f)),
                ceiling_set: ceiling.map(|c| Stats::of(&column(c, f))),
                oa,
                ceiling_oa,
                ratio: ratio(oa, ceiling_oa),
            }
        })
        .collect();
    let mut summary: Vec<SummaryLine> = Family::ALL
        .iter()
        .map(|&fam| {
            let oa = model.family(fam);
            let c = ceil.as_ref().and_then(|c| c.family(fam));
            SummaryLine {
                name: fam.name().to_string(),
                oa,
                ceiling_oa: c,
                ratio: ratio(oa, c),
            }
        })
        .collect();
    let c = ceil.as_ref().and_then(|c| c.overall);
    summary.push(SummaryLine {
        name: "overall".to_string(),
        oa: model.overall,
        ceiling_oa: c,
        ratio: ratio(model.overall, c),
    });
    EvalReport {
        generated_windows: generated.len(),
        reference_windows: reference.len(),
        ceiling_windows: ceiling.map(<[FeatureSet]>::len),
        features,
        summary,
        model,
        ceiling: ceil,
        baselines: Vec::new(),
        memorisation: None,
    }
}

fn fmt_opt(x: Option<f64>, width: usize, prec: usize) -> String {
    match x {
        Some(v) => format!("{v:>width$.prec$}"),
        None => format!("{:>width$}", "n/a"),
    }
}

impl EvalReport {
    /// The report as a plain-text table (features, summary, baselines, memorisation).
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "windows: generated {}, reference {}{}",
            self.generated_windows,
            self.reference_windows,
            match self.ceiling_windows {
                Some(n) => format!(", ceiling (train) {n}"),
                None => String::new(),
            }
        );
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "{:>3} {:<26} {:>9} {:>15} {:>15} {:>15} {:>6} {:>7} {:>6}",
            "#",
            "feature",
            "unit",
            "generated",
            "reference",
            "ceiling set",
            "OA",
            "ceiling",
            "ratio"
        );
        let ms = |st: &Stats| {
            if st.n == 0 {
                format!("{:>15}", "n/a")
            } else {
                format!("{:>8.2} ±{:<6.2}", st.mean, st.sd)
            }
        };
        let mut fam = None;
        for (i, r) in self.features.iter().enumerate() {
            if fam != Some(r.family) {
                fam = Some(r.family);
                let _ = writeln!(s, "--- {}", r.family.name());
            }
            let _ = writeln!(
                s,
                "{:>3} {:<26} {:>9} {} {} {} {} {} {}",
                i + 1,
                r.feature.name(),
                r.unit,
                ms(&r.generated),
                ms(&r.reference),
                r.ceiling_set
                    .as_ref()
                    .map(ms)
                    .unwrap_or_else(|| format!("{:>15}", "-")),
                fmt_opt(r.oa, 6, 3),
                fmt_opt(r.ceiling_oa, 7, 3),
                fmt_opt(r.ratio, 6, 2),
            );
        }
        let _ = writeln!(s);
        let _ = writeln!(
            s,
            "summary (mean OA per family; overall = mean of the families)"
        );
        let _ = writeln!(
            s,
            "{:<18} {:>6} {:>7} {:>6}",
            "", "model", "ceiling", "ratio"
        );
        for l in &self.summary {
            let _ = writeln!(
                s,
                "{:<18} {} {} {}",
                l.name,
                fmt_opt(l.oa, 6, 3),
                fmt_opt(l.ceiling_oa, 7, 3),
                fmt_opt(l.ratio, 6, 2)
            );
        }
        if !self.baselines.is_empty() {
            let _ = writeln!(s);
            let _ = writeln!(
                s,
                "calibration (OA vs reference): {:>8} {:>8} {:>8} {:>8}",
                "notes", "harmony", "melody", "overall"
            );
            let mut row = |name: &str, c: &Comparison| {
                let _ = writeln!(
                    s,
                    "  {:<28} {} {} {} {}",
                    name,
                    fmt_opt(c.family(Family::Notes), 8, 3),
                    fmt_opt(c.family(Family::Harmony), 8, 3),
                    fmt_opt(c.family(Family::Melody), 8, 3),
                    fmt_opt(c.overall, 8, 3)
                );
            };
            row("model", &self.model);
            if let Some(c) = &self.ceiling {
                row("ceiling (real, train)", c);
            }
            for b in &self.baselines {
                row(&b.name, &b.comparison);
            }
            for b in &self.baselines {
                let _ = writeln!(s, "  {}: {}", b.name, b.description);
            }
        }
        if let Some(m) = &self.memorisation {
            let _ = writeln!(s);
            s.push_str(&m.to_text());
        }
        s
    }
}
