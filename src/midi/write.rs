//! Writing notes as a type-1 Standard MIDI File: a conductor track (name, tempo, time signature)
//! and one note track, so every DAW and pretty_midi/mido read it back.

use midly::num::{u15, u24, u28, u4, u7};
use midly::{Format, Header, MetaMessage, MidiMessage, Smf, Timing, TrackEvent, TrackEventKind};

/// A note to write, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteNote {
    pub pitch: u8,
    pub velocity: u8,
    pub start_tick: u64,
    pub end_tick: u64,
    pub channel: u8,
}

/// File-level settings of a written MIDI file.
#[derive(Debug, Clone)]
pub struct MidiWriteSpec {
    pub ticks_per_beat: u16,
    pub bpm: f64,
    pub time_signature: (u8, u8),
    pub track_name: String,
    /// General MIDI program of the note track (0 = piano).
    pub program: u8,
}

impl Default for MidiWriteSpec {
    fn default() -> Self {
        Self {
            ticks_per_beat: 480,
            bpm: 120.0,
            time_signature: (4, 4),
            track_name: "JiT-Music".into(),
            program: 0,
        }
    }
}

fn delta(tick: u64, last: &mut u64) -> u28 {
    let d = tick.saturating_sub(*last).min(u64::from(u32::MAX >> 4)) as u32;
    *last = tick;
    u28::new(d)
}

/// Encode notes as SMF bytes. Note-offs sort before note-ons at the same tick, so a re-struck
/// pitch is never cut by its own predecessor's note-off.
pub fn write_smf(spec: &MidiWriteSpec, notes: &[WriteNote]) -> Vec<u8> {
    let tpb = spec.ticks_per_beat.clamp(1, 0x7fff);
    let header = Header::new(Format::Parallel, Timing::Metrical(u15::new(tpb)));
    let bpm = if spec.bpm.is_finite() && spec.bpm > 0.0 {
        spec.bpm
    } else {
        120.0
    };
    let usec = (60_000_000.0 / bpm)
        .round()
        .clamp(1.0, f64::from(0x00ff_ffffu32)) as u32;
    let (num, den) = spec.time_signature;
    let den_pow = (den.max(1) as f64).log2().round() as u8;

    let conductor: Vec<TrackEvent> = vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TrackName(spec.track_name.as_bytes())),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(usec))),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TimeSignature(num.max(1), den_pow, 24, 8)),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        },
    ];

    // (tick, is_on, pitch, velocity, channel)
    let mut evs: Vec<(u64, bool, u8, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for n in notes {
        if n.end_tick <= n.start_tick {
            continue;
        }
        let p = n.pitch.min(127);
        let ch = n.channel.min(15);
        evs.push((n.start_tick, true, p, n.velocity.clamp(1, 127), ch));
        evs.push((n.end_tick, false, p, 0, ch));
    }
    evs.sort_by_key(|&(t, on, p, _, _)| (t, on, p));

    let mut track: Vec<TrackEvent> = Vec::with_capacity(evs.len() + 3);
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::TrackName(spec.track_name.as_bytes())),
    });
    let channels: Vec<u8> = {
        let mut c: Vec<u8> = notes.iter().map(|n| n.channel.min(15)).collect();
        c.sort_unstable();
        c.dedup();
        if c.is_empty() {
            vec![0]
        } else {
            c
        }
    };
    for ch in channels {
        track.push(TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel: u4::new(ch),
                message: MidiMessage::ProgramChange {
                    program: u7::new(spec.program.min(127)),
                },
            },
        });
    }
    let mut last = 0u64;
    for (tick, on, p, v, ch) in evs {
        let message = if on {
            MidiMessage::NoteOn {
                key: u7::new(p),
                vel: u7::new(v),
            }
        } else {
            MidiMessage::NoteOff {
                key: u7::new(p),
                vel: u7::new(64),
            }
        };
        track.push(TrackEvent {
            delta: delta(tick, &mut last),
            kind: TrackEventKind::Midi {
                channel: u4::new(ch),
                message,
            },
        });
    }
    track.push(TrackEvent {
        delta: u28::new(0),
        kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
    });

    let smf = Smf {
        header,
        tracks: vec![conductor, track],
    };
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = smf.write_std(&mut out);
    out
}
