#!/usr/bin/env bash
# Chord following: for windows of the held-out POP909 songs, samples made over each window's
# annotated chords and the same samples (same seeds) made without them, then
# `evaluate --chords` (chord tones, bass on root) beside the songs' own music against its chords.
#   tools/eval_chords.sh CKPT OUT_DIR [extra generate flags...]
# Needs target/release/{generate,evaluate} (or BIN) and REF: the held-out song folders.
set -euo pipefail
ckpt=$1; out=$2; shift 2
REF=${REF:?set REF to the folder of held-out song folders}; BIN=${BIN:-target/release}
BARS=${BARS:-"9 25 41"}; SEEDS=${SEEDS:-"1 2"}
rm -rf "$out"; mkdir -p "$out/with" "$out/without"
# Each window gets its own seeds (shared by its pair): a baseline of a few repeated samples would
# make the baseline's OA meaningless.
n=0
for song in "$REF"/*/*.mid; do
  id=$(basename "$song" .mid)
  for bar in $BARS; do
    n=$((n + 1))
    for s in $SEEDS; do
      seed=$((1000 * s + n))
      "$BIN/generate" --ckpt "$ckpt" --chords-from "$song" --from-bar "$bar" --class pop \
        --seed "$seed" --num-samples 1 --out "$out/with/${id}_${bar}_${s}" "$@" >/dev/null 2>&1 || true
      "$BIN/generate" --ckpt "$ckpt" --class pop \
        --seed "$seed" --num-samples 1 --out "$out/without/${id}_${bar}_${s}" "$@" >/dev/null 2>&1 || true
    done
  done
done
"$BIN/evaluate" --ckpt "$ckpt" --chords "$out/with" --baseline "$out/without" --json "$out/chords.json" | tee "$out/report.txt"
"$BIN/evaluate" --generated "$out/with" --reference "$REF" --no-baselines | tail -6 | tee -a "$out/report.txt"
"$BIN/evaluate" --generated "$out/without" --reference "$REF" --no-baselines | tail -6 | tee -a "$out/report.txt"
