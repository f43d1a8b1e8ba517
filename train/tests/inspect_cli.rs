//! The `inspect` binary end to end: the exported roll is the original's dataset exactly
//! (pretty_midi golden), folders are summarised with failures reported (not fatal), crops are
//! reproducible, start on bar lines and come out as PNG and MIDI.

use candle_core::{DType, Device};
use jit_music::midi;
use jit_music::roll::velocity_to_u8;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn inspect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inspect"))
        .args(args)
        .output()
        .expect("run inspect")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn song(name: &str) -> PathBuf {
    fixtures().join(format!("midi/pop909/{name}/{name}.mid"))
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-inspect-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `--grid seconds --fps 16 --no-articulation --export-roll` is pretty_midi's
/// `get_piano_roll(fs=16)` times 255/127, clipped: checked against the golden roll of 091 (the
/// golden keeps the first 4096 frames, as `tests/roll_golden.rs` compares).
#[test]
fn exported_roll_is_the_original_dataset() {
    let dir = tmp("export");
    let out = dir.join("roll.safetensors");
    let o = inspect(&[
        s(&song("091")),
        "--grid",
        "seconds",
        "--fps",
        "16",
        "--no-articulation",
        "--num-crops",
        "0",
        "--export-roll",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("wrote the whole roll [128, "),
        "{}",
        stdout(&o)
    );

    let ours = candle_core::safetensors::load(&out, &Device::Cpu).unwrap();
    assert_eq!(ours.len(), 1);
    let roll = &ours["roll"];
    assert_eq!(roll.dtype(), DType::U8);
    let (pitches, frames) = roll.dims2().unwrap();
    assert_eq!(pitches, 128);
    let ours: Vec<u8> = roll.flatten_all().unwrap().to_vec1().unwrap();

    let golden = candle_core::safetensors::load(
        fixtures().join("golden/pianoroll.safetensors"),
        &Device::Cpu,
    )
    .unwrap();
    let gold = &golden["roll.091"];
    let (_, gold_frames) = gold.dims2().unwrap();
    assert_eq!(frames.min(4096), gold_frames);
    let gold: Vec<u8> = gold.flatten_all().unwrap().to_vec1().unwrap();
    let mut differ = 0;
    for p in 0..128 {
        for f in 0..gold_frames {
            // The golden is pretty_midi's raw roll as u8 (integer velocity sums here).
            let want = velocity_to_u8(f64::from(gold[p * gold_frames + f]));
            differ += usize::from(ours[p * frames + f] != want);
        }
    }
    assert_eq!(differ, 0, "{differ} cells differ from the golden roll");
    // Not an empty roll.
    assert!(ours.iter().filter(|&&v| v > 0).count() > 10_000);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn export_roll_needs_one_file() {
    let dir = tmp("export-folder");
    let o = inspect(&[
        s(&fixtures().join("midi/pop909")),
        "--export-roll",
        s(&dir.join("x.safetensors")),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("needs one MIDI file"), "{}", stderr(&o));
    assert!(!dir.join("x.safetensors").exists());
}

#[test]
fn a_broken_file_is_an_error_naming_it() {
    let dir = tmp("broken");
    let bad = dir.join("notes.mid");
    std::fs::write(&bad, b"not a midi file at all").unwrap();
    let o = inspect(&[s(&bad)]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("notes.mid"), "{err}");
    assert!(err.contains("not a MIDI file (looks like text)"), "{err}");
}

/// A folder (recursive) with good and broken files: failures are counted by reason, not fatal;
/// the summary, histogram and crops are printed; crops come out as PNG and as MIDI that reads
/// back.
#[test]
fn folder_summary_with_failures_and_crop_files() {
    let dir = tmp("folder");
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("sub/deeper")).unwrap();
    std::fs::copy(song("091"), data.join("091.mid")).unwrap();
    std::fs::copy(song("098"), data.join("sub/deeper/098.MID")).unwrap();
    std::fs::write(data.join("readme.mid"), b"hello, this is text").unwrap();
    let raw = std::fs::read(song("092")).unwrap();
    std::fs::write(data.join("sub/cut.midi"), &raw[..raw.len() / 2]).unwrap();
    std::fs::write(data.join("sub/ignored.txt"), b"not listed").unwrap();
    let (png, mid) = (dir.join("png"), dir.join("mid"));
    let o = inspect(&[
        s(&data),
        "--num-crops",
        "2",
        "--seed",
        "3",
        "--png-dir",
        s(&png),
        "--midi-dir",
        s(&mid),
        "--ascii-frames",
        "32",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("4 MIDI files, 2 converted, 2 failed"), "{out}");
    assert!(out.contains("failures by reason:"), "{out}");
    assert!(out.contains("not a MIDI file (looks like text)"), "{out}");
    assert!(out.contains("truncated: "), "{out}");
    assert!(out.contains("pitch histogram (active cells"), "{out}");
    assert!(out.contains("by pitch class:"), "{out}");
    assert_eq!(out.matches("\ncrop ").count(), 2, "{out}");

    let listed = |d: &Path, ext: &str| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        v.sort();
        v
    };
    assert_eq!(listed(&png, "png").len(), 2);
    let mids = listed(&mid, "mid");
    assert_eq!(mids.len(), 2);
    for m in &mids {
        let score = midi::read_file(m).unwrap();
        assert!(score.note_count() > 0, "{}", m.display());
    }
}

/// The same seed gives the same crops; on the beats grid every crop starts on a bar start
/// (POP909's annotated downbeats), and the ASCII view shows the requested pitch range.
#[test]
fn crops_are_reproducible_and_start_on_bar_lines() {
    let path = song("094");
    let args = [
        s(&path),
        "--num-crops",
        "3",
        "--seed",
        "11",
        "--ascii-low",
        "60",
        "--ascii-high",
        "72",
        "--ascii-frames",
        "48",
    ];
    let (a, b) = (inspect(&args), inspect(&args));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(stdout(&a), stdout(&b));
    let out = stdout(&a);
    assert!(
        out.contains("bar lines from the annotated downbeats"),
        "{out}"
    );
    assert_eq!(out.matches("\ncrop ").count(), 3);
    // 13 pitch rows (C5 down to C4) per crop.
    assert_eq!(
        out.matches("\n   C5 ").count() + out.matches("\n   C5\n").count(),
        3,
        "{out}"
    );
    assert_eq!(
        out.matches("\n   C4 ").count() + out.matches("\n   C4\n").count(),
        3,
        "{out}"
    );

    // Crop starts are bar starts of the annotated grid.
    let score = midi::read_file(&song("094")).unwrap();
    let sr = jit_music::roll::score_to_roll(
        &score,
        &jit_music::roll::RollOptions {
            downbeats: jit_music::roll::read_pop909_downbeats(&song("094")),
            ..jit_music::roll::RollOptions::beats(4)
        },
    )
    .unwrap();
    let starts = sr.bar_starts();
    for line in out.lines().filter(|l| l.starts_with("crop ")) {
        let f: usize = line
            .split("frames ")
            .nth(1)
            .and_then(|r| r.split("..").next())
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("no start in {line}"));
        assert!(starts.contains(&f), "{line}");
        assert!(line.contains("shape [128, 128]"), "{line}");
        assert!(
            line.contains("density ") && line.contains("velocity max "),
            "{line}"
        );
    }
    let other = inspect(&[s(&song("094")), "--num-crops", "3", "--seed", "12"]);
    assert_ne!(stdout(&other), out);
}

/// The seconds grid: crops anywhere, times in seconds; the crop length follows `--frames`.
#[test]
fn seconds_grid_crops() {
    let o = inspect(&[
        s(&song("098")),
        "--grid",
        "seconds",
        "--fps",
        "16",
        "--frames",
        "64",
        "--num-crops",
        "2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("seconds grid, 16 frames/s"), "{out}");
    assert!(out.contains("shape [128, 64]"), "{out}");
    assert!(out.contains(" s), shape"), "{out}");
}
