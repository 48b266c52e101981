#!/usr/bin/env python3
"""Tables, rows and plots from scripts/ablation.sh's runs (issue 4).

    python3 scripts/ablation-report.py [RUNS_DIR] [DOCS_DIR]     (runs/ablation, docs)

Reads RUNS_DIR/TASK/VARIANT-sSEED/{eval.json,metrics.jsonl} and writes
  DOCS_DIR/results.json   a list of {task, variant, seed, steps, bleu, per, gap} rows (gap: the
                          approximation gap at that K where measured, else null), plus each run's
                          sentences/s per K and training steps/time in "runs";
  stdout                  Markdown tables per task: test BLEU (and PER) per variant and K, the
                          gap at K = 5 and 20, and the decode speed per K;
  DOCS_DIR/results-loss-TASK.png   training-loss curves per variant (needs matplotlib:
                          Debian's python3-matplotlib, run with /usr/bin/python3).
"""
import json
import pathlib
import re
import statistics
import sys

VARIANTS = ["baseline", "scp", "mans", "fastdiss"]


def load_runs(root):
    runs = []
    for eval_path in sorted(pathlib.Path(root).glob("*/*/eval.json")):
        m = re.match(r"(.+)-s(\d+)$", eval_path.parent.name)
        if not m:
            continue
        evaluation = json.loads(eval_path.read_text())
        curve = []
        metrics = eval_path.parent / "metrics.jsonl"
        if metrics.exists():
            for line in metrics.read_text().splitlines():
                event = json.loads(line)
                if event.get("event") == "train":
                    curve.append((event["step"], event["loss"], event.get("elapsed_seconds", 0)))
        runs.append({"task": eval_path.parent.parent.name, "variant": m.group(1), "seed": int(m.group(2)),
                     "eval": evaluation, "curve": curve})
    return runs


def rows(runs):
    out = []
    for run in runs:
        gaps = {g["steps"]: g["gap"] for g in run["eval"].get("gap", [])}
        for r in run["eval"]["results"]:
            out.append({"task": run["task"], "variant": run["variant"], "seed": run["seed"], "steps": r["steps"],
                        "bleu": r["bleu"], "per": r.get("per"), "gap": gaps.get(r["steps"]),
                        "sentences_per_second": r.get("sentences_per_second")})
    return out


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def tables(task, task_rows):
    ks = sorted({r["steps"] for r in task_rows})
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in task_rows)]
    lines = [f"### {task}: test BLEU (mean over seeds; seeds in brackets)\n",
             "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for v in variants:
        cells = []
        for k in ks:
            rs = [r for r in task_rows if r["variant"] == v and r["steps"] == k]
            cells.append(f"{fmt(mean(r['bleu'] for r in rs))} [{len(rs)}]")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if any(r["per"] not in (None, 0) for r in task_rows):
        lines += ["", f"### {task}: phoneme error rate, % (mean over seeds)\n",
                  "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(
                fmt(mean(100 * r["per"] for r in task_rows if r["variant"] == v and r["steps"] == k and r["per"] is not None))
                for k in ks) + " |")
    gap_ks = sorted({r["steps"] for r in task_rows if r["gap"] is not None})
    if gap_ks:
        lines += ["", f"### {task}: approximation gap (METHOD.md section 7; lower is better)\n",
                  "| variant | " + " | ".join(f"K={k}" for k in gap_ks) + " |", "|---|" + "---|" * len(gap_ks)]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(
                fmt(mean(r["gap"] for r in task_rows if r["variant"] == v and r["steps"] == k), 4) for k in gap_ks) + " |")
    lines += ["", f"### {task}: decode speed, sentences/s (batched, mean over runs)\n",
              "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(
            fmt(mean(r["sentences_per_second"] for r in task_rows if r["variant"] == v and r["steps"] == k), 1)
            for k in ks) + " |")
    return "\n".join(lines)


def plot(task, runs, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for run in runs:
        if run["curve"]:
            steps, losses, _ = zip(*run["curve"])
            ax.plot(steps, losses, label=f"{run['variant']} seed {run['seed']}", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (mse + rounding CE + length CE)")
    ax.set_title(f"{task}: training loss")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runs/ablation"
    docs = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "docs")
    runs = load_runs(root)
    if not runs:
        print(f"no runs under {root}", file=sys.stderr)
        return 1
    all_rows = rows(runs)
    summary = [{"task": r["task"], "variant": r["variant"], "seed": r["seed"],
                "train_steps": r["curve"][-1][0] if r["curve"] else None,
                "train_seconds": r["curve"][-1][2] if r["curve"] else None,
                "test_sentences": r["eval"]["sentences"]} for r in runs]
    (docs / "results.json").write_text(json.dumps({"rows": all_rows, "runs": summary}, indent=1) + "\n")
    for task in sorted({r["task"] for r in runs}):
        print(tables(task, [r for r in all_rows if r["task"] == task]))
        print()
        try:
            plot(task, [r for r in runs if r["task"] == task], docs / f"results-loss-{task}.png")
        except ImportError:
            print(f"(no matplotlib: results-loss-{task}.png not drawn)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
