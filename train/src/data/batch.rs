//! Batches as the model sees them, drawn deterministically from `(seed, step)`, and the
//! prefetch thread that draws them ahead of the training step.

use super::draw::{draw, Drawn};
use super::{DataConfig, Song};
use jit_music::condition::encode_conditions;
use jit_music::roll::{Channels, GridNote, RollNote, RollSpec};
use rand::{Rng, SeedableRng};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;

/// A batch as the model sees it: rolls `[B, C, H, W]` in [-1, 1], their conditioning channels
/// `[B, Cc, H, W]` (for a conditioned model) and labels.
#[derive(Debug, Clone)]
pub struct Batch {
    pub x: Vec<f32>,
    pub cond: Option<Vec<f32>>,
    pub labels: Vec<u32>,
    pub step: u64,
    /// What each sample's conditioning channels encode (conditioned models only): a teacher
    /// generating distillation pairs is given the same.
    pub drawn: Vec<Drawn>,
    /// The noise paired with `x` `[B, C, H, W]` (distillation: the noise a teacher's sample
    /// came from); `None` draws fresh noise.
    pub noise: Option<Vec<f32>>,
}

/// Draws batches deterministically from `(seed, step)`: the same step always gets the same
/// windows, so a resumed run sees exactly what an uninterrupted one would.
pub struct Sampler {
    songs: Arc<Vec<Song>>,
    /// Per class: (song index, start) pairs.
    by_class: Vec<Vec<(u32, u32)>>,
    class_weights: Vec<f64>,
    cfg: DataConfig,
    spec: RollSpec,
    null_label: u32,
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
            spec: cfg.roll_spec(),
            cfg: cfg.clone(),
            null_label: num_classes as u32,
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
        let spec = &self.spec;
        let w = self.cfg.frames;
        let conditioned = spec.cond_channels() > 0;
        let mut x = Vec::with_capacity(batch_size * spec.numel());
        let mut cond = conditioned.then(|| Vec::with_capacity(batch_size * spec.numel()));
        let mut labels = Vec::with_capacity(batch_size);
        let mut drawn = Vec::new();
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
            let start = start as usize;
            let shift = if self.cfg.pitch_shift > 0 {
                rng.random_range(-self.cfg.pitch_shift..=self.cfg.pitch_shift)
            } else {
                0
            };
            let mut label = song.label;
            if spec.channels == Channels::Intensity && !conditioned {
                // The painted roll itself (exactly what the intensity models were trained on).
                let crop = song.roll.crop(start, w);
                // Shift only where every note stays in range; otherwise keep the original key.
                let crop = crop.transpose(shift).unwrap_or(crop);
                x.extend(crop.to_model_input());
            } else {
                let window = song.window(start, w);
                let shift = if fits(&window, shift) { shift } else { 0 };
                let window: Vec<GridNote> = window
                    .into_iter()
                    .map(|n| GridNote {
                        note: RollNote {
                            pitch: (i32::from(n.note.pitch) + shift) as u8,
                            ..n.note
                        },
                        part: n.part,
                    })
                    .collect();
                let plain: Vec<RollNote> = window.iter().map(|n| n.note).collect();
                x.extend(spec.encode(&plain));
                if let Some(cond) = cond.as_mut() {
                    let chords = song
                        .chords
                        .as_ref()
                        .map(|t| t.crop(start, w).transpose(shift));
                    let d = draw(&mut rng, spec, song, &window, chords);
                    if d.drop_label {
                        label = self.null_label;
                    }
                    cond.extend(encode_conditions(spec, d.known.as_ref(), d.chords.as_ref()));
                    drawn.push(d);
                }
            }
            labels.push(label);
        }
        Batch {
            x,
            cond,
            labels,
            step,
            drawn,
            noise: None,
        }
    }
}

/// Whether every note stays a MIDI pitch after `shift` semitones.
fn fits(notes: &[GridNote], shift: i32) -> bool {
    notes
        .iter()
        .all(|n| (0..=127).contains(&(i32::from(n.note.pitch) + shift)))
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
