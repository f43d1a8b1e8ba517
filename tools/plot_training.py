#!/usr/bin/env python3
"""Plot a run's training curve from RUN/log.jsonl (loss smoothed, EMA-1 validation loss, lr).
    python3 tools/plot_training.py RUN/log.jsonl docs/training-curve.png"""
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

log, out = sys.argv[1], sys.argv[2]
# A resumed run replays the steps after its last checkpoint: the last record of a step wins.
train, val = {}, {}
for line in open(log):
    d = json.loads(line)
    if "val_loss" in d:
        val[d["step"]] = d["val_loss"]
    elif "loss" in d:
        train[d["step"]] = d
steps = sorted(train); vsteps = sorted(val)
loss = [train[s]["loss"] for s in steps]; smooth = [train[s]["loss_smooth"] for s in steps]
lr = [train[s]["lr"] for s in steps]; vloss = [val[s] for s in vsteps]
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(steps, loss, lw=0.3, alpha=0.3, color="tab:blue", label="training loss (per step)")
ax.plot(steps, smooth, lw=1.2, color="tab:blue", label="training loss (smoothed)")
if vsteps:
    ax.plot(vsteps, vloss, "o-", ms=3, color="tab:red", label="validation loss, EMA-1 weights (held-out files)")
ax.set_yscale("log"); ax.set_xlabel("step (batch 32)"); ax.set_ylabel("v-loss")
ax.set_ylim(top=max(1.0, min(5.0, max(smooth[len(smooth)//50:] or [1]))))
ax2 = ax.twinx(); ax2.plot(steps, lr, color="gray", lw=0.8, ls="--", label="learning rate"); ax2.set_ylabel("learning rate")
h1, l1 = ax.get_legend_handles_labels(); h2, l2 = ax2.get_legend_handles_labels()
ax.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
ax.set_title("JiT-Music default model: training curve")
fig.tight_layout(); fig.savefig(out, dpi=110)
print(f"wrote {out}")
