#!/usr/bin/env python3
"""Markdown tables from scripts/bench-scheduling.sh's results.jsonl.

    scripts/bench-scheduling-report.py [RESULTS_JSONL] [--target-ms MS]

Prints the adaptive-steps table (fixed K against a step range, per rate, with the quality of the
answers given), the first rate at which each one's p99 passes the latency target, and the
overload table of the deadline settings.
"""
import argparse
import json


def score(run, key):
    value = run["score"].get(key)
    return "-" if value is None else f"{value:.2f}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results", nargs="?", default="runs/bench-scheduling/results.jsonl")
    parser.add_argument("--target-ms", default="1000,2000,4000", help="latency targets, comma-separated")
    args = parser.parse_args()
    runs = [json.loads(line) for line in open(args.results) if line.strip()]
    by_name = {run["name"]: run for run in runs}

    rates = sorted({run["rate"] for run in runs if run["name"].startswith("fixed-r")})
    if rates:
        print("| rate (calls/s) | mode | mean K | answers/s | p50 ms | p99 ms | failed | BLEU | PER % | WER % |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        targets = [float(t) for t in args.target_ms.split(",")]
        crossing = {}
        for rate in rates:
            for mode in ("fixed", "range"):
                run = by_name.get(f"{mode}-r{rate:g}")
                if run is None:
                    continue
                failed = sum(run["errors"].values())
                print(f"| {rate:g} | {mode} | {run['mean_planned_steps']:.1f} | {run['goodput_rps']:.1f} | "
                      f"{run['p50_ms']:.0f} | {run['p99_ms']:.0f} | {failed} | {score(run, 'bleu')} | "
                      f"{score(run, 'per')} | {score(run, 'wer')} |")
                for target in targets:
                    if (mode, target) not in crossing and (run["p99_ms"] > target or failed > 0):
                        crossing[(mode, target)] = rate
        print()
        print("| p99 target | fixed K: first rate past it | range: first rate past it |")
        print("|---|---|---|")
        for target in targets:
            cells = []
            for mode in ("fixed", "range"):
                rate = crossing.get((mode, target))
                cells.append(f"{rate:g} calls/s" if rate is not None else f"beyond {rates[-1]:g}")
            print(f"| {target:.0f} ms | {cells[0]} | {cells[1]} |")
        print()

    overload = [run for run in runs if run["name"].startswith("overload-")]
    if overload:
        print("| setting | answers/s (goodput) | OK | DEADLINE_EXCEEDED | other errors | wasted steps | p99 ms |")
        print("|---|---|---|---|---|---|---|")
        for run in overload:
            late = run["errors"].get("DEADLINE_EXCEEDED", 0)
            other = sum(n for code, n in run["errors"].items() if code != "DEADLINE_EXCEEDED")
            print(f"| {run['name'][len('overload-'):]} | {run['goodput_rps']:.1f} | {run['ok']} | {late} | {other} | "
                  f"{100 * run['wasted_share']:.1f}% | {run['p99_ms']:.0f} |")


if __name__ == "__main__":
    main()
