//! Standard MIDI File reading into a [`Score`], with pretty_midi's semantics.
//!
//! The parse mirrors `pretty_midi.PrettyMIDI(file)` (0.2.x) so that the seconds grid reproduces
//! `get_piano_roll` bit for bit: the tempo map comes from track 0 as pretty_midi reads it, note-ons
//! are paired with note-offs per (channel, pitch) with its same-tick rule, note-on velocity 0 is a
//! note-off, instruments are keyed by (program, channel, track), and control changes that come
//! before an instrument's first note are shared the way pretty_midi's "stragglers" are.
//!
//! Events are consumed as they are decoded (no per-event allocation, no hashing): the per-track
//! tables are flat arrays indexed by channel, pitch and program.

use super::{
    ControlChange, Instrument, MidiError, Note, PitchBend, Score, TempoMap, TimeSignature,
};
use midly::{MetaMessage, MidiMessage, Timing, TrackEventKind};

/// Largest tick a file may use (2^32). pretty_midi refuses 1e7 only because it allocates an
/// array per tick; nothing here is sized by ticks (roll length is bounded by
/// [`crate::roll::MAX_FRAMES`] before anything is allocated), so long real files (music21's
/// O'Neill tunes at 10080 ticks per beat reach 3e7) are read. Beyond 2^32 a file is corrupt.
pub const MAX_TICK: u64 = 1 << 32;

/// Check the chunk structure before midly parses leniently, so that a truncated file is an error
/// rather than silently half-read. Returns the number of tracks the header declares.
fn check_chunks(raw: &[u8]) -> Result<u16, MidiError> {
    if raw.is_empty() {
        return Err(MidiError::Empty);
    }
    if raw.len() < 4 && b"MThd".starts_with(raw) {
        return Err(MidiError::Truncated(format!(
            "only {} bytes of the MThd header",
            raw.len()
        )));
    }
    if raw.len() < 4 || &raw[..4] != b"MThd" {
        let what = sniff(raw);
        return Err(MidiError::NotMidi(what));
    }
    if raw.len() < 14 {
        return Err(MidiError::Truncated(format!(
            "header needs 14 bytes, file has {}",
            raw.len()
        )));
    }
    let header_len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
    if header_len < 6 {
        return Err(MidiError::Malformed(format!(
            "header chunk length {header_len} < 6"
        )));
    }
    if header_len > raw.len() - 8 {
        return Err(MidiError::TooLong(format!(
            "header chunk declares {header_len} bytes but the file has {}",
            raw.len()
        )));
    }
    let division = u16::from_be_bytes([raw[12], raw[13]]);
    if division & 0x8000 != 0 {
        // Checked here: midly negates the frame-rate byte, which overflows for 0x80.
        let fps = -i16::from(raw[12] as i8);
        return Err(MidiError::Unsupported(format!(
            "SMPTE time division ({fps} fps, {} subframes) has no beats; re-export with ticks per quarter note",
            raw[13]
        )));
    }
    let declared_tracks = u16::from_be_bytes([raw[10], raw[11]]);
    if declared_tracks == 0 {
        return Err(MidiError::NoTracks);
    }
    let mut pos = 8 + header_len;
    let mut tracks = 0usize;
    while pos < raw.len() && tracks < usize::from(declared_tracks) {
        if raw.len() - pos < 8 {
            // Trailing garbage shorter than a chunk header: tolerated, as mido does.
            break;
        }
        let id = &raw[pos..pos + 4];
        let len =
            u32::from_be_bytes([raw[pos + 4], raw[pos + 5], raw[pos + 6], raw[pos + 7]]) as usize;
        let body = pos + 8;
        if id == b"MTrk" {
            if len > raw.len() - body {
                let remain = raw.len() - body;
                // A length far beyond the file is a corrupt field, not a cut-off download.
                return Err(if len > 4 * raw.len().max(1 << 16) {
                    MidiError::TooLong(format!(
                        "track {tracks} declares {len} bytes but only {remain} remain"
                    ))
                } else {
                    MidiError::Truncated(format!(
                        "track {tracks} declares {len} bytes but only {remain} remain"
                    ))
                });
            }
            tracks += 1;
        } else if len > raw.len() - body {
            break; // an unknown trailing chunk that is cut short carries nothing we read
        }
        pos = body + len;
    }
    if tracks < usize::from(declared_tracks) {
        // mido (and so pretty_midi) fails on such a file too: it reads the declared count.
        return Err(MidiError::Truncated(format!(
            "the header declares {declared_tracks} track(s) but the file ends after {tracks}"
        )));
    }
    Ok(declared_tracks)
}

