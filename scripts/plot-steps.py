#!/usr/bin/env python3
"""Plots test scores against the number of denoising steps K, one line per fastdiss-eval run.

    scripts/plot-steps.py OUT.png LABEL=EVAL.json [LABEL=EVAL.json ...] [--metric bleu|per|wer]
                          [--title TEXT]

Each EVAL.json is what `fastdiss-eval --json` printed. K is drawn on a log scale; a line's
legend names its label and how many sentences it scored. Needs python3-matplotlib.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

METRICS = {"bleu": ("BLEU", 1.0), "per": ("phoneme error rate, %", 100.0),
           "wer": ("word error rate, %", 100.0)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+", help="LABEL=EVAL.json")
    parser.add_argument("--metric", choices=sorted(METRICS), default="bleu")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    name, scale = METRICS[args.metric]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in args.runs:
        label, sep, path = run.partition("=")
        if not sep:
            parser.error(f"expected LABEL=EVAL.json, got {run!r}")
        with open(path) as f:
            evaluation = json.load(f)
        points = sorted((r["steps"], scale * r[args.metric]) for r in evaluation["results"])
        ax.plot([k for k, _ in points], [v for _, v in points], marker="o",
                label=f"{label} ({evaluation['sentences']} words)")
    ax.set_xscale("log")
    ax.set_xlabel("denoising steps K")
    ax.set_ylabel(name)
    ax.set_title(args.title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
