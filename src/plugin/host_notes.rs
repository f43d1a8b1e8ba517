//! What the host actually holds of our notes. The player decides what should sound; a host may
//! still refuse an event (a full output queue, or a dialect it does not read). A refused note-on
//! never sounded, so its note-off is not sent; a refused note-off is sent again at the start of
//! the next block until the host takes it. No allocation after [`HostNotes::new`].

use super::process::Out;

const SLOTS: usize = 16 * 128;

/// The (channel, key) slots the host holds on, and the note-offs we still owe it.
#[derive(Debug, Clone)]
pub struct HostNotes {
    sounding: Box<[bool]>,
    retry: Box<[bool]>,
    retry_list: Box<[u16]>,
    n_retry: usize,
}

impl Default for HostNotes {
    fn default() -> Self {
        Self::new()
    }
}

fn slot(channel: u8, key: u8) -> usize {
    usize::from(channel & 15) * 128 + usize::from(key & 127)
}

fn off_at(slot: usize, sample: u32) -> Out {
    Out::Off {
        sample,
        channel: (slot / 128) as u8,
        key: (slot % 128) as u8,
    }
}

impl HostNotes {
    /// Allocates everything it will use.
    pub fn new() -> Self {
        Self {
            sounding: vec![false; SLOTS].into_boxed_slice(),
            retry: vec![false; SLOTS].into_boxed_slice(),
            retry_list: vec![0; SLOTS].into_boxed_slice(),
            n_retry: 0,
        }
    }

    /// Note-offs still to be sent again.
    pub fn pending_offs(&self) -> usize {
        self.n_retry
    }

    /// Send the note-offs refused earlier, at `sample` (the start of a block). `send` returns
    /// whether the host took the event.
    pub fn retry(&mut self, sample: u32, send: &mut impl FnMut(Out) -> bool) {
        let mut kept = 0;
        for i in 0..self.n_retry {
            let s = usize::from(self.retry_list[i]);
            if send(off_at(s, sample)) {
                self.retry[s] = false;
                self.sounding[s] = false;
            } else {
                self.retry_list[kept] = self.retry_list[i];
                kept += 1;
            }
        }
        self.n_retry = kept;
    }

    /// Send one of the player's events through `send`, keeping the host's notes balanced.
    pub fn send(&mut self, o: Out, send: &mut impl FnMut(Out) -> bool) {
        match o {
            Out::On {
                sample,
                channel,
                key,
                ..
            } => {
                let s = slot(channel, key);
                if self.retry[s] {
                    // Its last note-off is still owed: it goes first, or this note cannot start.
                    if !send(off_at(s, sample)) {
                        return;
                    }
                    self.unqueue(s);
                    self.sounding[s] = false;
                }
                if send(o) {
                    self.sounding[s] = true;
                }
            }
            Out::Off { channel, key, .. } => {
                let s = slot(channel, key);
                if !self.sounding[s] || self.retry[s] {
                    // Never sounded in the host, or its note-off is already queued.
                    return;
                }
                if send(o) {
                    self.sounding[s] = false;
                } else {
                    self.retry[s] = true;
                    self.retry_list[self.n_retry] = s as u16;
                    self.n_retry += 1;
                }
            }
        }
    }

    fn unqueue(&mut self, s: usize) {
        self.retry[s] = false;
        if let Some(i) = self.retry_list[..self.n_retry]
            .iter()
            .position(|&x| usize::from(x) == s)
        {
            self.retry_list.copy_within(i + 1..self.n_retry, i);
            self.n_retry -= 1;
        }
    }
}