/// A short guess of what a non-MIDI file is, for the error message.
fn sniff(raw: &[u8]) -> String {
    if raw.starts_with(b"\x89PNG") {
        "a PNG image".into()
    } else if raw.starts_with(b"RIFF") {
        "a RIFF file (RMID is not supported)".into()
    } else if raw.starts_with(b"PK") {
        "a zip archive".into()
    } else if raw.iter().take(256).all(|b| b.is_ascii()) {
        "text".into()
    } else {
        format!(
            "unknown data starting with {:02x?}",
            &raw[..raw.len().min(4)]
        )
    }
}

/// Parse a Standard MIDI File. Never panics; any defect becomes a [`MidiError`].
pub fn parse(raw: &[u8]) -> Result<Score, MidiError> {
    let declared_tracks = check_chunks(raw)?;
    let (header, track_iter) =
        midly::parse(raw).map_err(|e| MidiError::Malformed(e.to_string()))?;
    let ticks_per_beat = match header.timing {
        Timing::Metrical(t) => t.as_int(),
        Timing::Timecode(fps, sub) => {
            return Err(MidiError::Unsupported(format!(
                "SMPTE time division ({} fps, {sub} subframes) has no beats; re-export with ticks per quarter note",
                fps.as_int()
            )))
        }
    };
    if ticks_per_beat == 0 {
        return Err(MidiError::Malformed("0 ticks per quarter note".into()));
    }
    if header.format == midly::Format::Sequential {
        return Err(MidiError::Unsupported(
            "format 2 (independent sequences) cannot be read as one piece".into(),
        ));
    }

    let mut tempo_events: Vec<(u64, u32)> = Vec::new(); // track 0 only, as pretty_midi
    let mut time_sigs: Vec<TimeSignature> = Vec::new();
    let mut max_tick = 0u64;
    let mut loader = Loader::new();
    let mut n_tracks = 0usize;
    // mido reads exactly the declared number of tracks; so does pretty_midi.
    for (ti, track) in track_iter.take(usize::from(declared_tracks)).enumerate() {
        let mut events = track.map_err(|e| MidiError::Malformed(format!("track {ti}: {e}")))?;
        loader.start_track(ti);
        n_tracks += 1;
        let mut tick = 0u64;
        loop {
            if events.unread().is_empty() {
                break;
            }
            let ev = match events.next() {
                Some(Ok(ev)) => ev,
                _ => {
                    return Err(MidiError::Malformed(format!(
                        "track {ti}: malformed event after tick {tick}"
                    )))
                }
            };
            tick += u64::from(ev.delta.as_int());
            if tick >= MAX_TICK {
                return Err(MidiError::TooLong(format!(
                    "track {ti} reaches tick {tick} (limit {MAX_TICK}); the file is corrupt"
                )));
            }
            max_tick = max_tick.max(tick);
            match ev.kind {
                TrackEventKind::Midi { channel, message } => {
                    let ch = channel.as_int();
                    match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => {
                            loader.note_on(tick, ch, key.as_int(), vel.as_int())
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            loader.note_off(tick, ch, key.as_int())
                        }
                        MidiMessage::ProgramChange { program } => {
                            loader.program[usize::from(ch)] = program.as_int()
                        }
                        MidiMessage::PitchBend { bend } => loader.bend(tick, ch, bend.as_int()),
                        MidiMessage::Controller { controller, value } => {
                            loader.cc(tick, ch, controller.as_int(), value.as_int())
                        }
                        _ => {}
                    }
                }
                TrackEventKind::Meta(MetaMessage::Tempo(t)) if ti == 0 => {
                    tempo_events.push((tick, t.as_int()));
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(n, d, _, _)) if ti == 0 => {
                    time_sigs.push(TimeSignature {
                        tick,
                        numerator: n,
                        denominator: 1u32.checked_shl(u32::from(d)).unwrap_or(0),
                    });
                }
                TrackEventKind::Meta(MetaMessage::TrackName(name)) => {
                    loader.track_name = Some(String::from_utf8_lossy(name).into());
                }
                _ => {}
            }
        }
    }
    if n_tracks == 0 {
        return Err(MidiError::NoTracks);
    }
    Ok(Score {
        ticks_per_beat,
        tempo: TempoMap::from_events(ticks_per_beat, &tempo_events),
        time_signatures: time_sigs,
        instruments: loader.instruments,
        cc_lists: loader.cc_lists,
        bend_lists: loader.bend_lists,
        max_tick,
    })
}

const NONE: u32 = u32::MAX;

