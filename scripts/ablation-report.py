#!/usr/bin/env python3
"""Tables, rows and plots from scripts/ablation.sh's runs (issue 4).

    python3 scripts/ablation-report.py [--docs DOCS_DIR] RUNS_DIR...   (docs; runs/ablation)

Each RUNS_DIR is one setting (a budget on one machine; its name labels the rows). A setting
named sweep-* is one point of the knob sweep: FastDiSS with one knob changed. The sweep points
of a task get one table and one plot together, beside FastDiSS as configured from the first
other setting with test scores for the same seeds. Reads
RUNS_DIR/TASK/VARIANT-sSEED/{eval.json,metrics.jsonl}: the test scores of eval.json, or, for a
run whose eval.json is missing or empty, the dev scores of its last evaluation during training
(metrics.jsonl.full, else metrics.jsonl). Writes
  DOCS_DIR/results.json   a list of {setting, task, variant, seed, split, train_steps, steps, bleu,
                          per, gap} rows (split: test or dev; gap: the approximation gap at that K
                          where measured, else null), plus each run's sentences/s per K and
                          training steps/time in "runs";
  stdout                  Markdown tables per setting and task: BLEU (and PER) per variant and K,
                          the gap at K = 5 and 20, and the decode speed per K;
  DOCS_DIR/results-bleu-SETTING-TASK.png   BLEU against K per variant (mean, min-max band);
  DOCS_DIR/results-loss-SETTING-TASK.png   training-loss curves per run (once per set of runs);
  DOCS_DIR/results-sweep-TASK.png          BLEU against K per sweep point and as configured.
The plots need matplotlib (Debian's python3-matplotlib; run with /usr/bin/python3).
"""
import json
import pathlib
import re
import statistics
import sys

VARIANTS = ["baseline", "scp", "mans", "fastdiss"]


def read_events(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def load_runs(root):
    setting = pathlib.Path(root).name
    runs = []
    for run_dir in sorted(p for p in pathlib.Path(root).glob("*/*") if p.is_dir()):
        m = re.match(r"(.+)-s(\d+)$", run_dir.name)
        if not m or m.group(1) not in VARIANTS:
            continue
        events = read_events(run_dir / "metrics.jsonl")
        full = read_events(run_dir / "metrics.jsonl.full") or events
        curve = [(e["step"], e["loss"], e.get("elapsed_seconds", 0)) for e in events if e.get("event") == "train"]
        eval_path = run_dir / "eval.json"
        if eval_path.exists() and eval_path.stat().st_size > 0:
            evaluation, split = json.loads(eval_path.read_text()), "test"
            train_steps = curve[-1][0] if curve else None
        else:
            dev = [e for e in full if e.get("event") == "eval"]
            if not dev:
                continue
            evaluation, split = {"results": dev[-1]["results"], "sentences": None}, "dev"
            train_steps = dev[-1]["step"]
            curve = [(e["step"], e["loss"], e.get("elapsed_seconds", 0)) for e in full
                     if e.get("event") == "train" and e["step"] <= train_steps]
        runs.append({"setting": setting, "task": run_dir.parent.name, "variant": m.group(1),
                     "seed": int(m.group(2)), "split": split, "train_steps": train_steps,
                     "eval": evaluation, "curve": curve})
    return runs


def rows(runs):
    out = []
    for run in runs:
        gaps = {g["steps"]: g["gap"] for g in run["eval"].get("gap", [])}
        for r in run["eval"]["results"]:
            out.append({"setting": run["setting"], "task": run["task"], "variant": run["variant"],
                        "seed": run["seed"], "split": run["split"], "train_steps": run["train_steps"],
                        "steps": r["steps"], "bleu": r["bleu"], "per": r.get("per"), "gap": gaps.get(r["steps"]),
                        "sentences_per_second": r.get("sentences_per_second"),
                        "sentences": run["eval"].get("sentences")})
    return out


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.mean(values) if values else None


def fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def tables(setting, task, task_rows):
    ks = sorted({r["steps"] for r in task_rows})
    variants = [v for v in VARIANTS if any(r["variant"] == v for r in task_rows)]
    split = "/".join(sorted({r["split"] for r in task_rows}))
    trained = sorted({r["train_steps"] for r in task_rows if r["train_steps"] is not None})
    has_per = task == "g2p"  # phoneme error rate means something for g2p only
    task = f"{setting}, {task}"
    lines = [f"### {task}: {split} BLEU after {'/'.join(map(str, trained))} training steps "
             "(mean over seeds; seeds in brackets)\n",
             "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for v in variants:
        cells = []
        for k in ks:
            rs = [r for r in task_rows if r["variant"] == v and r["steps"] == k]
            cells.append(f"{fmt(mean(r['bleu'] for r in rs))} [{len(rs)}]")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    if has_per and any(r["per"] not in (None, 0) for r in task_rows):
        lines += ["", f"### {task}: {split} phoneme error rate, % (mean over seeds)\n",
                  "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(
                fmt(mean(100 * r["per"] for r in task_rows if r["variant"] == v and r["steps"] == k and r["per"] is not None))
                for k in ks) + " |")
    gap_ks = sorted({r["steps"] for r in task_rows if r["gap"] is not None})
    if gap_ks:
        lines += ["", f"### {task}: approximation gap (docs/method.md section 7; lower is better)\n",
                  "| variant | " + " | ".join(f"K={k}" for k in gap_ks) + " |", "|---|" + "---|" * len(gap_ks)]
        for v in variants:
            lines.append(f"| {v} | " + " | ".join(
                fmt(mean(r["gap"] for r in task_rows if r["variant"] == v and r["steps"] == k), 4) for k in gap_ks) + " |")
    lines += ["", f"### {task}: decode speed, sentences/s ({split} set, batched, mean over runs)\n",
              "| variant | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(
            fmt(mean(r["sentences_per_second"] for r in task_rows if r["variant"] == v and r["steps"] == k), 1)
            for k in ks) + " |")
    return "\n".join(lines)


