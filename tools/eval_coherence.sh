#!/usr/bin/env bash
# Coherence with a prompt: continue (keep 4 bars) and fill (bars 5-6) windows of the held-out
# POP909 songs, then `evaluate --coherence` beside the songs' real bars and another song's.
#   tools/eval_coherence.sh CKPT OUT_DIR [extra generate flags...]
# CKPT may be "default" (the embedded model). Needs target/release/{generate,evaluate};
# REF: the held-out song folders (POP909 layout, beat annotations beside each file).
set -euo pipefail
ckpt=$1; out=$2; shift 2
REF=${REF:?set REF to the folder of held-out song folders}; BIN=${BIN:-target/release}
BARS=${BARS:-"9 25 41"}; SEEDS=${SEEDS:-"1 2"}
ck=(); [ "$ckpt" != default ] && ck=(--ckpt "$ckpt")
rm -rf "$out"; mkdir -p "$out/continue" "$out/fill"
for song in "$REF"/*/*.mid; do
  id=$(basename "$song" .mid)
  for bar in $BARS; do
    for seed in $SEEDS; do
      "$BIN/generate" "${ck[@]}" --prompt "$song" --from-bar "$bar" --keep-bars 4 --class pop \
        --seed "$seed" --num-samples 1 --out "$out/continue/${id}_${bar}_${seed}" "$@" >/dev/null 2>&1 || true
    done
    "$BIN/generate" "${ck[@]}" --prompt "$song" --from-bar "$bar" --fill 5..6 --class pop \
      --seed 1 --num-samples 1 --out "$out/fill/${id}_${bar}" "$@" >/dev/null 2>&1 || true
  done
done
"$BIN/evaluate" "${ck[@]}" --coherence "$out/continue" --json "$out/continue.json" | tee "$out/report.txt"
"$BIN/evaluate" "${ck[@]}" --coherence "$out/fill" --json "$out/fill.json" | tee -a "$out/report.txt"