/// pretty_midi's `_load_instruments`, fed one event at a time, including its straggler and
/// same-tick rules. The maps pretty_midi keys by track are per-track tables here, reset at
/// each track (no key ever refers to an earlier track).
struct Loader {
    instruments: Vec<Instrument>,
    cc_lists: Vec<Vec<ControlChange>>,
    bend_lists: Vec<Vec<PitchBend>>,
    track: usize,
    /// The track's latest name (pretty_midi's `track_name_map[track_idx]`).
    track_name: Option<String>,
    program: [u8; 16],
    /// `program * 16 + channel` -> instrument index in this track.
    instrument_map: Vec<u32>,
    /// channel -> straggler (cc list, bend list) in this track.
    stragglers: [(u32, u32); 16],
    /// `channel * 128 + pitch` -> open note-ons `(tick, velocity)`, oldest first.
    open: Vec<Vec<(u64, u8)>>,
    /// Slots of `open` that may be non-empty (cleared at the next track).
    touched: Vec<u16>,
}

impl Loader {
    fn new() -> Self {
        Self {
            instruments: Vec::new(),
            cc_lists: Vec::new(),
            bend_lists: Vec::new(),
            track: 0,
            track_name: None,
            program: [0; 16],
            instrument_map: vec![NONE; 128 * 16],
            stragglers: [(NONE, NONE); 16],
            open: vec![Vec::new(); 16 * 128],
            touched: Vec::new(),
        }
    }

    fn start_track(&mut self, track: usize) {
        self.track = track;
        self.track_name = None;
        self.program = [0; 16];
        self.instrument_map.fill(NONE);
        self.stragglers = [(NONE, NONE); 16];
        for &slot in &self.touched {
            self.open[usize::from(slot)].clear();
        }
        self.touched.clear();
    }

    fn note_on(&mut self, tick: u64, ch: u8, key: u8, vel: u8) {
        let slot = usize::from(ch) * 128 + usize::from(key);
        if self.open[slot].is_empty() {
            self.touched.push(slot as u16);
        }
        self.open[slot].push((tick, vel));
    }

    /// pretty_midi closes every open note of the key that did not start at this very tick; if
    /// any closed, the same-tick ones stay open, else the key is forgotten altogether.
    fn note_off(&mut self, end_tick: u64, ch: u8, key: u8) {
        let slot = usize::from(ch) * 128 + usize::from(key);
        let mut open = std::mem::take(&mut self.open[slot]);
        if open.is_empty() {
            return; // spurious note-off
        }
        let mut closed = false;
        for &(start_tick, velocity) in open.iter().filter(|o| o.0 != end_tick) {
            let program = self.program[usize::from(ch)];
            let idx = self.get_or_create(program, ch);
            self.instruments[idx].notes.push(Note {
                pitch: key,
                velocity,
                start_tick,
                end_tick,
            });
            closed = true;
        }
        if closed {
            open.retain(|o| o.0 == end_tick);
        } else {
            open.clear();
        }
        self.open[slot] = open;
    }

    fn bend(&mut self, tick: u64, ch: u8, value: i16) {
        let list = self.lookup(ch).1;
        self.bend_lists[list].push(PitchBend { tick, value });
    }

    fn cc(&mut self, tick: u64, ch: u8, number: u8, value: u8) {
        let list = self.lookup(ch).0;
        self.cc_lists[list].push(ControlChange {
            tick,
            number,
            value,
        });
    }

    /// `__get_instrument(..., create_new=0)`: the instrument's lists, else the (new)
    /// straggler's.
    fn lookup(&mut self, ch: u8) -> (usize, usize) {
        let program = self.program[usize::from(ch)];
        let i = self.instrument_map[usize::from(program) * 16 + usize::from(ch)];
        if i != NONE {
            let inst = &self.instruments[i as usize];
            return (inst.cc_list, inst.bend_list);
        }
        let s = self.stragglers[usize::from(ch)];
        if s.0 != NONE {
            return (s.0 as usize, s.1 as usize);
        }
        let lists = self.new_lists();
        self.stragglers[usize::from(ch)] = (lists.0 as u32, lists.1 as u32);
        lists
    }

    fn new_lists(&mut self) -> (usize, usize) {
        self.cc_lists.push(Vec::new());
        self.bend_lists.push(Vec::new());
        (self.cc_lists.len() - 1, self.bend_lists.len() - 1)
    }

    /// `__get_instrument(..., create_new=1)`: adopts (shares) a straggler's event lists.
    fn get_or_create(&mut self, program: u8, ch: u8) -> usize {
        let key = usize::from(program) * 16 + usize::from(ch);
        let i = self.instrument_map[key];
        if i != NONE {
            return i as usize;
        }
        let s = self.stragglers[usize::from(ch)];
        let (cc_list, bend_list) = if s.0 != NONE {
            (s.0 as usize, s.1 as usize)
        } else {
            self.new_lists()
        };
        self.instruments.push(Instrument {
            program,
            channel: ch,
            track: self.track,
            is_drum: ch == 9,
            name: self.track_name.clone().unwrap_or_default(),
            notes: Vec::new(),
            cc_list,
            bend_list,
        });
        let i = self.instruments.len() - 1;
        self.instrument_map[key] = i as u32;
        i
    }
}
