#!/usr/bin/env python3
"""Plots dev PER against training step at two step counts K, one line per training run.

    scripts/plot-dev-curves.py OUT.png RUN_DIR [RUN_DIR ...] [--steps 2,5] [--title TEXT]

Each RUN_DIR is a fastdiss-train output folder; its metrics.jsonl holds one "eval" event per
dev evaluation. The line's colour follows the run name's first word (baseline, fastdiss, ...),
its style the second (d256, d128, ...).
Needs matplotlib (Debian: python3-matplotlib).
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLOURS = ["tab:blue", "tab:red", "tab:green", "tab:gray", "tab:purple", "tab:orange"]
LINES = ["-", ":", "--", "-."]


def dev_curve(run_dir):
    """[(step, {K: per})] from a run's metrics.jsonl, in file order."""
    curve = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            event = json.loads(line)
            if event.get("event") == "eval":
                curve.append((event["step"], {r["steps"]: 100 * r["per"] for r in event["results"]}))
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--steps", default="2,5")
    parser.add_argument("--title", default="dev PER")
    args = parser.parse_args()
    ks = [int(k) for k in args.steps.split(",")]
    kinds, variants = [], []
    fig, axes = plt.subplots(1, len(ks), figsize=(5.5 * len(ks), 4), squeeze=False)
    for run in args.runs:
        name = os.path.basename(os.path.normpath(run))
        words = name.split("-")
        kind, variant = words[0], words[1] if len(words) > 1 else ""
        kinds += [kind] if kind not in kinds else []
        variants += [variant] if variant not in variants else []
        colour = COLOURS[kinds.index(kind) % len(COLOURS)]
        line = LINES[variants.index(variant) % len(LINES)]
        curve = dev_curve(run)
        for ax, k in zip(axes[0], ks):
            points = [(step, per[k]) for step, per in curve if k in per]
            ax.plot([p[0] for p in points], [p[1] for p in points], color=colour, linestyle=line, marker="o", label=name)
    for ax, k in zip(axes[0], ks):
        ax.set_xlabel("training step")
        ax.set_ylabel(f"dev PER at K = {k}, %")
        ax.set_title(f"{args.title}, K = {k}")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
    main()
