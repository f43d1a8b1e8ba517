//! Without `--ckpt`, `generate` picks the embedded model for the request: the default for new
//! ideas, the conditioned one for a prompt or chords; sidecars record which, and a replay uses it.

use std::path::PathBuf;
use std::process::Command;

fn generate(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_generate"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jit-embedded-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn checkpoint_of(dir: &std::path::Path) -> String {
    let side: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sample_0000.json")).unwrap())
            .unwrap();
    side["checkpoint"].as_str().unwrap().to_string()
}

#[test]
fn prompts_and_chords_use_the_conditioned_model() {
    let prompt =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/midi/pop909/091/091.mid");
    let prompt = prompt.to_str().unwrap();
    // Two Euler steps: the plumbing, not the music (debug builds are slow).
    let fast = ["--steps", "2", "--method", "euler", "--num-samples", "1"];
    let cases: [(&str, Vec<&str>, &str); 3] = [
        ("new", vec![], "embedded:default"),
        (
            "continue",
            vec!["--prompt", prompt, "--keep-bars", "4"],
            "embedded:conditioned",
        ),
        (
            "chords",
            vec!["--chords", "C | G | Am | F"],
            "embedded:conditioned",
        ),
    ];
    for (name, extra, want) in cases {
        let out = tmp(name);
        let mut args = vec!["--out", out.to_str().unwrap()];
        args.extend(fast);
        args.extend(extra);
        let (ok, text) = generate(&args);
        assert!(ok, "{name}: {text}");
        assert_eq!(checkpoint_of(&out), want, "{name}");

        // The replay finds the same embedded model and writes the same file.
        let again = tmp(&format!("{name}-replay"));
        let side = out.join("sample_0000.json");
        let (ok, text) = generate(&[
            "--replay",
            side.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ]);
        assert!(ok, "{name} replay: {text}");
        assert_eq!(
            std::fs::read(out.join("sample_0000.mid")).unwrap(),
            std::fs::read(again.join("sample_0000.mid")).unwrap(),
            "{name}: the replay differs"
        );
    }
}
