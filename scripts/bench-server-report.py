#!/usr/bin/env python3
"""Tables (Markdown, to stdout) and a latency plot from scripts/bench-server.sh's output.

    python3 scripts/bench-server-report.py runs/bench-server [docs/serving-latency.png]

The plot needs matplotlib (Debian: python3-matplotlib, run with /usr/bin/python3); without a
second argument only the tables are printed.
"""
import json
import pathlib
import sys

POLICIES = ["step", "request", "none", "pytorch"]


def load(folder):
    runs = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        report = json.loads(path.read_text())
        runs[report["name"]] = report
    return runs


def ks(report):
    return sorted(int(k[2:]) for k in report["latency"] if k.startswith("K="))


def idle_table(runs):
    lines = ["| K | calls | p50 ms | p90 ms | p99 ms | mean ms |", "|---|---|---|---|---|---|"]
    for name in sorted((n for n in runs if n.startswith("idle-k")), key=lambda n: int(n[6:])):
        s = runs[name]["latency"]["all"]
        lines.append(f"| {name[6:]} | {s['count']} | {s['p50_ms']:.1f} | {s['p90_ms']:.1f} | {s['p99_ms']:.1f} "
                     f"| {s['mean_ms']:.1f} |")
    return "\n".join(lines)


def load_table(runs, mode):
    present = [p for p in POLICIES if f"{mode}-{p}" in runs]
    if not present:
        return ""
    first = runs[f"{mode}-{present[0]}"]
    steps = ks(first)
    head = ["policy", "OK/s", "errors", "p50 ms", "p99 ms"]
    for k in steps:
        head += [f"K={k} p50", f"K={k} p99"]
    head += ["rows/forward", "ms/forward", "queue p50 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in present:
        r = runs[f"{mode}-{p}"]
        errors = sum(r["errors"].values())
        row = [p, f"{r['throughput_rps']:.1f}", str(errors), f"{r['latency']['all']['p50_ms']:.0f}",
               f"{r['latency']['all']['p99_ms']:.0f}"]
        for k in steps:
            s = r["latency"].get(f"K={k}")
            row += [f"{s['p50_ms']:.0f}", f"{s['p99_ms']:.0f}"] if s else ["-", "-"]
        row += [f"{r['mean_rows_per_forward']:.1f}", f"{r.get('mean_forward_ms', 0):.1f}",
                f"{r['server_queue']['p50_ms']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def ratios(runs):
    """The step policy against the others, in answers/s, and K = 1's p50 under load against idle."""
    lines = []
    for mode in ["fixed", "closed"]:
        step = runs.get(f"{mode}-step")
        if not step:
            continue
        parts = [f"{other} {step['throughput_rps'] / runs[f'{mode}-{other}']['throughput_rps']:.2f}x"
                 for other in POLICIES[1:] if runs.get(f"{mode}-{other}", {}).get("throughput_rps")]
        lines.append(f"- {mode}: step policy against " + ", ".join(parts))
    idle, loaded = runs.get("idle-k1"), runs.get("closed-step", {}).get("latency", {}).get("K=1")
    if idle and loaded:
        p50 = idle["latency"]["all"]["p50_ms"]
        lines.append(f"- K=1 p50 under the closed-loop mixed load: {loaded['p50_ms']:.1f} ms, "
                     f"{loaded['p50_ms'] / p50:.1f}x its idle p50 ({p50:.1f} ms)")
    return "\n".join(lines)


def plot(runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = [m for m in ["closed", "open"] if any(f"{m}-{p}" in runs for p in POLICIES)]
    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4), sharey=False, squeeze=False)
    for ax, mode in zip(axes[0], modes):
        present = [p for p in POLICIES if f"{mode}-{p}" in runs]
        if not present:
            continue
        steps = ks(runs[f"{mode}-{present[0]}"])
        width = 0.8 / len(present)
        for i, p in enumerate(present):
            r = runs[f"{mode}-{p}"]
            x = [j + i * width for j in range(len(steps))]
            p50 = [r["latency"][f"K={k}"]["p50_ms"] for k in steps]
            p99 = [r["latency"][f"K={k}"]["p99_ms"] for k in steps]
            bars = ax.bar(x, p50, width, label=f"{p} p50 ({r['throughput_rps']:.0f} req/s)")
            ax.scatter(x, p99, marker="_", s=200, color=bars.patches[0].get_facecolor(), zorder=3)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(steps))])
        ax.set_xticklabels([f"K={k}" for k in steps])
        ax.set_ylabel("latency, ms (bar p50, tick p99)")
        first = runs[f"{mode}-{present[0]}"]
        title = (f"closed loop, {first['concurrency']} calls open" if mode == "closed"
                 else f"open loop, {first['rate']:.0f} calls/s")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    runs = load(sys.argv[1])
    print("### Idle latency (one call at a time, step policy)\n")
    print(idle_table(runs))
    for mode, title in [("fixed", "Closed loop, K fixed"), ("closed", "Closed loop"), ("open", "Open loop")]:
        table = load_table(runs, mode)
        if table:
            print(f"\n### {title}\n")
            print(table)
    print("\n### Ratios\n")
    print(ratios(runs))
    if len(sys.argv) > 2:
        plot(runs, sys.argv[2])


if __name__ == "__main__":
    main()
