#!/usr/bin/env python3
"""Prints a Markdown table of the dev evaluations in fastdiss-train metrics.jsonl files.

Usage: scripts/metrics-table.py NAME=runs/x/metrics.jsonl [NAME=...]
One row per (run, evaluated step): dev BLEU at each K, and the run's training time at that step.
"""
import json
import sys


def load(path):
    evals, elapsed = [], {}
    offset = 0.0  # elapsed_seconds restarts at 0 when a run is resumed
    last = 0.0
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["event"] == "train":
                if record["elapsed_seconds"] < last:
                    offset += last
                last = record["elapsed_seconds"]
                elapsed[record["step"]] = offset + last
            elif record["event"] == "eval":
                evals.append(record)
    return evals, elapsed


def main(args):
    if not args:
        sys.exit(__doc__)
    runs = [arg.split("=", 1) for arg in args]
    steps = None
    rows = []
    for name, path in runs:
        evals, elapsed = load(path)
        for record in evals:
            ks = [r["steps"] for r in record["results"]]
            steps = steps or ks
            minutes = max((s for s in elapsed if s <= record["step"]), default=None)
            t = elapsed.get(minutes, 0.0) / 60.0
            bleu = {r["steps"]: r["bleu"] for r in record["results"]}
            rows.append((name, record["step"], t, [bleu.get(k) for k in steps]))
    print("| run | step | train minutes | " + " | ".join(f"K={k}" for k in steps) + " |")
    print("|---|---:|---:|" + "---:|" * len(steps))
    for name, step, minutes, values in rows:
        cells = " | ".join("" if v is None else f"{v:.2f}" for v in values)
        print(f"| {name} | {step} | {minutes:.1f} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1:])