def is_sweep(setting):
    return setting.startswith("sweep-")


def sweep_series(task, all_rows):
    """[(label, rows)]: FastDiSS as configured, then each sweep point; [] without a reference.

    Only test scores count, and the reference must come from a setting scored on the same
    number of test sentences after the same number of training steps, on every seed the sweep
    used (the first such setting given).
    """
    sweep_rows = []
    for r in all_rows:
        if r["task"] == task and is_sweep(r["setting"]):
            if r["split"] == "test" and r["variant"] == "fastdiss":
                sweep_rows.append(r)
            elif r["steps"] == 5:
                print(f"sweep: {r['setting']} {r['variant']}-s{r['seed']} left out: it has no test scores "
                      f"(or is not fastdiss)", file=sys.stderr)
    points = list(dict.fromkeys(r["setting"] for r in sweep_rows))
    seeds = {r["seed"] for r in sweep_rows}
    budget = {(r["sentences"], r["train_steps"]) for r in sweep_rows}
    for setting in dict.fromkeys(r["setting"] for r in all_rows if not is_sweep(r["setting"])):
        ref = [r for r in all_rows if r["setting"] == setting and r["task"] == task and r["variant"] == "fastdiss"
               and r["split"] == "test" and r["seed"] in seeds and (r["sentences"], r["train_steps"]) in budget]
        if {r["seed"] for r in ref} == seeds:
            return [(f"fastdiss as configured ({setting})", ref)] + \
                [(p, [r for r in sweep_rows if r["setting"] == p]) for p in points]
    print(f"sweep, {task}: no setting scores FastDiSS as configured on seeds {sorted(seeds)} with the same "
          "test set and budget; sweep left out", file=sys.stderr)
    return []


def paired_difference(rs, ref, k):
    """Mean over rs's seeds of its BLEU at K = k minus the reference's for the same seed."""
    by_seed = {r["seed"]: r["bleu"] for r in ref if r["steps"] == k}
    return mean(r["bleu"] - by_seed[r["seed"]] for r in rs if r["steps"] == k and r["seed"] in by_seed)


def sweep_table(task, series):
    ks = sorted({r["steps"] for _, rs in series for r in rs})
    ref = series[0][1]
    lines = [f"### knob sweep, {task}: FastDiSS test BLEU per setting (mean over seeds; seeds in brackets)\n",
             "| setting | " + " | ".join(f"K={k}" for k in ks) + " | K=5 vs as configured, same seeds | gap K=5 | gap K=20 |",
             "|---|" + "---|" * (len(ks) + 3)]
    for i, (label, rs) in enumerate(series):
        cells = []
        for k in ks:
            at_k = [r for r in rs if r["steps"] == k]
            cells.append(f"{fmt(mean(r['bleu'] for r in at_k))} [{len(at_k)}]" if at_k else "-")
        paired = "" if i == 0 else f"{paired_difference(rs, ref, 5):+.2f}"
        gaps = [fmt(mean(r["gap"] for r in rs if r["steps"] == k), 4) for k in (5, 20)]
        lines.append(f"| {label} | " + " | ".join(cells + [paired] + gaps) + " |")
    return "\n".join(lines)


