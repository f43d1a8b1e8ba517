#!/usr/bin/env python3
"""The original data path, timed: pretty_midi.PrettyMIDI(f).get_piano_roll(fs=16) for every
POP909 song, single process (as the original's preprocessing). Compare with
`cargo bench --no-default-features --bench roll_conversion`.

    python3 benches/pretty_midi_rolls.py [FOLDER]   # default: $JIT_MUSIC_DATA/pop909
"""
import glob
import os
import sys
import time

import pretty_midi


def main():
    default = os.path.join(os.environ.get("JIT_MUSIC_DATA", "../shared/data"), "pop909")
    root = sys.argv[1] if len(sys.argv) > 1 else default
    files = sorted(glob.glob(os.path.join(root, "**", "*.mid"), recursive=True))
    if not files:
        sys.exit(f"no .mid files under {root}")
    # Warm the OS file cache so that both sides time parsing, not the disk.
    for f in files:
        with open(f, "rb") as fh:
            fh.read()
    t0 = time.perf_counter()
    frames = 0
    failures = 0
    for f in files:
        try:
            roll = pretty_midi.PrettyMIDI(f).get_piano_roll(fs=16)
            frames += roll.shape[1]
        except Exception:  # noqa: BLE001 - count, as the original skips broken files
            failures += 1
    dt = time.perf_counter() - t0
    print(
        f"pretty_midi get_piano_roll(fs=16): {len(files)} files, {frames} frames, "
        f"{failures} failures, {dt:.2f} s ({dt / len(files) * 1e3:.1f} ms/file)"
    )


if __name__ == "__main__":
    main()
