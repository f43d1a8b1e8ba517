//! Standard MIDI Files: reading into a [`Score`] (notes in ticks plus the tempo map) and writing
//! notes back. No tensors here; [`crate::roll`] turns a score into a piano roll.

mod read;
mod write;

pub use read::{parse, MAX_TICK};
pub use write::{write_smf, MidiWriteSpec, WriteNote};

use std::path::{Path, PathBuf};

/// What is wrong with a MIDI file. Every variant is a clear, user-facing reason.
#[derive(Debug, thiserror::Error)]
pub enum MidiError {
    #[error("the file is empty")]
    Empty,
    #[error("not a MIDI file (looks like {0})")]
    NotMidi(String),
    #[error("truncated: {0}")]
    Truncated(String),
    #[error("malformed: {0}")]
    Malformed(String),
    #[error("no tracks")]
    NoTracks,
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("absurd length: {0}")]
    TooLong(String),
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// A [`MidiError`] with the file it came from.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    #[source]
    pub source: MidiError,
}

/// Read and parse one file; the error names the file.
pub fn read_file(path: &Path) -> Result<Score, FileError> {
    let wrap = |source| FileError {
        path: path.to_path_buf(),
        source,
    };
    let raw = std::fs::read(path).map_err(|e| wrap(MidiError::Io(e)))?;
    parse(&raw).map_err(wrap)
}

