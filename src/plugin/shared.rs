//! What the threads share. The audio thread touches only the atomics here; the session,
//! model info and messages sit behind mutexes that only the main, editor and worker threads take.

use super::state::SessionShared;
pub use super::sync::lock;
use atomic_float::{AtomicF32, AtomicF64};
use nice_plug_egui::RepaintNotifier;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Flags raised by parameter callbacks and the audio thread, consumed by the worker.
#[derive(Debug, Default)]
pub struct Flags {
    /// Threshold or velocity changed: derive the current idea's notes again.
    pub rederive: AtomicBool,
    /// 'Regenerate every N loops' or Live mode's every N bars came due.
    pub regen_due: AtomicBool,
    /// A generation parameter changed (Live mode regenerates).
    pub changed: AtomicBool,
    /// The chords the next idea follows changed (a progression set in the editor).
    pub chords_changed: AtomicBool,
}

/// The audio thread's view for the editor and the worker (atomics only).
#[derive(Debug)]
pub struct AudioStatus {
    pub running: AtomicBool,
    /// Playhead in the playing pattern, 0..1.
    pub phase: AtomicF32,
    pub current_id: AtomicU64,
    /// Id of the idea waiting for the next pattern boundary (0 = none).
    pub pending_id: AtomicU64,
    pub tempo: AtomicF64,
    pub sig_num: AtomicU32,
    pub sig_den: AtomicU32,
    pub sample_rate: AtomicF32,
    /// The timeline tick (unwrapped, as captured input carries) at the end of the last block:
    /// how far the chord follower may assume held notes sound.
    pub tick: AtomicF64,
}

impl Default for AudioStatus {
    fn default() -> Self {
        Self {
            running: AtomicBool::new(false),
            phase: AtomicF32::new(0.0),
            current_id: AtomicU64::new(0),
            pending_id: AtomicU64::new(0),
            tempo: AtomicF64::new(120.0),
            sig_num: AtomicU32::new(4),
            sig_den: AtomicU32::new(4),
            sample_rate: AtomicF32::new(48_000.0),
            tick: AtomicF64::new(0.0),
        }
    }
}

/// The loaded model, as the editor shows it.
#[derive(Debug, Clone, Default)]
pub struct ModelInfo {
    pub name: String,
    pub source: String,
    pub preset: String,
    pub params: usize,
    pub device: String,
    pub classes: Vec<String>,
    pub grid: String,
    pub frames: usize,
    /// Whether it takes chords (`roll.conditions.chords`).
    pub chords: bool,
    /// Its recommended sampler, e.g. "heun 32, CFG 3.0".
    pub sampler: String,
}

/// The worker's progress and messages.
#[derive(Debug, Default)]
pub struct WorkerStatus {
    /// 0..1 while generating.
    pub progress: AtomicF32,
    pub busy: AtomicBool,
    pub loading: AtomicBool,
    pub cancel: AtomicBool,
    /// Last generation time in milliseconds.
    pub last_millis: AtomicU64,
    pub model: Mutex<Option<ModelInfo>>,
    /// The latest error or notice ("cannot load X: ...").
    pub message: Mutex<String>,
}

/// Everything shared between the plugin, the audio thread, the worker and the editor.
pub struct Shared {
    pub state: Arc<SessionShared>,
    pub flags: Flags,
    pub audio: AudioStatus,
    pub worker: WorkerStatus,
    /// Class names of the loaded model (for the style parameter's display).
    pub class_names: RwLock<Vec<String>>,
    /// The loaded model's default class (`info.default_class`), or -1 for none: what style slot
    /// 0 plays, so a fresh instance makes the model's main style rather than a blend.
    pub default_class: std::sync::atomic::AtomicI32,
    pub repaint: RepaintNotifier,
}

impl Shared {
    pub fn new(state: Arc<SessionShared>) -> Arc<Self> {
        Arc::new(Self {
            state,
            flags: Flags::default(),
            audio: AudioStatus::default(),
            worker: WorkerStatus::default(),
            class_names: RwLock::new(Vec::new()),
            default_class: std::sync::atomic::AtomicI32::new(-1),
            repaint: RepaintNotifier::new(),
        })
    }

    /// "Default (name)" for slot 0 (the model's default class; "Default" when it has none), else
    /// the class name (never blocks: falls back to the number).
    pub fn style_name(&self, slot: i32) -> String {
        if slot <= 0 {
            let d = self
                .default_class
                .load(std::sync::atomic::Ordering::Relaxed);
            return match self.class_names.try_read() {
                Ok(names) if d >= 0 => match names.get(d as usize) {
                    Some(n) => format!("Default ({n})"),
                    None => "Default".into(),
                },
                _ => "Default".into(),
            };
        }
        let idx = (slot - 1) as usize;
        match self.class_names.try_read() {
            Ok(names) => match names.get(idx) {
                Some(n) => n.clone(),
                None => format!("class {idx}"),
            },
            Err(_) => format!("class {idx}"),
        }
    }

    /// Inverse of [`Shared::style_name`]: "Default (...)", a class name, "class N" or a slot
    /// number ("Any", the old name of slot 0, still parses).
    pub fn style_slot(&self, s: &str) -> Option<i32> {
        let s = s.trim();
        let lower = s.to_ascii_lowercase();
        if lower == "any" || lower.starts_with("default") {
            return Some(0);
        }
        if let Some(n) = s.strip_prefix("class ") {
            return n.trim().parse::<i32>().ok().map(|i| i + 1);
        }
        if let Ok(names) = self.class_names.try_read() {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
                return Some(i as i32 + 1);
            }
        }
        s.parse().ok()
    }

    pub fn set_message(&self, msg: impl Into<String>) {
        *lock(&self.worker.message) = msg.into();
        self.repaint.request_repaint();
    }

    pub fn message(&self) -> String {
        lock(&self.worker.message).clone()
    }

    /// The host's tempo and time signature as the audio thread last saw them.
    pub fn host_timing(&self) -> (f64, u32, u32) {
        (
            self.audio.tempo.load(Ordering::Relaxed),
            self.audio.sig_num.load(Ordering::Relaxed),
            self.audio.sig_den.load(Ordering::Relaxed),
        )
    }
}
