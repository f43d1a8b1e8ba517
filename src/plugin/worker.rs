//! The plugin's own inference thread (not nice-plug's shared background executor, which
//! serialises all instances and is meant for short tasks).
//!
//! It loads the model once (the embedded default or the user's checkpoint) on the best device,
//! takes commands from the editor, polls flags from parameter callbacks and the audio thread,
//! drains the captured-input ring (the prompt and the chord follower), publishes progress
//! through atomics, asks the editor to repaint, and hands finished ideas to the audio thread
//! through the session's triple buffer.
//!
//! When it regenerates on its own:
//! * 'Regenerate every N loops' came due: a new idea;
//! * Live mode: every N bars (or every loop), and after any change of a generation parameter
//!   or of the chords: a variation of the current idea by 'Variation amount' (a new idea at 1,
//!   or when the current idea is not the loaded model's); the player swaps it in at the next
//!   bar line;
//! * the followed (or typed) chords changed while either of the above is on: the next idea
//!   follows them at once, so the next loop plays over the new chords.

use super::capture::{CaptureLog, Captured};
use super::chords::{beat_and_bar, estimate_progression, for_model, next_chords};
use super::follow::ChordFollower;
use super::generate::{capture_len, generate, layout, model_info, GenSettings, Sources};
use super::history::velocity_label;
use super::params::{ChordSource, JitParams, Role, Workflow};
use super::shared::{lock, Shared};
use crate::checkpoint::{self, ModelWeights, Weights};
use crate::default_model::Embedded;
use crate::generate::{best_device, Generator};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the worker looks at its flags when no command arrives.
const POLL: Duration = Duration::from_millis(20);

/// What the editor asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Generate,
    /// A variation of the current idea by 'Variation amount'.
    Vary,
    /// Estimate the chords of the captured input (when capturing) or the current idea into the
    /// typed progression.
    ChordsFromIdea,
    /// Forget the chords followed from the input.
    ClearFollowed,
    /// Load a checkpoint (ours or the original's .pt); on failure the old model stays.
    LoadCheckpoint(PathBuf),
    /// Go back to the embedded default model.
    UseDefaultModel,
    ClearCapture,
    Quit,
}

/// The embedded default model.
pub fn default_weights() -> Result<ModelWeights, String> {
    crate::default_model::load().map_err(|e| e.to_string())
}

/// Owner of the worker thread; dropping it stops and joins the thread.
pub struct Worker {
    shared: Arc<Shared>,
    params: Arc<JitParams>,
    tx: Mutex<Option<Sender<Command>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    capture: Mutex<Option<rtrb::Consumer<Captured>>>,
}

impl Worker {
    pub fn new(
        shared: Arc<Shared>,
        params: Arc<JitParams>,
        capture: rtrb::Consumer<Captured>,
    ) -> Arc<Self> {
        Arc::new(Self {
            shared,
            params,
            tx: Mutex::new(None),
            handle: Mutex::new(None),
            capture: Mutex::new(Some(capture)),
        })
    }

    /// Start the thread if it is not running (from `activate` or the editor; never the audio
    /// thread).
    pub fn ensure_started(&self) {
        let mut tx_slot = lock(&self.tx);
        if tx_slot.is_some() {
            return;
        }
        let Some(capture) = lock(&self.capture).take() else {
            return;
        };
        let (tx, rx) = channel();
        let shared = self.shared.clone();
        let params = self.params.clone();
        let spawned = std::thread::Builder::new()
            .name("jit-music-worker".into())
            .spawn(move || {
                let mut w = WorkerLoop {
                    shared,
                    params,
                    model: None,
                    conditioned: None,
                    capture,
                    log: CaptureLog::default(),
                    follower: ChordFollower::default(),
                };
                w.load_initial();
                loop {
                    match rx.recv_timeout(POLL) {
                        Ok(Command::Quit) | Err(RecvTimeoutError::Disconnected) => break,
                        Ok(cmd) => w.handle(cmd),
                        Err(RecvTimeoutError::Timeout) => {}
                    }
                    w.poll();
                }
            });
        match spawned {
            Ok(h) => {
                *lock(&self.handle) = Some(h);
                *tx_slot = Some(tx);
            }
            Err(e) => self
                .shared
                .set_message(format!("cannot start the worker thread: {e}")),
        }
    }

    pub fn send(&self, cmd: Command) {
        self.ensure_started();
        if let Some(tx) = lock(&self.tx).as_ref() {
            let _ = tx.send(cmd);
        }
    }

