"""Query efficiency of the BAR engine (issue: query efficiency), in one run per dataset:

  - test accuracy after 2k … 50k training queries (label mapping, training and the readout's
    closing pass; evaluation is measurement and is not counted) for the paper preset, the
    default preset and ablations that change one thing of the default each;
  - the zero-program baseline (the starting program and its label mapping, no training step);
  - a white-box upper bound: the same program (same W0, resolution, mapping and loss) trained by
    autograd through the same network in torch on the same training images — the only place
    torch gradients are used, and only here.

It writes a markdown table and a plot (accuracy vs queries) under bench/results/. Accuracy rows
use the in-process model: the same network and the same PNG bytes an API would get, without
HTTP. Usage:

    python bench/efficiency.py                                  # everything, ~2 h on 2 cores
    python bench/efficiency.py --datasets digits --rows default --budgets 2000,5000 --no-whitebox
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/torchpath.py
from barapi.mock.model import ImageNetModel, InProcessClassifier

from barapi.config import PRESETS, DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.data import load_split
from barapi.run.strategies import optimizer_for
from barapi.store import Store
from barapi.run.trainer import Trainer

WORK = Path(__file__).resolve().parent / ".work"
RESULTS = Path(__file__).resolve().parent / "results"
BUDGETS = [2000, 5000, 10000, 20000, 50000]
# Each ablation changes one setting of the default preset: key → (what the row shows, settings).
ABLATIONS: dict[str, tuple[str, dict]] = {
    "bar": ("default with BAR's m-to-1 mapping (iterative re-fit) instead of the readout", {"mapping": "iterative"}),
    "frequency": ("default with BAR's m-to-1 frequency mapping, fixed", {"mapping": "frequency"}),
    "one-sided": ("default, one-sided estimator", {"estimator": "one-sided"}),
    "spsa": ("default, SPSA (Rademacher) estimator", {"estimator": "spsa"}),
    "spsa-gc": ("default, SPSA-GC (SPSA + Nesterov momentum)", {"estimator": "spsa", "optimizer": "nesterov-gc", "lr": 0.3}),
    "sign-sgd": ("default, sign-SGD", {"optimizer": "sign-sgd"}),
    "fullres": ("default, full-resolution W", {"geometry": {"program_resolution": None}}),
    "slow": ("default, step 0.002", {"lr": 0.002}),
    "textured-start": ("default, starting W of std 0.5 instead of 0.005", {"init_scale": 0.5}),
}
# The white-box bound refits the readout on exact answers every this many steps (25 × 20 = one
# pass over 500 training images): as often as its forward passes allow on a CPU.
WHITEBOX_REFIT_STEPS = 25
# What a plain run measures: the presets to 50k queries, each ablation to 5k (CPU time).
DEFAULT_ROWS = ["paper", "default", *(f"{key}:5000" for key in ("bar", "one-sided", "spsa", "spsa-gc", "fullres", "textured-start"))]


def label(row: str) -> str:
    return row if row in PRESETS else ABLATIONS[row][0]


def method_for(row: str) -> MethodConfig:
    if row in PRESETS:
        return PRESETS[row]
    update = dict(ABLATIONS[row][1])
    base = PRESETS["default"]
    if "geometry" in update:
        update["geometry"] = base.geometry.model_copy(update=update["geometry"])
    return base.model_copy(update=update)


@dataclass
class Curve:
    row: str
    zero: float
    accuracy: dict[int, float | None] = field(default_factory=dict)


def run_config(dataset: str, method: MethodConfig, test_size: int, seed: int, iterations: int | None = None) -> RunConfig:
    if iterations is not None:
        method = method.model_copy(update={"iterations": iterations})
    return RunConfig(name="bench", seed=seed, provider=ProviderConfig(name="local"), data=DataConfig(dataset=dataset, test_size=test_size), method=method)


def accuracy_curve(dataset: str, row: str, budgets: list[int], classifier: InProcessClassifier, test_size: int, seed: int) -> Curve:
    """Train once, evaluating when the training queries reach each budget (the run is extended
    between budgets exactly as `barapi resume` extends it)."""
    method = method_for(row)
    store = Store(Path(tempfile.mkdtemp(prefix="bench-", dir=WORK)))
    base = run_config(dataset, method, test_size, seed)
    trainer = Trainer(base, classifier, store)
    state = trainer.start()  # the baseline: the mapping without a step
    curve = Curve(label(row), trainer.test_accuracy(state))
    n_train = len(trainer.split.y_train)
    mapping_queries = state.mapping.start_queries(n_train, True) + state.mapping.closing_queries(n_train)
    per_iteration = method.batch_size * optimizer_for(method).queries_per_sample
    for budget in budgets:
        iterations = (budget - mapping_queries) // per_iteration
        if iterations < 1:
            curve.accuracy[budget] = None
            continue
        result = Trainer(run_config(dataset, method, test_size, seed, iterations), classifier, store, split=trainer.split).run()
        curve.accuracy[budget] = result.test_accuracy
        print(f"  {dataset} / {label(row)}: {budget:,} queries ({iterations} iterations) → {result.test_accuracy:.3f}", file=sys.stderr, flush=True)
    return curve


def whitebox_curve(dataset: str, row: str, classifier: InProcessClassifier, test_size: int, seed: int, checkpoints: list[int], lr: float) -> Curve:
    """The ``row``'s program (W0, basis, placement, mapping, relative focal loss) trained with
    exact gradients through ``bench/torchpath.py`` (the one torch path every benchmark uses),
    the readout refitted every WHITEBOX_REFIT_STEPS steps from the model's exact answers.
    Accuracy is then measured like every other row, through the in-process model on PNG bytes.
    ``checkpoints``: training images processed."""
    import torch
    from torchpath import TorchPath

    from barapi.method.losses import class_weights
    from barapi.method.readout import LinearReadout

    torch.manual_seed(seed)
    method = method_for(row)
    trainer = Trainer(run_config(dataset, method, test_size, seed), classifier, Store(Path(tempfile.mkdtemp(prefix="bench-wb-", dir=WORK))))
    state = trainer.start()
    curve = Curve("white-box upper bound (autograd, same program)", trainer.test_accuracy(state))
    path, split = TorchPath(classifier, trainer.program), trainer.split
    w = path.tensor(trainer.optimizer.w)
    weights = class_weights(split.y_train, split.n_classes)
    optimiser = torch.optim.Adam([w], lr=lr)

    def mapping() -> dict:
        """The run's mapping at this W: the readout refitted from exact answers (free here), or the assignment."""
        trainer.optimizer.w = w.detach().numpy()[0].transpose(1, 2, 0).astype(np.float64)
        if not state.mapping.reads_every_label:
            return path.assignment(state.mapping.described())
        return path.readout(LinearReadout.fit(trainer.training_answers(state), split.y_train, split.n_classes, method.readout_l2))

    rng = np.random.default_rng([seed, 0xB0B])
    mapped, seen, started, steps = mapping(), 0, time.monotonic(), 0
    for goal in checkpoints:
        while seen < goal:
            if steps and steps % WHITEBOX_REFIT_STEPS == 0:
                mapped = mapping()
            batch = rng.choice(len(split.y_train), size=method.batch_size, replace=False)
            loss = path.focal_loss(w, split.x_train[batch], split.y_train[batch], mapped, weights, method.focal_gamma)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            seen, steps = seen + len(batch), steps + 1
        trainer.optimizer.w = w.detach().numpy()[0].transpose(1, 2, 0).astype(np.float64)
        state.mapping.read_at = -1  # measured like a black-box run: with the readout refitted at this W
        curve.accuracy[goal] = trainer.test_accuracy(state)
        print(f"  {dataset} / white-box: {seen} images ({time.monotonic() - started:.0f} s) → {curve.accuracy[goal]:.3f}", file=sys.stderr, flush=True)
    return curve


