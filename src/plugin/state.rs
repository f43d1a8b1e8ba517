//! The persisted session and its hand-over to the audio thread.
//!
//! Loading state (the host reopening a project) goes through [`SessionCell`]'s
//! `PersistentField::set`, which stores the session and at once publishes the playing idea to
//! the audio thread through the triple buffer: the exact bars come back with no regeneration and
//! no wait for the worker. The triple buffer's writer sits behind a mutex that only non-real-time
//! threads (state load, editor, worker) take; the audio thread owns the lock-free reader.

use super::history::{Idea, Session};
use super::pattern::Pattern;
use super::sync::lock;
use nice_plug::params::persist::PersistentField;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use triple_buffer::{Input, Output};

/// The session plus the writer side of the pattern hand-over.
pub struct SessionShared {
    session: Mutex<Session>,
    /// Bumped whenever a state load replaces the session, so that a generation started before
    /// the load does not overwrite what was loaded.
    epoch: AtomicU64,
    /// Set when a load changed the checkpoint path (the worker reloads the model).
    pub checkpoint_changed: AtomicBool,
    publisher: Mutex<Input<Pattern>>,
}

impl SessionShared {
    /// The shared session and the audio thread's reader of published patterns.
    pub fn new() -> (Arc<Self>, Output<Pattern>) {
        let (input, output) = triple_buffer::triple_buffer(&Pattern::new());
        (
            Arc::new(Self {
                session: Mutex::new(Session::default()),
                epoch: AtomicU64::new(0),
                checkpoint_changed: AtomicBool::new(false),
                publisher: Mutex::new(input),
            }),
            output,
        )
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Run `f` on the session (short critical sections only).
    pub fn with<R>(&self, f: impl FnOnce(&mut Session) -> R) -> R {
        f(&mut lock(&self.session))
    }

    pub fn snapshot(&self) -> Session {
        lock(&self.session).clone()
    }

    /// Replace the session (project load) and hand its playing idea to the audio thread.
    pub fn load(&self, mut s: Session) {
        s.sanitize();
        let changed = {
            let mut cur = lock(&self.session);
            let changed = cur.checkpoint != s.checkpoint;
            *cur = s;
            changed
        };
        self.epoch.fetch_add(1, Ordering::AcqRel);
        if changed {
            self.checkpoint_changed.store(true, Ordering::Release);
        }
        self.publish_current();
    }

    /// Publish the current idea (or silence when there is none).
    pub fn publish_current(&self) {
        let idea = lock(&self.session).current_idea().cloned();
        self.publish(idea.as_ref());
    }

    fn publish(&self, idea: Option<&Idea>) {
        let mut input = lock(&self.publisher);
        let slot = input.input_buffer_mut();
        match idea {
            Some(i) => slot.set(i.id, i.bars, i.bar_ticks, &i.pattern_notes()),
            None => {
                slot.clear();
            }
        }
        input.publish();
    }

    /// Add a generated idea unless a state load happened since `epoch`; it becomes current and
    /// plays from the next pattern boundary. Returns its id.
    pub fn push_idea(&self, idea: Idea, epoch: u64) -> Option<u64> {
        let id = {
            let mut s = lock(&self.session);
            if self.epoch() != epoch {
                return None;
            }
            s.push(idea)
        };
        self.publish_current();
        Some(id)
    }

    /// Previous (-1) or next (+1) idea; `false` at either end.
    pub fn step(&self, delta: isize) -> bool {
        let moved = lock(&self.session).step(delta);
        if moved {
            self.publish_current();
        }
        moved
    }

    /// Replace the current idea's notes (after a new threshold) and publish them.
    pub fn update_current(&self, f: impl FnOnce(&mut Idea) -> bool) -> bool {
        let changed = match lock(&self.session).current_idea_mut() {
            Some(idea) => f(idea),
            None => false,
        };
        if changed {
            self.publish_current();
        }
        changed
    }
}

/// The `#[persist]` field: what nice-plug saves and restores with the project.
pub struct SessionCell {
    shared: Arc<SessionShared>,
}

impl SessionCell {
    pub fn new(shared: Arc<SessionShared>) -> Self {
        Self { shared }
    }

    pub fn shared(&self) -> &Arc<SessionShared> {
        &self.shared
    }
}

impl<'a> PersistentField<'a, Session> for SessionCell {
    fn set(&self, new_value: Session) {
        self.shared.load(new_value);
    }

    fn map<F, R>(&self, f: F) -> R
    where
        F: Fn(&Session) -> R,
    {
        f(&lock(&self.shared.session))
    }
}