    /// Stop the running generation (the sampler checks between steps).
    pub fn cancel(&self) {
        self.shared.worker.cancel.store(true, Ordering::Release);
    }

    /// Stop and join the thread (cancelling any generation first).
    pub fn stop(&self) {
        self.cancel();
        if let Some(tx) = lock(&self.tx).take() {
            let _ = tx.send(Command::Quit);
        }
        if let Some(h) = lock(&self.handle).take() {
            let _ = h.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

struct WorkerLoop {
    shared: Arc<Shared>,
    params: Arc<JitParams>,
    model: Option<Generator>,
    /// The embedded conditioned model, loaded on first use: requests with notes to keep or
    /// chords go to it while the chosen model is the embedded default (`Embedded::for_request`).
    conditioned: Option<Generator>,
    capture: rtrb::Consumer<Captured>,
    log: CaptureLog,
    follower: ChordFollower,
}

/// What a generation starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// A new idea.
    New,
    /// A variation of the current idea.
    Vary,
    /// Live mode's choice: a variation unless the amount is 1 or there is nothing to vary.
    Live,
}

impl WorkerLoop {
    fn load_initial(&mut self) {
        let path = self.shared.state.with(|s| s.checkpoint.clone());
        self.shared
            .state
            .checkpoint_changed
            .store(false, Ordering::Release);
        self.load_for_session(path);
    }

    /// Load the model a (re)loaded project names; if it cannot be loaded, keep the project's
    /// choice (so that saving does not lose it) and use the default model meanwhile.
    fn load_for_session(&mut self, path: Option<String>) {
        match path {
            Some(p) => {
                if !self.load(Some(PathBuf::from(&p)), false) && self.model.is_none() {
                    let msg = self.shared.message();
                    self.load(None, false);
                    self.shared.set_message(msg);
                }
            }
            None => {
                self.load(None, false);
            }
        }
    }

    /// Load a model; on failure the previous one stays and the message says why. `remember`
    /// records the choice in the session (the user picked it, rather than the project).
    fn load(&mut self, path: Option<PathBuf>, remember: bool) -> bool {
        let w = &self.shared.worker;
        w.loading.store(true, Ordering::Release);
        self.shared.repaint.request_repaint();
        let weights = match &path {
            Some(p) => checkpoint::load(p, Weights::Ema1).map_err(|e| e.to_string()),
            None => default_weights(),
        };
        let result =
            weights.and_then(|wt| Generator::new(wt, best_device()).map_err(|e| e.to_string()));
        w.loading.store(false, Ordering::Release);
        match result {
            Ok(model) => {
                let info = model_info(&model);
                if let Ok(mut names) = self.shared.class_names.write() {
                    *names = info.classes.clone();
                }
                self.shared
                    .default_class
                    .store(model.meta().default_class() as i32, Ordering::Relaxed);
                *lock(&w.model) = Some(info);
                self.model = Some(model);
                if remember {
                    self.shared.state.with(|s| {
                        s.checkpoint = path.map(|p| p.display().to_string());
                    });
                }
                self.shared.set_message("");
                true
            }
            Err(e) => {
                let what = match &path {
                    Some(p) => p.display().to_string(),
                    None => "the default model".into(),
                };
                let keep = if self.model.is_some() {
                    "; the previous model stays"
                } else {
                    ""
                };
                self.shared
                    .set_message(format!("cannot load {what}: {e}{keep}"));
                false
            }
        }
    }

    fn handle(&mut self, cmd: Command) {
        match cmd {
            Command::Generate => self.generate(Start::New),
            Command::Vary => self.generate(Start::Vary),
            Command::ChordsFromIdea => self.chords_from_idea(),
            Command::ClearFollowed => {
                self.follower.clear();
                self.shared
                    .state
                    .with(|s| s.chords.followed = Default::default());
                self.chords_changed();
            }
            Command::LoadCheckpoint(p) => {
                self.load(Some(p), true);
            }
            Command::UseDefaultModel => {
                self.load(None, true);
            }
            Command::ClearCapture => self.log.clear(),
            Command::Quit => {}
        }
    }

    fn poll(&mut self) {
        while let Ok(c) = self.capture.pop() {
            if c.prompt {
                self.log.push(c);
            }
            self.follower.push(&c);
        }
        self.follow();
        if self
            .shared
            .state
            .checkpoint_changed
            .swap(false, Ordering::AcqRel)
        {
            let path = self.shared.state.with(|s| s.checkpoint.clone());
            self.load_for_session(path);
        }
        if self.shared.flags.rederive.swap(false, Ordering::AcqRel) {
            self.rederive();
        }
        let live = self.params.live.value().bars().is_some();
        let flags = &self.shared.flags;
        // Parameter changes matter to Live mode only (the next Generate reads them anyway).
        let changed = flags.changed.swap(false, Ordering::AcqRel) && live;
        let chords = flags.chords_changed.swap(false, Ordering::AcqRel)
            && (live || self.params.regen_every.value() > 0);
        let due = flags.regen_due.swap(false, Ordering::AcqRel);
        if changed || chords || due {
            self.generate(if live { Start::Live } else { Start::New });
        }
    }

    /// Estimate the bars the input changed; when that changes the chords the next idea would
    /// follow, say so.
    fn follow(&mut self) {
        if !self.follower.pending() {
            return;
        }
        let (_, num, den) = self.shared.host_timing();
        let (beat, bar) = beat_and_bar((num, den));
        let now = self.shared.audio.tick.load(Ordering::Relaxed);
        let source = self.params.chords.value();
        let bars = self.params.bars.value().count();
        let follower = &mut self.follower;
        let changed = self.shared.state.with(|s| {
            let before = next_chords(source, &s.chords, bars, (num, den));
            if !follower.update(now, bar, beat, &mut s.chords.followed) {
                return false;
            }
            before != next_chords(source, &s.chords, bars, (num, den))
        });
        if changed {
            self.shared.repaint.request_repaint();
            if source == ChordSource::Follow {
                self.chords_changed();
            }
        }
    }

    fn chords_changed(&self) {
        self.shared
            .flags
            .chords_changed
            .store(true, Ordering::Release);
    }

    /// The typed progression from the captured input (when capturing) or the current idea.
    fn chords_from_idea(&mut self) {
        let (_, num, den) = self.shared.host_timing();
        let (_, bar) = beat_and_bar((num, den));
        let current = self.shared.state.with(|s| s.current_idea().cloned());
        let captured = if self.params.capture.value() {
            let bars = self.params.bars.value().count();
            self.log.prompt(bars * bar, bar)
        } else {
            Vec::new()
        };
        let (notes, bars, what) = match &current {
            _ if !captured.is_empty() => (captured, self.params.bars.value().count(), "input"),
            Some(idea) => (idea.pattern_notes(), idea.bars, "idea"),
            None => {
                self.shared
                    .set_message("no idea or captured input to take chords from");
                return;
            }
        };
        let transpose = self.params.transpose.value();
        match estimate_progression(&notes, bars, (num, den), transpose) {
            Some(text) => {
                self.shared.state.with(|s| s.chords.text = text.clone());
                self.shared
                    .set_message(format!("chords of the {what}: {text}"));
                self.chords_changed();
            }
            None => self.shared.set_message(format!("the {what} has no notes")),
        }
    }

    /// Apply a changed threshold or velocity rule to the playing idea.
    fn rederive(&mut self) {
        let threshold = self.params.threshold.value();
        let velocity = self.params.velocity_rule();
        let label = velocity_label(velocity);
        let changed = self.shared.state.update_current(|idea| {
            let same =
                (idea.info.threshold - threshold).abs() < 1e-6 && idea.info.velocity == label;
            !same && idea.rederive(threshold, velocity)
        });
        if changed {
            self.shared.repaint.request_repaint();
        }
    }

    fn settings(&self) -> GenSettings {
        let p = &self.params;
        let (bpm, num, den) = self.shared.host_timing();
        let seed = if p.new_seed.value() {
            u64::from(rand::random::<u32>() % 100_000)
        } else {
            p.seed.value().max(0) as u64
        };
        let bars = p.bars.value().count();
        let chords = self
            .shared
            .state
            .with(|s| next_chords(p.chords.value(), &s.chords, bars, (num, den)));
        let chords = match chords {
            Ok(c) => c.map(|c| for_model(&c, p.transpose.value())),
            Err(e) => {
                self.shared
                    .set_message(format!("{e}: generating without chords"));
                None
            }
        };
        let steps = p.steps.value();
        let cfg = p.cfg.value();
        GenSettings {
            seed,
            steps: (steps > 0).then_some(steps as usize),
            method: p.method.value().method(),
            guidance: (cfg > 0.0).then_some(f64::from(cfg)),
            style: p.style.value(),
            bars,
            sig: (num, den),
            bpm,
            workflow: p.workflow.value(),
            fill: (
                p.fill_from.value().max(1) as u32,
                p.fill_to.value().max(1) as u32,
            ),
            band: (
                p.band_lo.value().clamp(0, 127) as u8,
                p.band_hi.value().clamp(0, 127) as u8,
            ),
            role: p.role.value(),
            split: p.split.value().clamp(1, 127) as u8,
            chords,
            vary: None,
            threshold: p.threshold.value(),
            velocity: p.velocity_rule(),
        }
    }

    /// Whether `s` goes to the embedded conditioned model, loading it on first use (if it cannot
    /// be loaded, the chosen model serves and the message says why).
    fn route_to_conditioned(&mut self, s: &GenSettings) -> bool {
        let chosen_is_default = self
            .model
            .as_ref()
            .is_some_and(|m| Embedded::from_name(&m.weights.source) == Some(Embedded::Default));
        let has_prompt = s.workflow != Workflow::New || s.role != Role::Full;
        let wanted = Embedded::for_request(has_prompt, s.chords.is_some());
        if !chosen_is_default || wanted != Embedded::Conditioned {
            return false;
        }
        if self.conditioned.is_none() {
            let loaded = Embedded::Conditioned
                .load()
                .map_err(|e| e.to_string())
                .and_then(|wt| Generator::new(wt, best_device()).map_err(|e| e.to_string()));
            match loaded {
                Ok(g) => self.conditioned = Some(g),
                Err(e) => {
                    self.shared
                        .set_message(format!("cannot load the conditioned model: {e}"));
                    return false;
                }
            }
        }
        true
    }

    fn generate(&mut self, start: Start) {
        let mut s = self.settings();
        let routed = self.route_to_conditioned(&s);
        let model = match routed {
            true => self.conditioned.as_ref(),
            false => self.model.as_ref(),
        };
        let Some(model) = model else {
            self.shared
                .set_message("no model loaded: load a checkpoint first");
            return;
        };
        let w = &self.shared.worker;
        let lay = layout(model.meta(), &s);
        let captured = self.log.prompt(capture_len(&s, &lay), lay.bar_ticks);
        let epoch = self.shared.state.epoch();
        let current = self.shared.state.with(|st| st.current_idea().cloned());
        let amount = f64::from(self.params.vary_amount.value()).clamp(0.0, 1.0);
        let varies = current
            .as_ref()
            .and_then(|i| i.roll.as_ref())
            .is_some_and(|r| r.raw_for(&model.meta().roll).is_some());
        s.vary = match start {
            Start::New => None,
            Start::Vary => Some(amount),
            Start::Live => (varies && amount < 1.0).then_some(amount),
        };
        let sources = Sources {
            current: current.as_ref(),
            captured: &captured,
        };
        w.cancel.store(false, Ordering::Release);
        w.busy.store(true, Ordering::Release);
        w.progress.store(0.0, Ordering::Relaxed);
        self.shared.repaint.request_repaint();
        let started = Instant::now();
        let shared = self.shared.clone();
        let mut progress = move |done: usize, total: usize| {
            shared
                .worker
                .progress
                .store(done as f32 / total.max(1) as f32, Ordering::Relaxed);
            shared.repaint.request_repaint();
        };
        // A bug deep in the model code must not take the worker (and the editor's messages) down.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            generate(model, &s, &sources, Some(&w.cancel), &mut progress)
        }))
        .unwrap_or_else(|_| Err("the model panicked".into()));
        let millis = started.elapsed().as_millis() as u64;
        w.busy.store(false, Ordering::Release);
        w.progress.store(0.0, Ordering::Relaxed);
        match result {
            Ok(Some(mut idea)) => {
                idea.info.style = self.shared.style_name(s.style);
                idea.info.millis = millis;
                let n = idea.notes.len();
                let bars = idea.bars;
                w.last_millis.store(millis, Ordering::Relaxed);
                let mut what = match s.vary {
                    Some(a) => format!("variation {a:.2}, "),
                    None => String::new(),
                };
                if routed {
                    what.insert_str(0, "conditioned model, ");
                }
                match self.shared.state.push_idea(idea, epoch) {
                    Some(_) => self.shared.set_message(format!(
                        "{what}{bars} bars, {n} notes, seed {} in {:.2} s",
                        s.seed,
                        millis as f64 / 1000.0
                    )),
                    None => self
                        .shared
                        .set_message("the project was reloaded meanwhile: idea dropped"),
                }
            }
            Ok(None) => self.shared.set_message("cancelled"),
            Err(e) => self.shared.set_message(format!("generation failed: {e}")),
        }
        self.shared.repaint.request_repaint();
    }
}
