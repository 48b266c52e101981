#!/usr/bin/env python3
"""Summarises a `fastdiss-train --profile TRACE` Chrome trace: where a training step's time goes.

Prints, per step (mean over the steps after --skip, which drops the warm-up ones):
  - each phase the trainer marks (fastdiss::batch, encode, mans_probe, self_cond_pass,
    trained_pass, backward, all_reduce, optimizer) in ms and as a share of the step;
  - the operators with the most self time (time not spent in a nested operator), with the phase
    they ran in.

Usage: scripts/profile-summary.py TRACE [--skip 2] [--top 15]
"""
import argparse
import collections
import json
import sys

STEP = "fastdiss::step"
PHASES = ["fastdiss::batch", "fastdiss::forward", "fastdiss::encode", "fastdiss::mans_probe",
          "fastdiss::self_cond_pass", "fastdiss::trained_pass", "fastdiss::backward",
          "fastdiss::all_reduce", "fastdiss::optimizer"]
# The phases that do not nest in each other (forward holds encode .. trained_pass).
LEAF_PHASES = [p for p in PHASES if p != "fastdiss::forward"]


def load(path):
    with open(path) as f:
        events = json.load(f)
    if isinstance(events, dict):
        events = events.get("traceEvents", [])
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    if not spans:
        sys.exit(f"{path}: no complete ('X') events; is it a fastdiss-train --profile trace?")
    return spans


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trace")
    parser.add_argument("--skip", type=int, default=2, help="first steps left out (warm-up)")
    parser.add_argument("--top", type=int, default=15, help="operators listed")
    args = parser.parse_args()
    spans = load(args.trace)

    steps = sorted((e for e in spans if e["name"] == STEP), key=lambda e: e["ts"])
    if len(steps) <= args.skip:
        sys.exit(f"{args.trace}: {len(steps)} steps recorded, none left after --skip {args.skip}")
    counted = steps[args.skip:]
    windows = [(s["ts"], s["ts"] + s["dur"]) for s in counted]

    def in_window(e):
        for start, end in windows:
            if start <= e["ts"] and e["ts"] + e["dur"] <= end:
                return True
        return False

    n = len(counted)
    step_us = sum(s["dur"] for s in counted) / n
    phase_us = collections.Counter()
    for e in spans:
        if e["name"] in PHASES and in_window(e):
            phase_us[e["name"]] += e["dur"]

    # Self time per operator and the leaf phase it ran in, thread by thread.
    by_thread = collections.defaultdict(list)
    for e in spans:
        if in_window(e):
            by_thread[e.get("tid", 0)].append(e)
    self_us = collections.Counter()
    calls = collections.Counter()
    for events in by_thread.values():
        events.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []  # [event, child time, phase]
        def close(entry):
            event, child, phase = entry
            if event["name"].startswith("fastdiss::"):
                return
            self_us[(event["name"], phase)] += event["dur"] - child
            calls[(event["name"], phase)] += 1
        for e in events:
            while stack and stack[-1][0]["ts"] + stack[-1][0]["dur"] <= e["ts"]:
                close(stack.pop())
            if stack:
                stack[-1][1] += e["dur"]
            phase = e["name"] if e["name"] in LEAF_PHASES else (stack[-1][2] if stack else "-")
            stack.append([e, 0, phase])
        while stack:
            close(stack.pop())

    print(f"{n} steps after skipping {args.skip}: {step_us / 1000:.1f} ms per step (profiler on)")
    print(f"{'phase':<28}{'ms/step':>10}{'share':>8}")
    for p in PHASES:
        if p in phase_us:
            us = phase_us[p] / n
            indent = "  " if p in ("fastdiss::encode", "fastdiss::mans_probe", "fastdiss::self_cond_pass",
                                   "fastdiss::trained_pass") else ""
            print(f"{indent + p[len('fastdiss::'):]:<28}{us / 1000:>10.1f}{100 * us / step_us:>7.1f}%")
    covered = sum(phase_us[p] for p in LEAF_PHASES) / n
    print(f"{'(outside the phases)':<28}{(step_us - covered) / 1000:>10.1f}{100 * (step_us - covered) / step_us:>7.1f}%")
    if not self_us:
        return  # phases only (no --profile-operators)
    print()
    print(f"top {args.top} operators by self time, per step")
    print(f"{'operator':<40}{'phase':<18}{'calls':>7}{'ms/step':>10}{'share':>8}")
    for (name, phase), us in self_us.most_common(args.top):
        phase_name = phase[len("fastdiss::"):] if phase.startswith("fastdiss::") else phase
        print(f"{name[:39]:<40}{phase_name:<18}{calls[(name, phase)] / n:>7.0f}{us / n / 1000:>10.2f}"
              f"{100 * us / n / step_us:>7.1f}%")


if __name__ == "__main__":
    main()
