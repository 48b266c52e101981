#!/usr/bin/env python3
"""Plots which timesteps a training run's trained pass visits, and its error there.

    scripts/plot-timesteps.py OUT.png RUN_DIR [RUN_DIR ...] [--title TEXT]

Each RUN_DIR is a fastdiss-train output folder. Its metrics.jsonl "train" events carry t_share
(the share of target tokens trained in each tenth of [0, T)) and t_mse (their MSE); the plot
averages them over the run's events, weighting the MSE by the tokens behind it. Left: where the
tokens train; right: how wrong the trained pass is there. Needs python3-matplotlib.
"""
import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def timesteps(run_dir):
    """(share per bin, MSE per bin) averaged over a run's train events."""
    shares, errors = None, None
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            event = json.loads(line)
            if event.get("event") != "train" or "t_share" not in event:
                continue
            share = event["t_share"]
            mse = [m if m is not None else 0.0 for m in event["t_mse"]]
            if shares is None:
                shares, errors = [0.0] * len(share), [0.0] * len(share)
            for b, (s, m) in enumerate(zip(share, mse)):
                shares[b] += s
                errors[b] += s * m
    if shares is None:
        raise SystemExit(f"{run_dir}: no train event with t_share")
    total = sum(shares)
    mse = [e / s if s > 0 else float("nan") for e, s in zip(errors, shares)]
    return [s / total for s in shares], mse


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / len(args.runs)
    for i, run in enumerate(args.runs):
        share, mse = timesteps(run)
        name = os.path.basename(os.path.normpath(run))
        xs = [b + (i - (len(args.runs) - 1) / 2) * width for b in range(len(share))]
        left.bar(xs, [100 * s for s in share], width, label=name)
        right.bar(xs, mse, width, label=name)
    labels = [f"{b / 10:.1f}" for b in range(10)]
    for ax, ylabel in ((left, "target tokens trained, %"), (right, "MSE of the trained pass")):
        ax.set_xticks(range(10))
        ax.set_xticklabels(labels)
        ax.set_xlabel("timestep t / T (start of each tenth)")
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    left.legend()
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)


if __name__ == "__main__":
    main()
