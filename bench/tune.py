"""Choosing the zeroth-order method on a validation split carved from the training images only.

For each task of bench/fewlabel.py, its shared split's training images (and nothing else) are
written to an .npz; runs train on 30 of them per class and are measured on the other 20 per class.
Seed s is both the run's seed and the carving's (split seed s), so each seed validates on a
different fold of the training images. The test images of the split are never read, so what wins here can be reported on
them by bench/fewlabel.py without having been chosen on them. One line per measurement in
``bench/results/tune.jsonl`` (a rerun skips what is there); ``--report`` writes ``tune.md``.

    python bench/tune.py --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --seeds 0,1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from harness.cells import each_cell, SPLIT_SEED, TASKS, TEST_SIZE, TRAIN_PER_CLASS, WORK, AnswerStores, zeroth_order
from harness.results import RESULTS, read_lines

from barapi.config import PRESETS, DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.data import load_split
from barapi.config import Geometry

MEASURED = RESULTS / "tune.jsonl"
# Each variant changes the default in one way: name → (what it is, settings).
VARIANTS: dict[str, tuple[str, dict]] = {
    "default": ("the default preset (β: 1.5 grey levels per coordinate of W, 0.33 on its 16×16 W)", {}),
    "beta-2": ("the default before: β = 2", {"beta": 2.0}),
    "wide": ("β = 2, 5 images × 20 directions per step instead of 20 × 5 (same queries per step)", {"beta": 2.0, "batch_size": 5, "q": 20}),
    "middle": ("β = 2, 10 images × 10 directions per step", {"beta": 2.0, "batch_size": 10, "q": 10}),
    "fast": ("β = 2, step 0.05 instead of 0.01", {"beta": 2.0, "lr": 0.05}),
    "spsa-gc": ("β = 2, SPSA-GC: Rademacher directions, Nesterov gradient correction, step 0.3", {"beta": 2.0, "estimator": "spsa", "optimizer": "nesterov-gc", "lr": 0.3}),
    "beta-0.3": ("β = 0.3 (bench/results/zo_signal.md: the estimate keeps some alignment with the gradient at β ≤ 0.3 on a 16×16 W, none at 2)", {"beta": 0.3}),
    "res-4": ("a 4×4 W (48 numbers instead of 768; β by the default's rule: 0.08)", {"geometry": Geometry(embed_size=112, program_resolution=4)}),
    "res-8": ("an 8×8 W (192 numbers; β 0.16)", {"geometry": Geometry(embed_size=112, program_resolution=8)}),
    "res-4-b5": ("a 4×4 W, 5 images a step instead of 20: four times the steps for the same queries", {"geometry": Geometry(embed_size=112, program_resolution=4), "batch_size": 5}),
    # A random program as strong as the default's W after a run's random walk (Adam's ±lr steps):
    # bench/fewlabel.py's null row gains as much as the default on 3 vs 8.
    **{f"start-{scale}": (f"starting W of std {scale} instead of 0.005 (a random texture)", {"init_scale": scale}) for scale in (0.1, 0.3, 1.0)},
}
BUDGETS = [5000, 10000]
VALIDATION_PER_CLASS = 20


def training_images_only(task: str) -> Path:
    """The shared split's training images as a dataset of their own (at the embedding size)."""
    path = WORK / f"tune-{task}.npz"
    if not path.is_file():
        split = load_split(TASKS[task], embed_size=PRESETS["default"].geometry.embed_size, train_per_class=TRAIN_PER_CLASS, test_size=TEST_SIZE, seed=SPLIT_SEED)
        pixels = np.round((split.x_train + 1) * 127.5).astype(np.uint8)
        np.savez(path, x=pixels, y=split.y_train, classes=np.asarray(split.classes))
    return path


def method(variant: str) -> MethodConfig:
    return PRESETS["default"].model_copy(update=VARIANTS[variant][1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", default="coarse-5/tshirt-shirt,coarse-5/pullover-coat")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)), help="training queries to measure at; empty: the starting program only")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        seeds = [int(s) for s in args.seeds.split(",")]
        measure(args.combos.split(","), args.variants.split(","), seeds, [int(b) for b in args.budgets.split(",") if b], args.threads)
    report()


def measure(combos: list[str], variants: list[str], seeds: list[int], budgets: list[int], threads: int) -> None:
    WORK.mkdir(exist_ok=True)
    done = {(m["combo"], m["variant"], m["seed"]) for m in read_lines(MEASURED)}
    for seed, combo, _, task, classifier in each_cell(combos, seeds, threads):
        dataset = str(training_images_only(task))
        for variant in variants:
            if (combo, variant, seed) in done:
                continue
            curve: dict[int, float | None] = {}
            data = DataConfig(dataset=dataset, train_per_class=TRAIN_PER_CLASS - VALIDATION_PER_CLASS, test_size=2 * VALIDATION_PER_CLASS, split_seed=seed)
            config = RunConfig(name="tune", seed=seed, provider=ProviderConfig(name="local"), data=data, method=method(variant))
            zeroth_order(classifier, config, budgets, lambda at, accuracy, **_facts: curve.__setitem__(at, accuracy), AnswerStores([]))
            with MEASURED.open("a") as handle:
                handle.write(json.dumps({"combo": combo, "variant": variant, "seed": seed, "validation": curve, "ts": time.time()}) + "\n")
            print(f"  {combo} {variant} seed {seed}: {curve}", file=sys.stderr, flush=True)


def report() -> None:
    entries = read_lines(MEASURED)
    lines = [
        "# Choosing the method on validation images carved from the training images",
        "",
        f"`python bench/tune.py` (2-core CPU). Per task: its shared split's {2 * TRAIN_PER_CLASS} training images only; runs train on "
        f"{TRAIN_PER_CLASS - VALIDATION_PER_CLASS} per class and are measured on the other {VALIDATION_PER_CLASS} per class "
        "(validation accuracy, mean over seeds — seed s also carves fold s — their number in brackets). The test images are never read.",
        "",
        "| variant | what | " + " | ".join(f"{c}, {b // 1000}k q" if b else f"{c}, zero-program" for c in sorted({e['combo'] for e in entries}) for b in [0, *BUDGETS]) + " |",
        "|---|---|" + "---|" * (len({e['combo'] for e in entries}) * (len(BUDGETS) + 1)),
    ]
    for variant, (what, _) in VARIANTS.items():
        cells = []
        for combo in sorted({e["combo"] for e in entries}):
            for budget in [0, *BUDGETS]:
                values = [e["validation"].get(str(budget)) for e in entries if e["combo"] == combo and e["variant"] == variant]
                values = [v for v in values if v is not None]
                cells.append(f"{np.mean(values):.1%} ({len(values)})" if values else "—")
        if any(c != "—" for c in cells):
            lines.append(f"| {variant} | {what} | " + " | ".join(cells) + " |")
    (RESULTS / "tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
