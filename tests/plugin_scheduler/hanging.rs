//! Every note-on gets its note-off, whatever the host does mid-note: a block skipped or repeated
//! right after note-ons, seeks both ways, a loop wrap, a tempo change, stop, bypass, a bar start
//! that lags, and a host that refuses events.

use super::*;

/// One bar of 4/4 at PPQ 960 (25 samples a tick at 120 BPM, 48 kHz): C4 [0, 1920),
/// E4 [960, 2880) across beat 2, G4 [1920, 3840) to the loop end.
fn held_notes() -> Pattern {
    let n = |start, end, pitch| PatternNote {
        start,
        end,
        pitch,
        velocity: 100,
    };
    Pattern::from_notes(
        3,
        1,
        bar_ticks(4, 4),
        &[n(0, 1920, 60), n(960, 2880, 64), n(1920, 3840, 67)],
    )
}

/// A player with the held notes, a host clock and the pairing monitor: every block's events are
/// checked as they come (no doubled on, no off for a silent key) and kept with absolute samples.
struct Rig {
    player: Player,
    settings: PlayerSettings,
    mon: Monitor,
    /// Samples processed (the host's sample counter).
    done: u64,
    /// (absolute sample, on, key)
    log: Vec<(u64, bool, u8)>,
}

impl Rig {
    fn new() -> Self {
        let mut player = Player::new(48_000.0);
        player.offer(&held_notes());
        Self {
            player,
            settings: PlayerSettings::default(),
            mon: Monitor::default(),
            done: 0,
            log: Vec::new(),
        }
    }

    fn block(&mut self, t: &HostTransport, n: u32) -> Vec<Out> {
        let evs = run(&mut self.player, t, n, &self.settings);
        self.mon
            .block(self.done, n, &evs)
            .unwrap_or_else(|e| panic!("at sample {}: {e}", self.done));
        for e in &evs {
            let (on, key) = match *e {
                Out::On { key, .. } => (true, key),
                Out::Off { key, .. } => (false, key),
            };
            self.log.push((self.done + u64::from(e.sample()), on, key));
        }
        self.done += u64::from(n);
        evs
    }

    /// Play `n`-sample blocks at 120 BPM from beat `pos` for `samples` samples.
    fn play_from(&mut self, mut pos: f64, samples: u64, n: u32) -> f64 {
        let end = self.done + samples;
        while self.done < end {
            let k = (end - self.done).min(u64::from(n)) as u32;
            self.block(&playing(pos, 120.0), k);
            pos += f64::from(k) / 24_000.0;
        }
        pos
    }

    /// Stop, then check that everything that started was released.
    fn stop_and_check(&mut self) {
        let t = HostTransport {
            playing: false,
            ..playing(0.0, 120.0)
        };
        self.block(&t, 64);
        assert_eq!(self.mon.sounding(), 0, "stuck notes: {:?}", self.log);
        let ons = self.log.iter().filter(|e| e.1).count();
        let offs = self.log.iter().filter(|e| !e.1).count();
        assert_eq!(ons, offs, "every note-on gets its note-off: {:?}", self.log);
    }

    fn at(&self, sample: u64) -> Vec<(bool, u8)> {
        self.log
            .iter()
            .filter(|e| e.0 == sample)
            .map(|e| (e.1, e.2))
            .collect()
    }
}

/// The host skips the block right after the note-ons (its position moves on by two blocks): what
/// sounds is released at the first sample of the next block and the bar plays on from there.
#[test]
fn skipped_block_after_note_ons_releases_them() {
    let mut r = Rig::new();
    r.block(&playing(0.0, 120.0), 512);
    assert_eq!(r.at(0), vec![(true, 60)]);
    // Block 512..1024 never reaches the plugin.
    let pos = r.play_from(1024.0 / 24_000.0, 96_000 - 1024, 512);
    assert_eq!(r.at(512), vec![(false, 60)], "released where the gap ends");
    // The host's clock is 512 samples ahead of ours from here on.
    assert_eq!(
        r.at(24_000 - 512),
        vec![(true, 64)],
        "the next note on its beat"
    );
    r.play_from(pos, 96_000, 512);
    assert_eq!(
        r.at(96_000 - 512),
        vec![(false, 67), (true, 60)],
        "the next bar on its bar line"
    );
    r.stop_and_check();
}

