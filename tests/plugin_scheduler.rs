//! Property tests of the pure scheduler and the audio-thread player: arbitrary block sizes
//! (1..4096), tempi (20..300), time signatures, loop ranges, seeks and pattern changes.
//! No host, no clock.
#![cfg(feature = "plugin")]

use jit_music::plugin::keymap::KeyMap;
use jit_music::plugin::pattern::{bar_ticks, Pattern, PatternNote, MAX_EVENTS, PPQ};
use jit_music::plugin::process::{HostTransport, Out, Player, PlayerSettings};
use jit_music::plugin::scheduler::{schedule, EventBuf, Mapping, Window, EPS_SAMPLES};
use proptest::prelude::*;
use std::collections::BTreeMap;

const SR: f64 = 48_000.0;

fn spt(bpm: f64, sr: f64) -> f64 {
    sr * 60.0 / (bpm * f64::from(PPQ))
}

/// A pattern of `bars` bars of `num/den` with notes on a 16th grid (some overlapping, some
/// ending exactly on the loop end).
fn arb_pattern() -> impl Strategy<Value = Pattern> {
    (
        prop::sample::select(vec![1u32, 2, 4, 8]),
        prop::sample::select(vec![(4u32, 4u32), (3, 4), (6, 8), (5, 4), (7, 8), (2, 2)]),
        prop::collection::vec((0u32..128, 1u32..32, 30u8..90, 1u8..127), 0..60),
    )
        .prop_map(|(bars, (num, den), raw)| {
            let bt = bar_ticks(num, den);
            let len = bars * bt;
            let step = PPQ / 4;
            let notes: Vec<PatternNote> = raw
                .into_iter()
                .map(|(s, d, pitch, vel)| {
                    let start = (s * step) % len;
                    PatternNote {
                        start,
                        end: (start + d * step).min(len),
                        pitch,
                        velocity: vel,
                    }
                })
                .collect();
            Pattern::from_notes(7, bars, bt, &notes)
        })
}

/// Note-ons and offs of cycles of `p` on samples `[0, total)` counted from tick `u0`, at the
/// sample `floor((u - u0) * spt)` during which they happen: the exact answer, computed naively.
fn reference(p: &Pattern, u0: f64, total: i64, spt: f64, looping: bool) -> Vec<(i64, bool, u16)> {
    let u1 = u0 + (total + 2) as f64 / spt;
    let len = f64::from(p.len_ticks());
    let mut out = Vec::new();
    let (k0, k1) = if looping {
        ((u0 / len).floor() as i64 - 1, (u1 / len).floor() as i64)
    } else {
        (0, 0)
    };
    for k in k0..=k1 {
        for e in p.events() {
            let u = k as f64 * len + f64::from(e.tick);
            let s = ((u - u0) * spt + EPS_SAMPLES).floor() as i64;
            if u >= u0 - 1.0 && u < u1 && (0..total).contains(&s) {
                out.push((s, e.on, e.note));
            }
        }
    }
    out.sort_by_key(|&(s, on, n)| (s, on, n));
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Windows that share their bounds tile the timeline: across any block sizes the events
    /// equal the naive reference, each block's events are sorted and inside the block.
    #[test]
    fn scheduler_tiles_blocks_exactly(
        p in arb_pattern(),
        bpm in 20.0f64..300.0,
        start_beats in -8.0f64..200.0,
        blocks in prop::collection::vec(1u32..4096, 1..40),
        looping in any::<bool>(),
    ) {
        let spt = spt(bpm, SR);
        let u0 = start_beats * f64::from(PPQ);
        let mut buf = EventBuf::with_capacity(4 * MAX_EVENTS);
        let mut got = Vec::new();
        let mut pos: i64 = 0;
        for &n in &blocks {
            let map = Mapping { origin_tick: u0, origin_sample: -pos, samples_per_tick: spt };
            let w = Window::new(map, 0, n);
            schedule(&p, &w, looping, &mut buf);
            prop_assert!(!buf.overflowed());
            let ev = buf.as_slice();
            for pair in ev.windows(2) {
                prop_assert!(pair[0].sample <= pair[1].sample, "unsorted {:?}", pair);
            }
            for e in ev {
                prop_assert!(e.sample < n);
                got.push((pos + i64::from(e.sample), e.on, e.note));
            }
            pos += i64::from(n);
        }
        let total: i64 = blocks.iter().map(|&n| i64::from(n)).sum();
        let want = reference(&p, u0, total, spt, looping);
        let mut got_sorted = got.clone();
        got_sorted.sort_by_key(|&(s, on, n)| (s, on, n));
        prop_assert_eq!(got_sorted, want);
    }
}

/// Checks the output stream of a player: sorted, inside blocks, each key's on/off alternate
/// (never a doubled on or an off for a silent key).
#[derive(Default)]
struct Monitor {
    on: BTreeMap<(u8, u8), bool>,
    ons: Vec<(u64, u8)>,
}

