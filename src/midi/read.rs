//! Standard MIDI File reading into a [`Score`], with pretty_midi's semantics.
//!
//! The parse mirrors `pretty_midi.PrettyMIDI(file)` (0.2.x) so that the seconds grid reproduces
//! `get_piano_roll` bit for bit: the tempo map comes from track 0 as pretty_midi reads it, note-ons
//! are paired with note-offs per (channel, pitch) with its same-tick rule, note-on velocity 0 is a
//! note-off, instruments are keyed by (program, channel, track), and control changes that come
//! before an instrument's first note are shared the way pretty_midi's "stragglers" are.

use super::{
    ControlChange, Instrument, MidiError, Note, PitchBend, Score, TempoMap, TimeSignature,
};
use midly::{MetaMessage, MidiMessage, Timing, TrackEventKind};
use std::collections::HashMap;

/// Largest tick a file may use; pretty_midi refuses the same (`MAX_TICK = 1e7`): beyond it a file
/// is almost always corrupt and its arrays would exhaust memory.
pub const MAX_TICK: u64 = 10_000_000;

/// Check the chunk structure before midly parses leniently, so that a truncated file is an error
/// rather than silently half-read.
fn check_chunks(raw: &[u8]) -> Result<(), MidiError> {
    if raw.is_empty() {
        return Err(MidiError::Empty);
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
    let declared_tracks = u16::from_be_bytes([raw[10], raw[11]]);
    if declared_tracks == 0 {
        return Err(MidiError::NoTracks);
    }
    let mut pos = 8usize.saturating_add(header_len);
    let mut tracks = 0usize;
    while pos < raw.len() {
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
                return Err(MidiError::Truncated(format!(
                    "track {tracks} declares {len} bytes but only {} remain",
                    raw.len() - body
                )));
            }
            tracks += 1;
        } else if len > raw.len() - body {
            break; // an unknown trailing chunk that is cut short carries nothing we read
        }
        pos = body + len;
    }
    if tracks == 0 {
        return Err(MidiError::NoTracks);
    }
    Ok(())
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

/// One channel event of a track, in absolute ticks, in file order.
enum Ev {
    TrackName(String),
    Program { ch: u8, program: u8 },
    NoteOn { ch: u8, key: u8, vel: u8 },
    NoteOff { ch: u8, key: u8 },
    Bend { ch: u8, value: i16 },
    Cc { ch: u8, number: u8, value: u8 },
}

/// Parse a Standard MIDI File. Never panics; any defect becomes a [`MidiError`].
pub fn parse(raw: &[u8]) -> Result<Score, MidiError> {
    check_chunks(raw)?;
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

    // Collect events per track in absolute ticks.
    let mut tracks: Vec<Vec<(u64, Ev)>> = Vec::new();
    let mut tempo_events: Vec<(u64, u32)> = Vec::new(); // track 0 only, as pretty_midi
    let mut time_sigs: Vec<TimeSignature> = Vec::new();
    let mut max_tick = 0u64;
    for (ti, track) in track_iter.enumerate() {
        let mut events = track.map_err(|e| MidiError::Malformed(format!("track {ti}: {e}")))?;
        let mut tick = 0u64;
        let mut out = Vec::new();
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
                    "track {ti} reaches tick {tick} (limit {MAX_TICK}); the file is likely corrupt"
                )));
            }
            max_tick = max_tick.max(tick);
            match ev.kind {
                TrackEventKind::Midi { channel, message } => {
                    let ch = channel.as_int();
                    let e = match message {
                        MidiMessage::NoteOn { key, vel } if vel.as_int() > 0 => Ev::NoteOn {
                            ch,
                            key: key.as_int(),
                            vel: vel.as_int(),
                        },
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            Ev::NoteOff {
                                ch,
                                key: key.as_int(),
                            }
                        }
                        MidiMessage::ProgramChange { program } => Ev::Program {
                            ch,
                            program: program.as_int(),
                        },
                        MidiMessage::PitchBend { bend } => Ev::Bend {
                            ch,
                            value: bend.as_int(),
                        },
                        MidiMessage::Controller { controller, value } => Ev::Cc {
                            ch,
                            number: controller.as_int(),
                            value: value.as_int(),
                        },
                        _ => continue,
                    };
                    out.push((tick, e));
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
                    out.push((tick, Ev::TrackName(String::from_utf8_lossy(name).into())));
                }
                _ => {}
            }
        }
        tracks.push(out);
    }
    if tracks.is_empty() {
        return Err(MidiError::NoTracks);
    }
    let tempo = TempoMap::from_events(ticks_per_beat, &tempo_events);
    let mut score = Score {
        ticks_per_beat,
        tempo,
        time_signatures: time_sigs,
        instruments: Vec::new(),
        cc_lists: Vec::new(),
        bend_lists: Vec::new(),
        max_tick,
    };
    load_instruments(&mut score, &tracks);
    Ok(score)
}