/// A late block: the host sends the same position twice (a jump back by one block).
#[test]
fn repeated_block_after_note_ons_releases_them() {
    let mut r = Rig::new();
    r.block(&playing(0.0, 120.0), 512);
    r.block(&playing(0.0, 120.0), 512);
    assert_eq!(
        r.at(512),
        vec![(false, 60), (true, 60)],
        "restarted cleanly"
    );
    r.play_from(512.0 / 24_000.0, 48_000, 512);
    r.stop_and_check();
}

/// A seek backwards mid-note releases what sounds at once; a note starting exactly at the new
/// position starts after the release (off before on at the same sample), C4 (already begun
/// there) does not start mid-way.
#[test]
fn jump_backwards_mid_note() {
    let mut r = Rig::new();
    r.play_from(0.0, 60_000, 500); // G4 from 48000
    assert_eq!(r.mon.sounding(), 2, "E4 and G4 sound"); // E4 until 72000
    r.play_from(1.0, 60_000, 500); // back to E4's first tick
    assert_eq!(r.at(60_000), vec![(false, 64), (false, 67), (true, 64)]);
    assert_eq!(r.at(84_000), vec![(true, 67)], "G4 a beat later");
    assert_eq!(r.at(108_000), vec![(false, 64)], "E4 to beat 3");
    r.stop_and_check();
}

/// A seek forwards mid-note: released at the seek, later notes on their ticks.
#[test]
fn jump_forwards_mid_note() {
    let mut r = Rig::new();
    r.play_from(0.0, 10_000, 1000); // C4 sounds
    r.play_from(1.75, 30_000, 1000); // to 1.75 beats: E4's middle
    assert_eq!(
        r.at(10_000),
        vec![(false, 60)],
        "C4 released; E4 not started mid-way"
    );
    assert_eq!(r.at(10_000 + 6_000), vec![(true, 67)], "G4 at beat 2");
    r.stop_and_check();
}

/// A host loop [0, 2) beats wraps while E4 (beat 1..3) sounds: E4 ends on the loop end, C4
/// starts again on the same sample, in every cycle.
#[test]
fn loop_wrap_mid_note() {
    let mut r = Rig::new();
    let mut pos = 0.0f64;
    for _ in 0..400 {
        let mut t = playing(pos, 120.0);
        t.loop_range_beats = Some((0.0, 2.0));
        r.block(&t, 700);
        pos += 700.0 / 24_000.0;
        if pos >= 2.0 {
            pos -= 2.0;
        }
    }
    for cycle in 1..5u64 {
        let wrap = cycle * 48_000;
        assert_eq!(
            r.at(wrap),
            vec![(false, 60), (false, 64), (true, 60)],
            "cycle {cycle}"
        );
    }
    r.stop_and_check();
}

/// The tempo drops from 120 to 90 BPM while G4 sounds: its note-off comes at the new tempo.
#[test]
fn tempo_change_mid_note() {
    let mut r = Rig::new();
    let pos = r.play_from(0.0, 60_000, 500); // beat 2.5, G4 on
    let mut pos = pos;
    for _ in 0..120 {
        r.block(&playing(pos, 90.0), 500);
        pos += 500.0 / 32_000.0; // beats per sample at 90 BPM
    }
    // G4 ends at beat 4: 1.5 beats of 32000 samples after sample 60000.
    assert_eq!(r.at(108_000), vec![(false, 67), (true, 60)]);
    r.stop_and_check();
}

/// Stop mid-note releases at once; playing again from the same place does not restart the note
/// mid-way, and the next note comes on its tick.
#[test]
fn stop_mid_note_and_resume() {
    let mut r = Rig::new();
    let pos = r.play_from(0.0, 50_000, 1000); // G4 on
    let stopped = HostTransport {
        playing: false,
        ..playing(pos, 120.0)
    };
    r.block(&stopped, 1000);
    assert_eq!(r.at(50_000), vec![(false, 64), (false, 67)]);
    assert_eq!(r.mon.sounding(), 0);
    r.play_from(pos, 60_000, 1000);
    assert_eq!(
        r.at(51_000 + 46_000),
        vec![(true, 60)],
        "next bar on its tick"
    );
    r.stop_and_check();
}