impl Monitor {
    fn block(&mut self, start: u64, n: u32, evs: &[Out]) -> Result<(), TestCaseError> {
        for pair in evs.windows(2) {
            prop_assert!(pair[0].sample() <= pair[1].sample(), "unsorted {:?}", pair);
        }
        for e in evs {
            prop_assert!(e.sample() < n, "{e:?} outside a block of {n}");
            match *e {
                Out::On {
                    sample,
                    channel,
                    key,
                    ..
                } => {
                    let s = self.on.entry((channel, key)).or_default();
                    prop_assert!(!*s, "doubled note-on {channel}/{key}");
                    *s = true;
                    self.ons.push((start + u64::from(sample), key));
                }
                Out::Off { channel, key, .. } => {
                    let s = self.on.entry((channel, key)).or_default();
                    prop_assert!(*s, "note-off for a silent key {channel}/{key}");
                    *s = false;
                }
            }
        }
        Ok(())
    }

    fn sounding(&self) -> usize {
        self.on.values().filter(|&&v| v).count()
    }
}

fn run(player: &mut Player, t: &HostTransport, n: u32, s: &PlayerSettings) -> Vec<Out> {
    let mut v = Vec::new();
    player.process(t, n, s, &mut |o| v.push(o));
    v
}

fn playing(pos: f64, bpm: f64) -> HostTransport {
    HostTransport {
        playing: true,
        tempo: Some(bpm),
        pos_beats: Some(pos),
        time_sig: Some((4, 4)),
        ..Default::default()
    }
}

/// One step of a hostile host.
#[derive(Debug, Clone)]
enum Step {
    Play(u32),
    Tempo(f64),
    Seek(f64),
    Stop(u32),
    Bypass(u32),
    Reset,
    NewPattern(Pattern),
    Transpose(i32),
    Odd(u32, u8),
    Signature(i32, i32),
    FreeRun(u32),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (1u32..4096).prop_map(Step::Play),
        1 => (20.0f64..300.0).prop_map(Step::Tempo),
        1 => (-4.0f64..100.0).prop_map(Step::Seek),
        1 => (1u32..2048).prop_map(Step::Stop),
        1 => (1u32..2048).prop_map(Step::Bypass),
        1 => Just(Step::Reset),
        1 => arb_pattern().prop_map(Step::NewPattern),
        1 => (-12i32..12).prop_map(Step::Transpose),
        1 => ((1u32..2048), 0u8..4).prop_map(|(n, k)| Step::Odd(n, k)),
        1 => prop::sample::select(vec![(3, 4), (4, 4), (7, 8), (0, 0), (-1, 3)])
            .prop_map(|(a, b)| Step::Signature(a, b)),
        1 => (1u32..2048).prop_map(Step::FreeRun),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Whatever the host does, the output is sorted, inside the block, never doubles a note,
    /// and stopping releases everything: no stuck notes.
    #[test]
    fn player_never_leaves_a_stuck_note(
        first in arb_pattern(),
        steps in prop::collection::vec(arb_step(), 1..60),
        loop_range in prop::option::of((0.0f64..16.0, 1.0f64..16.0)),
    ) {
        let mut player = Player::new(SR as f32);
        player.offer(&first);
        let mut settings = PlayerSettings::default();
        let mut mon = Monitor::default();
        let (mut pos, mut bpm, mut sig) = (0.0f64, 120.0f64, (4, 4));
        let mut sample = 0u64;
        let looped = loop_range.map(|(a, l)| (a, a + l));
        for step in steps {
            let mut t = playing(pos, bpm);
            t.time_sig = Some(sig);
            t.loop_range_beats = looped;
            let n = match step {
                Step::Play(n) => n,
                Step::Tempo(b) => { bpm = b; t.tempo = Some(b); 64 }
                Step::Seek(p) => { pos = p; t.pos_beats = Some(p); 64 }
                Step::Stop(n) => { t.playing = false; n }
                Step::Bypass(n) => { settings.bypass = true; n }
                Step::Reset => { player.request_release(); 32 }
                Step::NewPattern(p) => { player.offer(&p); 128 }
                Step::Transpose(x) => {
                    settings.keymap = KeyMap { transpose: x, ..KeyMap::default() };
                    256
                }
                Step::Odd(n, k) => {
                    match k {
                        0 => t.tempo = Some(f64::NAN),
                        1 => t.tempo = Some(0.0),
                        2 => t.pos_beats = Some(f64::INFINITY),
                        _ => { t.tempo = None; t.pos_beats = None; }
                    }
                    n
                }
                Step::Signature(a, b) => { sig = (a, b); t.time_sig = Some(sig); 256 }
                Step::FreeRun(n) => { t.playing = false; settings.free_run = true; n }
            };
            let evs = run(&mut player, &t, n, &settings);
            mon.block(sample, n, &evs)?;
            if !t.playing && !settings.free_run || settings.bypass {
                prop_assert_eq!(mon.sounding(), 0, "notes sound while stopped or bypassed");
            }
            settings.bypass = false;
            settings.free_run = false;
            sample += u64::from(n);
            // The host moves on (wrapping at its loop end).
            pos = t.pos_beats.filter(|p| p.is_finite()).unwrap_or(pos) + f64::from(n) / SR * bpm / 60.0;
            if let Some((a, b)) = looped {
                if pos >= b {
                    pos = a + (pos - b);
                }
            }
        }
        let stop = HostTransport { playing: false, tempo: Some(bpm), pos_beats: Some(pos), ..Default::default() };
        let evs = run(&mut player, &stop, 16, &settings);
        mon.block(sample, 16, &evs)?;
        prop_assert_eq!(mon.sounding(), 0, "stuck notes after stop");
    }

