"""What a tensor API (the Open Inference Protocol: KServe, Triton) changes for training: the
program reaches the model unrounded instead of as an 8-bit PNG.

The default method (zeroth-order steps on a 16×16 W) through the in-process model and the
``coarse-5`` head, once with 8-bit canvases (what every image API sees) and once with float
canvases (``--provider oip``'s default for tensors), at ``--budget`` training queries; and the
same two with the estimator's radius β at a quarter of a grey level per pixel, which an 8-bit
canvas can carry only where a pixel crosses a rounding boundary. 50 training images per class,
split seed 0, ``--test-size`` held-out images (2,000), seeds 0–2, nothing chosen on the test
images. Each run is one line of ``bench/results/tensor_path.jsonl``; a rerun skips what is there.

    python bench/tensor_path.py                # measure (about 30 min on one core), then the table
    python bench/tensor_path.py --report       # bench/results/tensor_path.md from what is measured
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from barapi.config import PRESETS, DataConfig, ProviderConfig, RunConfig
from barapi.data import run_split
from barapi.mock.heads import coarse_model
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.run.planning import iterations_within
from barapi.config import GREY_LEVEL
from barapi.store import Store
from barapi.run.trainer import Trainer
from harness.cells import portfolio_measured_once, whitebox_bounds
from harness.results import read_lines

BENCH = Path(__file__).resolve().parent
WORK, RESULTS = BENCH / ".work", BENCH / "results"
MEASURED = RESULTS / "tensor_path.jsonl"
TASKS = {"tshirt-shirt": "fashion-mnist:T-shirt/top,Shirt", "pullover-coat": "fashion-mnist:Pullover,Coat"}
DEFAULT = PRESETS["default"]
QUARTER_LEVEL_BETA = 0.25 * GREY_LEVEL * math.sqrt(math.prod(DEFAULT.geometry.parameter_shape))
ROWS = {  # name → (canvas encoding, β: None for the default's 1.5 grey levels per pixel)
    "8-bit": ("png8", None), "float": ("float32", None),
    "8-bit, β ¼ level": ("png8", QUARTER_LEVEL_BETA), "float, β ¼ level": ("float32", QUARTER_LEVEL_BETA),
}


def measured() -> list[dict]:
    return read_lines(MEASURED)


def measure(tasks: list[str], seeds: list[int], budget: int, test_size: int, threads: int) -> None:
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    network = ImageNetModel(home=WORK / "home", threads=threads)
    done = {(m["task"], m["row"], m["seed"], m["budget"]) for m in measured()}
    for seed in seeds:
        for task in tasks:
            for row, (encoding, beta) in ROWS.items():
                if (task, row, seed, budget) in done:
                    continue
                method = DEFAULT.model_copy(update={"beta": beta})
                data = DataConfig(dataset=TASKS[task], train_per_class=50, test_size=test_size, split_seed=0)
                split = run_split(RunConfig(name="split", provider=ProviderConfig(name="local"), data=data, method=method))
                method = method.model_copy(update={"iterations": iterations_within(method, len(split.y_train), budget)})
                config = RunConfig(name=f"tensor-{time.time_ns()}", seed=seed, provider=ProviderConfig(name="local"), data=data, method=method)
                classifier = InProcessClassifier(network, served=coarse_model("coarse-5"), canvas_encoding=encoding)
                started = time.monotonic()
                result = Trainer(config, classifier, Store(Path(tempfile.mkdtemp(prefix="tensor-", dir=WORK))), split=split).run()
                entry = {"task": task, "row": row, "seed": seed, "budget": budget, "accuracy": result.test_accuracy,
                         "test_images": len(split.y_test), "iterations": result.iterations, "queries_paid": result.queries_paid,
                         "step_signal": result.step_signal, "beta": method.perturbation_radius, "seconds": round(time.monotonic() - started),
                         "date": time.strftime("%Y-%m-%d")}
                with MEASURED.open("a") as handle:
                    handle.write(json.dumps(entry) + "\n")
                print(json.dumps(entry), flush=True)


def shared_rows(task: str) -> list[str]:
    """Rows measured on the same split by other benchmarks: the no-API baselines and the
    zero-program (bench/portfolio.py), the converged white-box bound (bench/whitebox.py)."""
    def cell(values: list[float]) -> str:
        return "—" if not values else f"{100 * statistics.mean(values):.1f}" + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else " (1 seed)")

    measured_rows, bounds = portfolio_measured_once(), whitebox_bounds()
    combo = f"coarse-5/{task}"
    named = {"noapi": "no API: logistic regression on the raw pixels", "lite1": "no API: EfficientNet-Lite1 features, logistic regression",
             "random-1": "zero-program (the start, readout only)"}
    rows = [f"| {task} | {name} | {cell([e['accuracy'] for e in measured_rows if (e['combo'], e['row']) == (combo, row)])} | {0 if row != 'random-1' else 1} | – | – |"
            for row, name in named.items()]
    bound = [e for e in bounds if (e["combo"], e["resolution"]) == (combo, "16")]
    rows.append(f"| {task} | one 16×16 program by autograd, full batch to a plateau (bench/whitebox.py) | {cell([e['accuracy'] for e in bound])} | 1 | – | "
                f"{len(bound)} |")
    return rows


def report() -> str:
    entries = measured()
    budgets = sorted({e["budget"] for e in entries})
    lines = ["# The tensor path: the program unrounded (float canvas) against 8-bit PNGs", "",
             "`python bench/tensor_path.py`: the default method through the in-process EfficientNet-Lite0 and the `coarse-5` "
             "head (5 labels), 50 training images per class, split seed 0, 2,000 held-out test images, seeds 0–2 (mean ± sd). "
             "β ¼ level: the estimator's radius at a quarter of a grey level per pixel (the default's is 1.5). The baselines, the "
             "zero-program and the white-box bound are the same split's, measured by the benchmarks named. Step signal: "
             "the mean over seeds of `StepSignal.ratio` (0 for steps that know nothing).", "",
             "| task | row | " + " | ".join(f"test accuracy @ {b:,} training queries" for b in budgets) + " | queries per predicted image | step signal | seeds |",
             "|---|---|" + "---|" * len(budgets) + "---|---|---|"]
    for task in TASKS:
        if any(e["task"] == task for e in entries):
            lines += shared_rows(task)
        for row in ROWS:
            cells, signals, seeds = [], [], set()
            for budget in budgets:
                values = [e["accuracy"] for e in entries if (e["task"], e["row"], e["budget"]) == (task, row, budget)]
                signals += [e["step_signal"] for e in entries if (e["task"], e["row"], e["budget"]) == (task, row, budget)]
                seeds |= {e["seed"] for e in entries if (e["task"], e["row"], e["budget"]) == (task, row, budget)}
                cells.append("—" if not values else f"{100 * statistics.mean(values):.1f}" + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else ""))
            if seeds:
                signal = f"{statistics.mean(signals):.2f}" if signals else "—"
                lines.append(f"| {task} | {row} | " + " | ".join(cells) + f" | 1 | {signal} | {len(seeds)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["tshirt-shirt"], choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--budget", type=int, default=5000)
    parser.add_argument("--test-size", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        measure(args.tasks, args.seeds, args.budget, args.test_size, args.threads)
    (RESULTS / "tensor_path.md").write_text(report())
    print(report())


if __name__ == "__main__":
    main()