/// Bypass mid-note releases at once, stays silent while bypassed, and plays on afterwards.
#[test]
fn bypass_mid_note() {
    let mut r = Rig::new();
    let mut pos = r.play_from(0.0, 50_000, 1000);
    r.settings.bypass = true;
    for i in 0..10 {
        let evs = r.block(&playing(pos, 120.0), 1000);
        assert_eq!(
            evs.is_empty(),
            i > 0,
            "released on the first bypassed block only"
        );
        pos += 1000.0 / 24_000.0;
    }
    assert_eq!(r.at(50_000), vec![(false, 64), (false, 67)]);
    assert_eq!(r.log.len(), 6, "silent while bypassed: {:?}", r.log);
    r.settings.bypass = false;
    r.play_from(pos, 50_000, 1000);
    assert_eq!(r.at(96_000), vec![(true, 60)]);
    r.stop_and_check();
}

/// Carla's VST3 host reports the previous bar's start on blocks that begin exactly on a bar line
/// (its bar comes from JACK's BBT, its position from the frame). VST3 gives no bar number, so the
/// player counts bars from the bar start: it plays on exactly as with an exact host.
#[test]
fn lagging_bar_start_on_bar_lines_changes_nothing() {
    let run = |lag: bool| {
        let mut r = Rig::new();
        for i in 0..1500u64 {
            let pos = (i * 512) as f64 / 24_000.0;
            let mut start = (pos / 4.0).floor() * 4.0;
            if lag && pos == start && start > 0.0 {
                start -= 4.0;
            }
            let t = HostTransport {
                bar_start_beats: Some(start),
                bar_number: None,
                ..playing(pos, 120.0)
            };
            r.block(&t, 512);
        }
        r.log
    };
    let exact = run(false);
    // Eight bars of three notes; the last note-off falls on the ninth bar line, after the run.
    assert_eq!(exact.len(), 8 * 6 - 1);
    assert_eq!(run(true), exact);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// A host that refuses some events: through `HostNotes` what the host takes stays balanced (no
    /// doubled on, no off for a key it does not hold), and after a stop plus one block that takes
    /// everything, the host holds no note.
    #[test]
    fn refused_events_never_leave_a_host_note_on(
        p in arb_pattern(),
        blocks in prop::collection::vec((1u32..2048, 0u8..8), 1..60),
        refuse in prop::collection::vec(any::<bool>(), 64),
    ) {
        use jit_music::plugin::host_notes::HostNotes;
        let mut player = Player::new(SR as f32);
        player.offer(&p);
        let mut host = HostNotes::new();
        let mut mon = Monitor::default();
        let (mut pos, mut done, mut k) = (0.0f64, 0u64, 0usize);
        let settings = PlayerSettings::default();
        for (n, what) in blocks.into_iter().chain([(16, 7), (16, 7)]) {
            // 0: seek, 7: stop, else play on.
            let t = match what {
                0 => { pos = f64::from(n % 64) / 4.0; playing(pos, 120.0) }
                7 => HostTransport { playing: false, ..playing(pos, 120.0) },
                _ => playing(pos, 120.0),
            };
            let take_all = what == 7;
            let mut taken = Vec::new();
            let mut send = |o: Out| {
                k += 1;
                let ok = take_all || !refuse[k % refuse.len()];
                if ok { taken.push(o); }
                ok
            };
            host.retry(0, &mut send);
            player.process(&t, n, &settings, &mut |o| host.send(o, &mut send));
            taken.sort_by_key(|o| o.sample());
            mon.block(done, n, &taken)?;
            done += u64::from(n);
            pos += f64::from(n) / 24_000.0;
        }
        prop_assert_eq!(mon.sounding(), 0, "the host still holds notes");
        prop_assert_eq!(host.pending_offs(), 0);
    }
}
