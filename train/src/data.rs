//! The training data pipeline: a MIDI folder parsed once (in parallel) into a content-keyed cache
//! of rolls, then random bar-aligned windows with pitch-shift augmentation, drawn by a prefetch
//! thread so that loading never stalls a training step.

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use jit_music::midi::{self, find_midi_files};
use jit_music::roll::{
    read_pop909_downbeats, score_to_roll, Grid, PianoRoll, RollOptions, PITCHES,
};
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
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
}

/// One file's cached roll.
#[derive(Debug, Clone)]
pub struct Song {
    pub path: PathBuf,
    pub label: u32,
    pub roll: PianoRoll,
    /// Frames at which a window may start (bar lines on the beats grid).
    pub starts: Vec<usize>,
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

/// Cache entries: magic, frames, bar-start count, bar starts (u32), roll bytes.
const CACHE_MAGIC: &[u8; 8] = b"JITROLL2";

/// Cache key: the file's content hash plus everything the conversion depends on.
fn cache_key(bytes: &[u8], cfg: &DataConfig, downbeats: Option<&[f64]>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(bytes);
    h.update(
        serde_json::to_string(&(cfg.grid, cfg.articulation, downbeats))
            .unwrap_or_default()
            .as_bytes(),
    );
    // Bump when the conversion code changes what a roll or its bar lines are.
    h.update(b"v2");
    h.finalize().to_hex()[..32].to_string()
}

fn write_cache(path: &Path, roll: &PianoRoll, bars: &[usize]) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(24 + 4 * bars.len() + roll.data().len());
    out.extend_from_slice(CACHE_MAGIC);
    out.extend_from_slice(&(roll.frames() as u64).to_le_bytes());
    out.extend_from_slice(&(bars.len() as u64).to_le_bytes());
    for &b in bars {
        out.extend_from_slice(&(b as u32).to_le_bytes());
    }
    out.extend_from_slice(roll.data());
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, &out)?;
    std::fs::rename(tmp, path)
}

fn read_cache(path: &Path) -> Option<(PianoRoll, Vec<usize>)> {
    let b = std::fs::read(path).ok()?;
    if b.len() < 24 || &b[..8] != CACHE_MAGIC {
        return None;
    }
    let frames = u64::from_le_bytes(b[8..16].try_into().ok()?) as usize;
    let n = u64::from_le_bytes(b[16..24].try_into().ok()?) as usize;
    let end = 24usize.checked_add(n.checked_mul(4)?)?;
    let bars = b
        .get(24..end)?
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let roll = PianoRoll::from_raw(frames, b.get(end..)?.to_vec())?;
    Some((roll, bars))
}