def plot(dataset: str, curves: list[Curve], budgets: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(12, 5))
    for curve in curves:
        if curve.row.startswith("white-box"):
            best = max(a for a in curve.accuracy.values() if a is not None)
            axes.axhline(best, linestyle="--", color="black", label=f"{curve.row}, best: {best:.1%}")
            continue
        points = [(0, curve.zero)] + [(b, a) for b, a in curve.accuracy.items() if a is not None]
        style = {"linewidth": 2.5} if curve.row in PRESETS else {"linewidth": 1, "alpha": 0.7}
        axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=curve.row, **style)
    axes.axhline(0.1, linestyle=":", color="grey", label="chance")
    axes.set_xscale("symlog", linthresh=1000)
    axes.set_xticks([0] + budgets, ["0"] + [f"{b // 1000}k" for b in budgets])
    axes.set_xlabel("training queries (images sent to the API)")
    axes.set_ylabel("test accuracy")
    axes.set_title(f"{dataset}: test accuracy vs queries (EfficientNet-Lite0, 50 images/class)")
    axes.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # beside the curves, never over them
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def table(dataset: str, curves: list[Curve], budgets: list[int], test_size: int, whitebox_images: list[int]) -> str:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.1%}"

    lines = [
        f"### {dataset}: 50 training images per class, {test_size} test images; chance 10.0 %",
        "",
        "| row | zero-program | " + " | ".join(f"{b:,} q" for b in budgets) + " |",
        "|---|---|" + "---|" * len(budgets),
    ]
    for curve in curves:
        if curve.row.startswith("white-box"):
            continue
        lines.append(f"| {curve.row} | {cell(curve.zero)} | " + " | ".join(cell(curve.accuracy.get(b)) for b in budgets) + " |")
    for curve in curves:
        if curve.row.startswith("white-box"):
            lines += ["", "| white-box upper bound | start | " + " | ".join(f"{n:,} images" for n in whitebox_images) + " |",
                      "|---|---|" + "---|" * len(whitebox_images),
                      f"| autograd, same W0 / mapping / loss | {cell(curve.zero)} | " + " | ".join(cell(curve.accuracy.get(n)) for n in whitebox_images) + " |"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="digits,fashion-mnist")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--rows", default=",".join(DEFAULT_ROWS), help="comma-separated presets and ablation keys (see ABLATIONS); 'row:N' stops that row at N queries")
    parser.add_argument("--whitebox-images", default="500,1500", help="training images the white-box bound processes (0 = skip)")
    parser.add_argument("--whitebox-lr", type=float, default=0.01)
    parser.add_argument("--whitebox-row", default="default", help="whose program (geometry, W0, mapping, loss) the white-box bound trains")
    parser.add_argument("--test-size", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="efficiency", help="stem of the files written under bench/results/")
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    classifier = InProcessClassifier(ImageNetModel(home=WORK / "home"))
    budgets = [int(b) for b in args.budgets.split(",")]
    whitebox_images = [int(n) for n in args.whitebox_images.split(",") if int(n) > 0]
    sections = [f"`python bench/efficiency.py {' '.join(sys.argv[1:])}` (2-core CPU, {time.strftime('%Y-%m-%d')})", ""]
    for dataset in args.datasets.split(","):
        load_split(dataset, embed_size=8, train_per_class=1, test_size=1, seed=0)  # fail fast if it is missing
        curves = []
        for spec in filter(None, args.rows.split(",")):
            row, _, limit = spec.partition(":")
            capped = [b for b in budgets if not limit or b <= int(limit)]
            curves.append(accuracy_curve(dataset, row, capped, classifier, args.test_size, args.seed))
        if whitebox_images:
            curves.append(whitebox_curve(dataset, args.whitebox_row, classifier, args.test_size, args.seed, whitebox_images, args.whitebox_lr))
        sections += [table(dataset, curves, budgets, args.test_size, whitebox_images), "", f"![{dataset}]({args.out}-{dataset}.png)", ""]
        plot(dataset, curves, budgets, RESULTS / f"{args.out}-{dataset}.png")
        (RESULTS / f"{args.out}.md").write_text("\n".join(sections))  # after each dataset: a long run keeps what it has
    print("\n".join(sections))


if __name__ == "__main__":
    main()
