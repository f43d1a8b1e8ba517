#!/usr/bin/env bash
# Evaluate a checkpoint's pop samples against held-out POP909 songs, with a ceiling from the
# training songs.   tools/eval_model.sh CKPT OUT_DIR [N_SAMPLES] [extra generate flags...]
# Needs: target/release/{generate,evaluate}; REF (held-out songs) and TRAIN folders of POP909,
# e.g. REF=eval/ref TRAIN=eval/train tools/eval_model.sh runs/x/checkpoints/model.safetensors out/x
set -euo pipefail
ckpt=$1; out=$2; n=${3:-200}; shift 3 || true
REF=${REF:?set REF to a folder of held-out POP909 songs}
TRAIN=${TRAIN:?set TRAIN to a folder of training POP909 songs}
rm -rf "$out"; mkdir -p "$out"
target/release/generate --ckpt "$ckpt" --out "$out/gen" --num-samples "$n" --class pop --seed 1000 "$@" 2>&1 | tail -1
target/release/evaluate --generated "$out/gen" --reference "$REF" --train "$TRAIN" --seed 1 \
  --png "$out/oa.png" --json "$out/report.json" > "$out/report.txt" 2>&1
tail -25 "$out/report.txt"