def axes():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(7, 4))


def save(fig, ax, path):
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot(title, runs, path):
    fig, ax = axes()
    for run in runs:
        if run["curve"]:
            steps, losses, _ = zip(*run["curve"])
            ax.plot(steps, losses, label=f"{run['variant']} seed {run['seed']}", linewidth=1)
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (mse + rounding CE + length CE)")
    ax.set_title(f"{title}: training loss")
    save(fig, ax, path)


def plot_bleu(title, series, path):
    """BLEU against K for each (label, rows) of series: the mean, and a min-max band over seeds."""
    fig, ax = axes()
    for label, rs in series:
        ks = sorted({r["steps"] for r in rs})
        if not ks:
            continue
        per_k = [[r["bleu"] for r in rs if r["steps"] == k] for k in ks]
        line, = ax.plot(ks, [statistics.mean(b) for b in per_k], marker="o", label=f"{label} ({len(per_k[0])} seeds)")
        ax.fill_between(ks, [min(b) for b in per_k], [max(b) for b in per_k], color=line.get_color(), alpha=0.15)
    ax.set_xscale("log")
    ax.set_xlabel("denoising steps K")
    ax.set_ylabel("BLEU (mean; band: min-max over seeds)")
    ax.set_title(f"{title}: BLEU against K")
    save(fig, ax, path)


def main():
    args = sys.argv[1:]
    docs = pathlib.Path("docs")
    if args[:1] == ["--docs"]:
        docs, args = pathlib.Path(args[1]), args[2:]
    roots = args or ["runs/ablation"]
    runs = [run for root in roots for run in load_runs(root)]
    if not runs:
        print(f"no runs under {', '.join(roots)}", file=sys.stderr)
        return 1
    all_rows = rows(runs)
    summary = [{"setting": r["setting"], "task": r["task"], "variant": r["variant"], "seed": r["seed"],
                "split": r["split"], "train_steps": r["train_steps"],
                "train_seconds": r["curve"][-1][2] if r["curve"] else None,
                "eval_sentences": r["eval"].get("sentences")} for r in runs]
    (docs / "results.json").write_text(json.dumps({"rows": all_rows, "runs": summary}, indent=1) + "\n")
    plotted = set()  # a setting that re-scores another's checkpoints has the same curves
    for setting in dict.fromkeys(r["setting"] for r in runs if not is_sweep(r["setting"])):
        for task in sorted({r["task"] for r in runs if r["setting"] == setting}):
            print(tables(setting, task, [r for r in all_rows if r["setting"] == setting and r["task"] == task]))
            print()
            try:
                task_rows = [r for r in all_rows if r["setting"] == setting and r["task"] == task]
                plot_bleu(f"{setting}, {task}", [(v, [r for r in task_rows if r["variant"] == v]) for v in VARIANTS],
                          docs / f"results-bleu-{setting}-{task}.png")
            except ImportError:
                print(f"(no matplotlib: results-bleu-{setting}-{task}.png not drawn)", file=sys.stderr)
            curves = {(r["task"], r["variant"], r["seed"], tuple(r["curve"]))
                      for r in runs if r["setting"] == setting and r["task"] == task}
            if curves <= plotted:
                continue
            plotted |= curves
            try:
                plot(f"{setting}, {task}", [r for r in runs if r["setting"] == setting and r["task"] == task],
                     docs / f"results-loss-{setting}-{task}.png")
            except ImportError:
                print(f"(no matplotlib: results-loss-{setting}-{task}.png not drawn)", file=sys.stderr)
    for task in sorted({r["task"] for r in runs if is_sweep(r["setting"])}):
        series = sweep_series(task, all_rows)
        if not series:
            continue
        print(sweep_table(task, series))
        print()
        try:
            plot_bleu(f"knob sweep, {task}, FastDiSS", series, docs / f"results-sweep-{task}.png")
        except ImportError:
            print(f"(no matplotlib: results-sweep-{task}.png not drawn)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