/// pretty_midi's `_load_instruments`, including its straggler and same-tick rules.
fn load_instruments(score: &mut Score, tracks: &[Vec<(u64, Ev)>]) {
    // (program, channel, track) -> instrument index, in creation order.
    let mut instrument_map: HashMap<(u8, u8, usize), usize> = HashMap::new();
    // (channel, track) -> straggler (cc list, bend list).
    let mut stragglers: HashMap<(u8, usize), (usize, usize)> = HashMap::new();
    let mut track_names: HashMap<usize, String> = HashMap::new();

    enum Target {
        Instrument(usize),
        Straggler(usize, usize),
    }

    for (track_idx, track) in tracks.iter().enumerate() {
        let mut last_note_on: HashMap<(u8, u8), Vec<(u64, u8)>> = HashMap::new();
        let mut current_program = [0u8; 16];
        for (tick, ev) in track {
            let tick = *tick;
            match *ev {
                Ev::TrackName(ref name) => {
                    track_names.insert(track_idx, name.clone());
                }
                Ev::Program { ch, program } => current_program[ch as usize] = program,
                Ev::NoteOn { ch, key, vel } => {
                    last_note_on.entry((ch, key)).or_default().push((tick, vel));
                }
                Ev::NoteOff { ch, key } => {
                    let Some(open) = last_note_on.get_mut(&(ch, key)) else {
                        continue; // spurious note-off
                    };
                    let end_tick = tick;
                    let (close, keep): (Vec<_>, Vec<_>) =
                        open.iter().copied().partition(|&(s, _)| s != end_tick);
                    for &(start_tick, velocity) in &close {
                        let program = current_program[ch as usize];
                        let idx = get_or_create(
                            score,
                            &mut instrument_map,
                            &stragglers,
                            &track_names,
                            program,
                            ch,
                            track_idx,
                        );
                        score.instruments[idx].notes.push(Note {
                            pitch: key,
                            velocity,
                            start_tick,
                            end_tick,
                        });
                    }
                    if !close.is_empty() && !keep.is_empty() {
                        *open = keep;
                    } else {
                        last_note_on.remove(&(ch, key));
                    }
                }
                Ev::Bend { ch, value } => {
                    let target = lookup(
                        &instrument_map,
                        &mut stragglers,
                        score,
                        current_program[ch as usize],
                        ch,
                        track_idx,
                    );
                    let list = match target {
                        Target::Instrument(i) => score.instruments[i].bend_list,
                        Target::Straggler(_, b) => b,
                    };
                    score.bend_lists[list].push(PitchBend { tick, value });
                }
                Ev::Cc { ch, number, value } => {
                    let target = lookup(
                        &instrument_map,
                        &mut stragglers,
                        score,
                        current_program[ch as usize],
                        ch,
                        track_idx,
                    );
                    let list = match target {
                        Target::Instrument(i) => score.instruments[i].cc_list,
                        Target::Straggler(c, _) => c,
                    };
                    score.cc_lists[list].push(ControlChange {
                        tick,
                        number,
                        value,
                    });
                }
            }
        }
    }

    /// `__get_instrument(..., create_new=0)`: the instrument, else the (new) straggler.
    fn lookup(
        map: &HashMap<(u8, u8, usize), usize>,
        stragglers: &mut HashMap<(u8, usize), (usize, usize)>,
        score: &mut Score,
        program: u8,
        ch: u8,
        track: usize,
    ) -> Target {
        if let Some(&i) = map.get(&(program, ch, track)) {
            return Target::Instrument(i);
        }
        if let Some(&(c, b)) = stragglers.get(&(ch, track)) {
            return Target::Straggler(c, b);
        }
        score.cc_lists.push(Vec::new());
        score.bend_lists.push(Vec::new());
        let lists = (score.cc_lists.len() - 1, score.bend_lists.len() - 1);
        stragglers.insert((ch, track), lists);
        Target::Straggler(lists.0, lists.1)
    }

    /// `__get_instrument(..., create_new=1)`: adopts (shares) a straggler's event lists.
    fn get_or_create(
        score: &mut Score,
        map: &mut HashMap<(u8, u8, usize), usize>,
        stragglers: &HashMap<(u8, usize), (usize, usize)>,
        names: &HashMap<usize, String>,
        program: u8,
        ch: u8,
        track: usize,
    ) -> usize {
        if let Some(&i) = map.get(&(program, ch, track)) {
            return i;
        }
        let (cc_list, bend_list) = match stragglers.get(&(ch, track)) {
            Some(&lists) => lists,
            None => {
                score.cc_lists.push(Vec::new());
                score.bend_lists.push(Vec::new());
                (score.cc_lists.len() - 1, score.bend_lists.len() - 1)
            }
        };
        score.instruments.push(Instrument {
            program,
            channel: ch,
            track,
            is_drum: ch == 9,
            name: names.get(&track).cloned().unwrap_or_default(),
            notes: Vec::new(),
            cc_list,
            bend_list,
        });
        let i = score.instruments.len() - 1;
        map.insert((program, ch, track), i);
        i
    }
}
