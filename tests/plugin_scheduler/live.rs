//! Live mode in the player: a new idea takes over at the next bar line (going on from the same
//! bar of its own), the player asks for an idea every N bars or every loop, and bar lines and
//! loop starts count on every pass of a host loop that wraps exactly on them.

use super::*;

/// A 4-bar pattern (`id`) with one note per bar on beat 1, pitch `base + bar`, held a beat.
fn four_bars(id: u64, base: u8) -> Pattern {
    let bt = bar_ticks(4, 4);
    let notes: Vec<PatternNote> = (0..4u32)
        .map(|b| PatternNote {
            start: b * bt,
            end: b * bt + PPQ,
            pitch: base + b as u8,
            velocity: 100,
        })
        .collect();
    Pattern::from_notes(id, 4, bt, &notes)
}

fn live(bars: u32) -> PlayerSettings {
    PlayerSettings {
        live_bars: Some(bars),
        ..Default::default()
    }
}

/// Blocks of 1000 at 120 BPM from sample 0; `offer_at` offers a pattern before that block.
/// Returns (absolute sample, on, key) and the samples where the player asked for an idea.
fn play(
    player: &mut Player,
    s: &PlayerSettings,
    blocks: u64,
    offer_at: &[(u64, &Pattern)],
) -> (Vec<(u64, bool, u8)>, Vec<u64>) {
    let (mut log, mut due) = (Vec::new(), Vec::new());
    for i in 0..blocks {
        for (at, p) in offer_at {
            if *at == i {
                player.offer(p);
            }
        }
        let done = i * 1000;
        let t = playing(done as f64 / 24_000.0, 120.0);
        for o in run(player, &t, 1000, s) {
            match o {
                Out::On { sample, key, .. } => log.push((done + u64::from(sample), true, key)),
                Out::Off { sample, key, .. } => log.push((done + u64::from(sample), false, key)),
            }
        }
        if player.take_regen_due() {
            due.push(done + 1000);
        }
    }
    (log, due)
}

/// Offered mid-bar 1, the new pattern starts at bar line 2 with its own bar 2 (not its bar 0),
/// after the old one's note is released there; outside Live mode it waits for the loop end.
#[test]
fn a_new_idea_takes_over_at_the_next_bar_line() {
    let (a, b) = (four_bars(1, 60), four_bars(2, 72));
    let mut player = Player::new(48_000.0);
    player.offer(&a);
    // Bar = 96000 samples; offered at sample 130000 (bar 1).
    let (log, _) = play(&mut player, &live(4), 400, &[(130, &b)]);
    let ons: Vec<(u64, u8)> = log.iter().filter(|e| e.1).map(|e| (e.0, e.2)).collect();
    assert_eq!(
        ons,
        vec![
            (0, 60),
            (96_000, 61),
            (192_000, 74),
            (288_000, 75),
            (384_000, 72)
        ],
        "{log:?}"
    );
    let mut player = Player::new(48_000.0);
    player.offer(&a);
    let (log, _) = play(&mut player, &PlayerSettings::default(), 500, &[(130, &b)]);
    let ons: Vec<(u64, u8)> = log.iter().filter(|e| e.1).map(|e| (e.0, e.2)).collect();
    assert_eq!(ons[2..5], [(192_000, 62), (288_000, 63), (384_000, 72)]);
}

/// A note of the old pattern held across the bar line is released exactly there.
#[test]
fn what_sounds_at_the_bar_line_is_released_there() {
    let bt = bar_ticks(4, 4);
    let long = Pattern::from_notes(
        1,
        2,
        bt,
        &[PatternNote {
            start: 0,
            end: 2 * bt,
            pitch: 50,
            velocity: 100,
        }],
    );
    let mut player = Player::new(48_000.0);
    player.offer(&long);
    let (log, _) = play(&mut player, &live(1), 150, &[(30, &four_bars(2, 72))]);
    assert_eq!(
        log[..3],
        [(0, true, 50), (96_000, false, 50), (96_000, true, 73)],
        "{log:?}"
    );
}

/// Every N bars: the player asks on bar lines 2, 4, 6 (not where play started); every loop: on
/// each 4-bar pattern start.
#[test]
fn live_asks_for_an_idea_every_n_bars_or_every_loop() {
    let mut player = Player::new(48_000.0);
    player.offer(&four_bars(1, 60));
    let (_, due) = play(&mut player, &live(2), 700, &[]);
    // The block that reaches bar line 2k (192000 k) reports it.
    assert_eq!(due, vec![192_000 + 1000, 384_000 + 1000, 576_000 + 1000]);
    let mut player = Player::new(48_000.0);
    player.offer(&four_bars(1, 60));
    let (_, due) = play(&mut player, &live(0), 800, &[]);
    assert_eq!(due, vec![384_000 + 1000, 768_000 + 1000]);
}

/// A host loop of exactly one bar over a one-bar pattern: every pass reaches the pattern start
/// again, so 'regenerate every loop' and Live mode come due on every pass.
#[test]
fn a_host_loop_on_the_bar_line_counts_every_pass() {
    let p = Pattern::from_notes(
        1,
        1,
        bar_ticks(4, 4),
        &[PatternNote {
            start: 0,
            end: PPQ,
            pitch: 60,
            velocity: 100,
        }],
    );
    for s in [
        PlayerSettings {
            regen_every: 1,
            ..Default::default()
        },
        live(1),
    ] {
        let mut player = Player::new(48_000.0);
        player.offer(&p);
        let mut pos = 0.0;
        let mut due = 0;
        for _ in 0..480 {
            let t = HostTransport {
                loop_range_beats: Some((0.0, 4.0)),
                ..playing(pos, 120.0)
            };
            run(&mut player, &t, 1000, &s);
            pos += 1000.0 / 24_000.0;
            if pos >= 4.0 {
                pos -= 4.0;
            }
            due += usize::from(player.take_regen_due());
        }
        // 480000 samples = 5 passes of 96000: the starts of passes 2..5.
        assert_eq!(due, 4, "{s:?}");
    }
}