    /// A steady transport plays exactly the reference: every note-on at its sample, whatever
    /// the block sizes, tempo and time signature; one seek restarts cleanly.
    #[test]
    fn player_plays_exact_samples(
        p in arb_pattern(),
        bpm in 20.0f64..300.0,
        start in 0.0f64..64.0,
        blocks in prop::collection::vec(1u32..4096, 1..30),
        seek_to in 0.0f64..64.0,
        sr in prop::sample::select(vec![44_100.0f64, 48_000.0, 96_000.0]),
    ) {
        let settings = PlayerSettings::default();
        let spt = spt(bpm, sr);
        let spb = spt * f64::from(PPQ);
        for (from, label) in [(start, "start"), (seek_to, "seek")] {
            let mut player = Player::new(sr as f32);
            player.offer(&p);
            let mut mon = Monitor::default();
            let mut done = 0u64;
            for &n in &blocks {
                let t = HostTransport {
                    playing: true,
                    tempo: Some(bpm),
                    pos_beats: Some(from + done as f64 / spb),
                    time_sig: Some((4, 4)),
                    ..Default::default()
                };
                let evs = run(&mut player, &t, n, &settings);
                mon.block(done, n, &evs)?;
                done += u64::from(n);
            }
            let u0 = from * f64::from(PPQ);
            let want: Vec<(u64, u8)> = reference(&p, u0, done as i64, spt, true)
                .into_iter()
                .filter(|e| e.1)
                .map(|(s, _, n)| (s as u64, p.notes()[usize::from(n)].pitch))
                .collect();
            let mut got = mon.ons.clone();
            got.sort();
            let mut want = want;
            want.sort();
            // Overlapping notes of one key re-strike (an extra off, same ons).
            prop_assert_eq!(got, want, "{}", label);
        }
    }
}

/// The pattern takes over on the next pattern boundary, never mid-bar.
#[test]
fn new_pattern_waits_for_the_boundary() {
    let bt = bar_ticks(4, 4);
    let a = Pattern::from_notes(
        1,
        1,
        bt,
        &[PatternNote {
            start: 0,
            end: PPQ,
            pitch: 60,
            velocity: 100,
        }],
    );
    let b = Pattern::from_notes(
        2,
        1,
        bt,
        &[PatternNote {
            start: 0,
            end: PPQ,
            pitch: 72,
            velocity: 100,
        }],
    );
    let mut player = Player::new(48_000.0);
    player.offer(&a);
    let s = PlayerSettings::default();
    let mut ons = Vec::new();
    let mut done = 0u64;
    for i in 0..200u64 {
        if i == 10 {
            player.offer(&b); // mid-bar (bar = 96000 samples at 120 BPM)
        }
        let t = playing(done as f64 / 24_000.0, 120.0);
        for o in run(&mut player, &t, 1000, &s) {
            if let Out::On { sample, key, .. } = o {
                ons.push((done + u64::from(sample), key));
            }
        }
        done += 1000;
    }
    assert_eq!(ons[0], (0, 60));
    assert_eq!(ons[1], (96_000, 72), "{ons:?}");
    assert!(ons[1..].iter().all(|&(_, k)| k == 72));
}

/// No transport at all: 120 BPM 4/4 from plugin start; 'play when stopped' does the same.
#[test]
fn no_transport_runs_at_120_bpm_from_start() {
    let bt = bar_ticks(4, 4);
    let p = Pattern::from_notes(
        1,
        1,
        bt,
        &[PatternNote {
            start: PPQ,
            end: 2 * PPQ,
            pitch: 64,
            velocity: 90,
        }],
    );
    for free_run in [false, true] {
        let mut player = Player::new(48_000.0);
        player.offer(&p);
        let s = PlayerSettings {
            free_run,
            ..Default::default()
        };
        let t = if free_run {
            HostTransport {
                playing: false,
                tempo: Some(90.0),
                pos_beats: Some(3.0),
                ..Default::default()
            }
        } else {
            HostTransport::default()
        };
        let mut ons = Vec::new();
        for i in 0..250u64 {
            for o in run(&mut player, &t, 960, &s) {
                if let Out::On { sample, .. } = o {
                    ons.push(i * 960 + u64::from(sample));
                }
            }
        }
        assert_eq!(ons, vec![24_000, 120_000, 216_000], "free_run {free_run}");
    }
}

/// Hanging notes: one deterministic test per thing a host can do mid-note.
#[path = "plugin_scheduler/hanging.rs"]
mod hanging;

/// Live mode: bar-line swaps and the bar count.
#[path = "plugin_scheduler/live.rs"]
mod live;