/// Recursively list MIDI files, following symlinked folders (so a folder of links can combine
/// corpora into classes).
pub fn list_files(dir: &Path) -> Result<Vec<PathBuf>> {
    find_midi_files(dir).with_context(|| format!("cannot read folder {}", dir.display()))
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
    type Loaded = std::result::Result<(PianoRoll, Vec<usize>, bool), String>;
    let results: Vec<(PathBuf, Loaded)> = files
        .par_iter()
        .map(|path| {
            let r = (|| -> Loaded {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
                let downbeats = read_pop909_downbeats(path);
                let key = cache_key(&bytes, cfg, downbeats.as_deref());
                let cpath = cache_dir.join(format!("{key}.roll"));
                if let Some((roll, bars)) = read_cache(&cpath) {
                    return Ok((roll, bars, true));
                }
                let score = midi::parse(&bytes).map_err(|e| e.to_string())?;
                let opts = RollOptions {
                    downbeats,
                    ..RollOptions::for_grid(cfg.grid, cfg.articulation)
                };
                let sr = score_to_roll(&score, &opts).map_err(|e| e.to_string())?;
                let bars = sr.bar_starts();
                // A cache that cannot be written only costs a re-parse next time.
                let _ = write_cache(&cpath, &sr.roll, &bars);
                Ok((sr.roll, bars, false))
            })();
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
            Ok((roll, bars, hit)) => {
                cache_hits += usize::from(hit);
                let starts = window_starts(&roll, &bars, cfg);
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
                    roll,
                    starts,
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

/// A batch as the model sees it: images `[B, 1, 128, W]` in [-1, 1] and labels.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Vec<f32>,
    pub labels: Vec<u32>,
    pub step: u64,
}

/// Draws batches deterministically from `(seed, step)`: the same step always gets the same
/// windows, so a resumed run sees exactly what an uninterrupted one would.
pub struct Sampler {
    songs: Arc<Vec<Song>>,
    /// Per class: (song index, start) pairs.
    by_class: Vec<Vec<(u32, u32)>>,
    class_weights: Vec<f64>,
    cfg: DataConfig,
    seed: u64,
}

impl Sampler {
    /// `class_names[label]` names the classes for `cfg.class_weights`.
    pub fn new(
        songs: Arc<Vec<Song>>,
        num_classes: usize,
        class_names: &[String],
        cfg: &DataConfig,
        seed: u64,
    ) -> Self {
        let mut by_class = vec![Vec::new(); num_classes.max(1)];
        for (i, s) in songs.iter().enumerate() {
            let c = (s.label as usize).min(by_class.len() - 1);
            by_class[c].extend(s.starts.iter().map(|&st| (i as u32, st as u32)));
        }
        let class_weights = by_class
            .iter()
            .enumerate()
            .map(|(c, w)| {
                let extra = class_names
                    .get(c)
                    .and_then(|n| cfg.class_weights.get(n))
                    .copied()
                    .unwrap_or(1.0)
                    .max(0.0);
                if w.is_empty() {
                    0.0
                } else if cfg.balance_classes {
                    extra
                } else {
                    w.len() as f64 * extra
                }
            })
            .collect();
        Self {
            songs,
            by_class,
            class_weights,
            cfg: cfg.clone(),
            seed,
        }
    }

    pub fn windows(&self) -> usize {
        self.by_class.iter().map(|c| c.len()).sum()
    }

    /// The batch for `step`.
    pub fn batch(&self, step: u64, batch_size: usize) -> Batch {
        let mut rng = rand::rngs::StdRng::seed_from_u64(
            self.seed ^ 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(step.wrapping_add(1)),
        );
        let w = self.cfg.frames;
        let mut x = Vec::with_capacity(batch_size * PITCHES * w);
        let mut labels = Vec::with_capacity(batch_size);
        let total: f64 = self.class_weights.iter().sum();
        for _ in 0..batch_size {
            let mut r = rng.random::<f64>() * total;
            let mut c = 0;
            while c + 1 < self.class_weights.len() && r >= self.class_weights[c] {
                r -= self.class_weights[c];
                c += 1;
            }
            let pool = &self.by_class[c];
            let (si, start) = pool[rng.random_range(0..pool.len())];
            let song = &self.songs[si as usize];
            let crop = song.roll.crop(start as usize, w);
            let shift = if self.cfg.pitch_shift > 0 {
                rng.random_range(-self.cfg.pitch_shift..=self.cfg.pitch_shift)
            } else {
                0
            };
            // Shift only where every note stays in range; otherwise keep the original key.
            let crop = crop.transpose(shift).unwrap_or(crop);
            x.extend(crop.to_model_input());
            labels.push(song.label);
        }
        Batch { x, labels, step }
    }
}

/// Prefetch batches `start..` on a background thread (bounded queue of `depth`).
pub fn prefetch(
    sampler: Arc<Sampler>,
    start: u64,
    batch_size: usize,
    depth: usize,
) -> Receiver<Batch> {
    let (tx, rx) = sync_channel(depth.max(1));
    std::thread::Builder::new()
        .name("jit-prefetch".into())
        .spawn(move || {
            let mut step = start;
            while tx.send(sampler.batch(step, batch_size)).is_ok() {
                step += 1;
            }
        })
        .ok();
    rx
}