/// A note in ticks. Times in seconds come from [`TempoMap::tick_to_time`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Note {
    pub pitch: u8,
    pub velocity: u8,
    pub start_tick: u64,
    pub end_tick: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlChange {
    pub tick: u64,
    pub number: u8,
    pub value: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PitchBend {
    pub tick: u64,
    /// -8192..=8191, as mido reports it.
    pub value: i16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeSignature {
    pub tick: u64,
    pub numerator: u8,
    pub denominator: u32,
}

/// One pretty_midi instrument: notes of one (program, channel, track).
#[derive(Debug, Clone)]
pub struct Instrument {
    pub program: u8,
    pub channel: u8,
    pub track: usize,
    pub is_drum: bool,
    pub name: String,
    pub notes: Vec<Note>,
    /// Index into [`Score::cc_lists`]; shared between instruments exactly where pretty_midi
    /// shares a straggler's list.
    pub cc_list: usize,
    pub bend_list: usize,
}

/// A parsed MIDI file.
#[derive(Debug, Clone)]
pub struct Score {
    pub ticks_per_beat: u16,
    pub tempo: TempoMap,
    /// From track 0, in file order.
    pub time_signatures: Vec<TimeSignature>,
    pub instruments: Vec<Instrument>,
    pub cc_lists: Vec<Vec<ControlChange>>,
    pub bend_lists: Vec<Vec<PitchBend>>,
    /// The largest event tick in any track.
    pub max_tick: u64,
}

impl Score {
    pub fn control_changes(&self, inst: &Instrument) -> &[ControlChange] {
        &self.cc_lists[inst.cc_list]
    }

    pub fn pitch_bends(&self, inst: &Instrument) -> &[PitchBend] {
        &self.bend_lists[inst.bend_list]
    }

    /// All pitched (non-drum) notes.
    pub fn pitched_notes(&self) -> impl Iterator<Item = &Note> + '_ {
        self.instruments
            .iter()
            .filter(|i| !i.is_drum)
            .flat_map(|i| i.notes.iter())
    }

    /// Number of notes on non-drum instruments.
    pub fn note_count(&self) -> usize {
        self.pitched_notes().count()
    }

    /// End of the last note, in seconds (0 for a file without notes).
    pub fn duration_seconds(&self) -> f64 {
        self.pitched_notes()
            .map(|n| self.tempo.tick_to_time(n.end_tick))
            .fold(0.0, f64::max)
    }

    /// The time signature in force at `tick` (4/4 when the file has none).
    pub fn time_signature_at(&self, tick: u64) -> (u8, u32) {
        self.time_signatures
            .iter()
            .rfind(|t| t.tick <= tick && t.numerator > 0 && t.denominator > 0)
            .map(|t| (t.numerator, t.denominator))
            .unwrap_or((4, 4))
    }

    /// Tempo in BPM at tick 0.
    pub fn initial_bpm(&self) -> f64 {
        self.tempo.bpm_at(0)
    }
}

/// pretty_midi's tick-to-seconds map: `(tick, seconds per tick)` intervals from track 0, with
/// times accumulated in f64 exactly as its `_update_tick_to_time` does.
#[derive(Debug, Clone)]
pub struct TempoMap {
    ticks_per_beat: u16,
    /// (start tick, seconds per tick, seconds at start tick)
    intervals: Vec<(u64, f64, f64)>,
}

impl TempoMap {
    /// Build from `(tick, microseconds per quarter)` set_tempo events of track 0, in file order.
    pub fn from_events(ticks_per_beat: u16, events: &[(u64, u32)]) -> Self {
        let res = f64::from(ticks_per_beat);
        let mut scales: Vec<(u64, f64)> = vec![(0, 60.0 / (120.0 * res))];
        for &(tick, tempo) in events {
            if tempo == 0 {
                continue; // pretty_midi would divide by zero; a zero tempo carries no meaning
            }
            let bpm = 6e7 / f64::from(tempo);
            let scale = 60.0 / (bpm * res);
            if tick == 0 {
                scales = vec![(0, scale)];
            } else if scale != scales[scales.len() - 1].1 {
                scales.push((tick, scale));
            }
        }
        let mut intervals = Vec::with_capacity(scales.len());
        let mut last_end = 0.0f64;
        for (i, &(start, scale)) in scales.iter().enumerate() {
            intervals.push((start, scale, last_end));
            if let Some(&(end, _)) = scales.get(i + 1) {
                // pretty_midi: last_end_time = array[end_tick] = last_end_time + scale * ticks
                last_end += scale * ((end - start) as f64);
            }
        }
        Self {
            ticks_per_beat,
            intervals,
        }
    }

    /// A constant tempo.
    pub fn constant(ticks_per_beat: u16, bpm: f64) -> Self {
        Self {
            ticks_per_beat,
            intervals: vec![(0, 60.0 / (bpm * f64::from(ticks_per_beat)), 0.0)],
        }
    }

    fn interval(&self, tick: u64) -> &(u64, f64, f64) {
        let i = self.intervals.partition_point(|iv| iv.0 <= tick);
        &self.intervals[i.saturating_sub(1)]
    }

    /// Seconds at `tick`, bit-identical to pretty_midi's `tick_to_time`.
    pub fn tick_to_time(&self, tick: u64) -> f64 {
        let &(start, scale, t0) = self.interval(tick);
        t0 + scale * ((tick - start) as f64)
    }

    /// The (fractional) tick at `seconds`: the inverse of [`Self::tick_to_time`].
    pub fn time_to_tick(&self, seconds: f64) -> f64 {
        let i = self.intervals.partition_point(|iv| iv.2 <= seconds);
        let &(start, scale, t0) = &self.intervals[i.saturating_sub(1)];
        start as f64 + (seconds - t0) / scale
    }

    pub fn bpm_at(&self, tick: u64) -> f64 {
        60.0 / (self.interval(tick).1 * f64::from(self.ticks_per_beat))
    }

    /// `(tick, bpm)` for every tempo interval.
    pub fn changes(&self) -> Vec<(u64, f64)> {
        self.intervals
            .iter()
            .map(|&(t, s, _)| (t, 60.0 / (s * f64::from(self.ticks_per_beat))))
            .collect()
    }
}

/// Recursively find `.mid`/`.midi` files (any case) under `dir`, sorted. Symlinked folders are
/// followed (each real folder once), so a folder of links can combine corpora.
pub fn find_midi_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(real) = std::fs::canonicalize(&d) {
            if !seen.insert(real) {
                continue;
            }
        }
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if is_midi_path(&path) && path.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a path has a MIDI file extension (`.mid` or `.midi`, any case).
pub fn is_midi_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.eq_ignore_ascii_case("mid") || e.eq_ignore_ascii_case("midi"))
        .unwrap_or(false)
}
