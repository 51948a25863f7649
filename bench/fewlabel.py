"""The paper's Tables 4–5 on local stand-ins: reprogramming few-label models (issue: few-label APIs).

Models (the real EfficientNet-Lite0 behind a head, ``barapi.mock.heads``): coarse-2, coarse-5,
coarse-10 (probabilities summed over groups of ImageNet classes), ``project`` (a classifier of
the network's answers trained on Fashion-MNIST, as a Custom Vision project is) and ``imagenet``
(all 1,000 classes) for reference. Tasks: T-shirt/top vs Shirt, Pullover vs Coat (Fashion-MNIST),
digits (10 classes), digits 3 vs 8. For each model × task, one shared split (50 training images
per class, 200 test images, split seed 0) and, per seed, these rows:

- ``noapi``: logistic regression on the raw pixels (28×28 RGB) of the same training images, C
  chosen by 5-fold cross-validated log-loss on the training images (what a user could do without any API);
- ``default`` and ``paper``: the presets, zero-program (the starting program and its mapping,
  no step) then test accuracy after 2k / 5k / 10k / 20k training queries (label mapping,
  training, closing pass; evaluation is measurement and is not counted), from one run extended
  between budgets; a preset whose mapping cannot fit the model's labels is recorded as refused;
- ``guarded``: the default with ``--keep-better-start`` (barapi.method.selection); ``beta-2`` and
  ``res-4``: the default with β = 2 (as it was) and on a 4×4 W; ``shuffled``: the null row (``--estimator null``), the
  default whose estimator sees its losses shuffled among the perturbed points: steps of the same
  size that know nothing of the loss; ``placed``: the default's 16×16 grid spread over the
  196 px the model sees (it resizes to 256 and crops 224); ``cosine-8``: the default with W the
  8×8 lowest 2-D cosines per channel on that square (d = 192); ``cma-es``: CMA-ES (``cma``,
  diagonal, population 2q = 10: the default's queries per step) on the same cosines;
- ``whitebox``, ``whitebox-4`` and ``whitebox-full``: the default's program (same W0, mapping,
  focal loss) at its resolution (16×16), on a 4×4 W and at full resolution, trained by autograd
  through the same network and head in torch (Adam, fixed step and schedule: nothing is chosen
  on the test set), its readout refitted on exact answers every pass over the training images
  and measured like a black-box run (readout fitted at W on the training set, test images
  through the in-process model); ``whitebox-rp64``: the full-resolution program moved only
  within 64 fixed random directions; ``whitebox-cosine-8``: the cosine-8 program by autograd;
- ``wide`` (only when asked): the guarded run to each budget (from earlier answers with
  ``--answers-from``), measured on up to 2,000 held-out images: its start, its trained program
  and the one the guard serves.

Every measurement is one line of ``bench/results/fewlabel.jsonl``, written as soon as it is
made; a rerun skips what is there, so a killed run resumes. ``--report`` writes
``fewlabel.md`` (mean ± sd over seeds) and plots from whatever is measured.

    python bench/fewlabel.py --targets            # the learning issue's three combinations first
    python bench/fewlabel.py --combos coarse-2/digits-3v8 --rows default,paper,noapi
    python bench/fewlabel.py --targets --rows default,wide --answers-from bench/.work   # rerun from earlier answers
    python bench/fewlabel.py --report
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness.cells import (
    in_process, COMBOS, COSINE_8, DEFAULT, NO_API_SIDE, PLACED, SPLIT_SEED, TARGETS, TASKS, TEST_SIZE, TRAIN_PER_CLASS, VISIBLE, WORK, AnswerStores,
    fewlabel_config, zeroth_order,
)
from harness.results import RESULTS, baseline_fit, current, read_lines
from harness.torchpath import TorchPath

from barapi.config import PRESETS
from barapi.data import run_split
from barapi.errors import ConfigError
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.method.losses import accuracy, class_weights
from barapi.run.planning import iterations_within
from barapi.method.program import starting_parameters
from barapi.method.readout import LinearReadout
from barapi.store import Store
from barapi.run.trainer import Trainer

MEASURED = RESULTS / "fewlabel.jsonl"
BUDGETS = [2000, 5000, 10000, 20000]
WHITEBOX_IMAGES = [250, 500, 1000, 2000]
# White-box rows: the default's program at a resolution of W (None: full), and Adam's step there;
# the "rp" rows move a full-resolution W only within a fixed random subspace of that many
# dimensions (W = W0 + Σ z_k B_k / √d, B_k white noise of unit RMS, so that Adam moves a pixel by
# about its step, as at full resolution): whether d coordinates, few enough for 20k queries
# (bench/results/zo_signal.md), could hold the full-resolution program's gain.
WHITEBOX: dict[str, tuple[dict, float]] = {
    "whitebox-4": ({"program_resolution": 4}, 0.05), "whitebox": ({}, 0.05), "whitebox-full": ({"program_resolution": None}, 0.01),
    "whitebox-cosine-8": (COSINE_8, 0.05),
}
WHITEBOX_SUBSPACES = {"whitebox-rp64": 64}
WHITEBOX |= {row: ({"program_resolution": None}, 0.02) for row in WHITEBOX_SUBSPACES}
WHITEBOX_NAMES = {"whitebox-4": "4×4", "whitebox": "16×16 (the default's program)", "whitebox-full": "full resolution (ceiling)",
                  "whitebox-cosine-8": "8×8 lowest cosines on the visible square"}
WHITEBOX_NAMES |= {row: f"full resolution within {d} random directions" for row, d in WHITEBOX_SUBSPACES.items()}
WHITEBOX_BOUND = {"default": "whitebox", "cosine-8": "whitebox-cosine-8"}  # a zeroth-order row's program, by autograd
PRICE_PER_1K = {"project": 2.00}  # Azure Custom Vision S0; the others at Clarifai's $1.20
CLARIFAI_PRICE = 1.20
# The zeroth-order rows: the presets, the default as it was before β followed the resolution, the
# default on a 4×4 W (bench/results/zo_signal.md: the only W here whose gradient a 20k-query run
# could resolve) and the null row (the default driven by ShuffledSteps).
# "guarded" is the default with --keep-better-start (barapi.method.selection).
METHODS = PRESETS | {
    "guarded": DEFAULT.model_copy(update={"keep_better_start": True}),
    "beta-2": DEFAULT.model_copy(update={"beta": 2.0}),
    "res-4": DEFAULT.model_copy(update={"geometry": DEFAULT.geometry.model_copy(update={"program_resolution": 4})}),
    "shuffled": DEFAULT.model_copy(update={"estimator": "null"}),
    "placed": DEFAULT.model_copy(update={"geometry": DEFAULT.geometry.model_copy(update=PLACED)}),
    "cosine-8": DEFAULT.model_copy(update={"geometry": DEFAULT.geometry.model_copy(update=COSINE_8)}),
    "cma-es": DEFAULT.model_copy(update={"optimizer": "cma-es", "geometry": DEFAULT.geometry.model_copy(update=COSINE_8)}),
    "paper-random": PRESETS["paper"].model_copy(update={"mapping": "random"}),  # as the paper's API experiments (Tables 4-5) ran it
}
ROW_NAMES = {"guarded": "default --keep-better-start", "beta-2": "default before (β = 2)", "res-4": "default on a 4×4 W",
             "shuffled": "default, losses shuffled (null)", "placed": f"default placed on the visible {VISIBLE} px",
             "cosine-8": "default, W = 8×8 lowest cosines, placed", "cma-es": "CMA-ES on the 8×8 cosines, placed",
             "paper-random": "paper preset, random mapping (the paper's API runs)"}
ROW_ORDER = ["noapi", "default", "guarded", "shuffled", "beta-2", "res-4", "placed", "cosine-8", "cma-es", "paper", "paper-random",
             "whitebox", "whitebox-4", "whitebox-cosine-8", "whitebox-full", *WHITEBOX_SUBSPACES]
WIDE_TEST = 2000  # the held-out images of the wide check (all there are, for the digits)


# -- what is measured ----------------------------------------------------------------------------
def wide_check(classifier: InProcessClassifier, task: str, seed: int, answers: AnswerStores, record, budget: int) -> None:  # noqa: ANN001
    """The guarded run to ``budget`` (from earlier answers, with --answers-from), measured on up
    to WIDE_TEST held-out images (a superset of the shared test set): its start, its trained
    program and the one its guard serves. A gain on 200 images can be that set's luck."""
    config = fewlabel_config(task, METHODS["guarded"], seed, name=f"wide-{time.time_ns()}")
    store = answers.store_for(config, classifier.model_id)
    split = run_split(config)
    iterations = iterations_within(config.method, len(split.y_train), budget)
    run = config.model_copy(update={"method": config.method.model_copy(update={"iterations": iterations})})
    Trainer(run, classifier, store, split=split).run()
    trainer = Trainer(run.model_copy(update={"data": run.data.model_copy(update={"test_size": WIDE_TEST})}), classifier, store, record_status=False)
    state = trainer.restore()
    served = "start" if trainer.selection is not None and trainer.selection.kept_start is not None else "trained"
    accuracy_of = {}
    for label, w in (("start", starting_parameters(config.method, seed)), ("trained", trainer.optimizer.w.copy())):
        trainer.optimizer.w = w
        mapper = state.mapping.fitted(trainer.training_answers(state), trainer.split.y_train)
        accuracy_of[label] = accuracy(trainer.predict_scores([w], mapper, trainer.split.x_test, state.vocabulary), trainer.split.y_test)
    for label, value in (*accuracy_of.items(), ("guarded", accuracy_of[served])):
        record(f"wide-{label}", budget, value, test_images=len(trainer.split.y_test), kept=served if label == "guarded" else None)


def no_api(task: str, seed: int) -> dict:
    # The same images at 28×28 (Fashion-MNIST's own size; the split does not depend on it).
    method = PRESETS["default"].model_copy(update={"geometry": PRESETS["default"].geometry.model_copy(update={"embed_size": NO_API_SIDE})})
    split = run_split(fewlabel_config(task, method, seed))
    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    fitted = baseline_fit(flat(split.x_train), split.y_train, flat(split.x_test), split.y_test, seed)
    return {k: fitted[k] for k in ("accuracy", "C", "sklearn")}


def white_box(classifier: InProcessClassifier, task: str, row: str, seed: int, record) -> None:  # noqa: ANN001
    """Autograd through the network and the head; measured through the black-box path."""
    import torch

    torch.manual_seed(seed)
    geometry, lr = WHITEBOX[row]
    method = DEFAULT.model_copy(update={"geometry": DEFAULT.geometry.model_copy(update=geometry)})
    trainer = Trainer(fewlabel_config(task, method, seed), classifier, Store(Path(tempfile.mkdtemp(prefix="fewlabel-wb-", dir=WORK))))
    state = trainer.start()
    record(0, trainer.test_accuracy(state))
    path = TorchPath(classifier, trainer.program)
    split = trainer.split
    w0 = path.tensor(trainer.optimizer.w).detach()
    if row in WHITEBOX_SUBSPACES:
        d = WHITEBOX_SUBSPACES[row]
        basis = torch.tensor(np.random.default_rng([0xBA515, d]).standard_normal((d, w0.numel())) / np.sqrt(d), dtype=torch.float32)
        trained = torch.zeros(1, len(basis), requires_grad=True)
        program = lambda: w0 + (trained @ basis).reshape(w0.shape)  # noqa: E731
    else:
        trained = w0.clone().requires_grad_(True)
        program = lambda: trained  # noqa: E731
    weights = class_weights(split.y_train, split.n_classes)
    optimiser = torch.optim.Adam([trained], lr=lr)

    def current() -> np.ndarray:
        return program().detach().numpy()[0].transpose(1, 2, 0).astype(np.float64)

    def refit() -> dict:
        """The readout at this W, from the in-process model's exact answers (free here)."""
        trainer.optimizer.w = current()
        dense = trainer.training_answers(state)
        return path.readout(LinearReadout.fit(dense, split.y_train, split.n_classes, method.readout_l2))

    rng = np.random.default_rng([seed, 0xB0B])
    readout, seen, steps, started = refit(), 0, 0, time.monotonic()
    per_pass = max(len(split.y_train) // method.batch_size, 1)
    for goal in WHITEBOX_IMAGES:
        while seen < goal:
            if steps and steps % per_pass == 0:
                readout = refit()
            batch = rng.choice(len(split.y_train), size=method.batch_size, replace=False)
            loss = path.focal_loss(program(), split.x_train[batch], split.y_train[batch], readout, weights, method.focal_gamma)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            seen, steps = seen + len(batch), steps + 1
        trainer.optimizer.w = current()
        state.mapping.read_at = -1  # measured like a black-box run: the readout refitted at this W
        record(goal, trainer.test_accuracy(state))
        print(f"    {seen} images in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)


# -- bookkeeping -----------------------------------------------------------------------------------
def measured() -> list[dict]:
    return read_lines(MEASURED)


def recorder(combo: str, row: str, seed: int):  # noqa: ANN201
    def record(at: int, accuracy: float | None, **facts: float | str | None) -> None:
        """facts: step_signal (barapi.method.optim.StepSignal), kept (barapi.method.selection), refused (why),
        C and sklearn (a no-API baseline's choice and the library that made it)."""
        entry = {"combo": combo, "row": row, "seed": seed, "at": at, "accuracy": accuracy, "ts": time.time()}
        entry |= {k: v for k, v in facts.items() if v is not None}
        with MEASURED.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        print(f"  {combo} {row} seed {seed} @ {at:,}: {accuracy}", file=sys.stderr, flush=True)

    return record


def measure(combos: list[str], rows: list[str], seeds: list[int], budgets: list[int], threads: int, answers: AnswerStores) -> None:
    WORK.mkdir(exist_ok=True)
    RESULTS.mkdir(exist_ok=True)
    network = ImageNetModel(home=WORK / "home", threads=threads)
    if any(r.startswith("whitebox") for r in rows):
        import torch

        torch.set_num_threads(threads)
    done = {(m["combo"], m["row"], m["seed"], m["at"]) for m in measured()}
    for row in rows:
        for combo in combos:
            model, task = combo.split("/")
            classifier = in_process(model, network)
            for seed in seeds:
                points = [0] + (budgets if row in METHODS else WHITEBOX_IMAGES if row.startswith("whitebox") else [])
                if row == "wide":
                    points = budgets
                if all((combo, "wide-guarded" if row == "wide" else row, seed, p) in done for p in points):
                    continue
                record = recorder(combo, row, seed)
                if row == "noapi":
                    # The model plays no part: the same task and seed measured beside another model is this cell's.
                    known = [m for m in measured() if m["row"] == "noapi" and m["seed"] == seed and m["combo"].split("/")[1] == task]
                    fitted = {k: known[0].get(k) for k in ("accuracy", "C", "sklearn")} if known else no_api(task, seed)
                    record(0, fitted.pop("accuracy"), **fitted)
                elif row == "wide":
                    for budget in budgets:
                        if (combo, "wide-guarded", seed, budget) not in done:
                            wide_check(classifier, task, seed, answers, lambda as_row, *a, **k: recorder(combo, as_row, seed)(*a, **k), budget)
                elif row in METHODS:
                    try:
                        zeroth_order(classifier, fewlabel_config(task, METHODS[row], seed, name=f"{row}-{time.time_ns()}"), budgets, record, answers)
                    except ConfigError as refusal:  # before any query: the preset cannot run on this model
                        for point in points:
                            record(point, None, refused=str(refusal))
                else:
                    white_box(classifier, task, row, seed, record)


# -- the report ------------------------------------------------------------------------------------
def summary(values: list[float]) -> str:
    if not values:
        return "—"
    count = "" if len(values) >= 3 else f" ({len(values)} seed{'s' * (len(values) > 1)})"
    if np.allclose(values, values[0]):  # e.g. the no-API row, which no seed changes
        return f"{values[0]:.1%}{count}"
    return f"{np.mean(values):.1%} ± {np.std(values, ddof=1):.1%}{count}"


def report() -> None:
    entries = measured()
    cells: dict[tuple[str, str, int], dict[int, float]] = {}
    signals: dict[tuple[str, str, int], dict[int, float]] = {}  # barapi.method.optim.StepSignal of each run
    kept: dict[tuple[str, str, int], dict[int, str]] = {}  # barapi.method.selection: which program each run served
    refused: dict[tuple[str, str], str] = {}
    for e in entries:
        key = (e["combo"], e["row"], e["at"])
        if e["accuracy"] is not None:
            cells.setdefault(key, {})[e["seed"]] = e["accuracy"]
        if "step_signal" in e:
            signals.setdefault(key, {})[e["seed"]] = e["step_signal"]
        if "kept" in e:
            kept.setdefault(key, {})[e["seed"]] = e["kept"]
        if "refused" in e:
            refused[(e["combo"], e["row"])] = e["refused"]

    def cell(combo: str, row: str, at: int) -> str:
        values = list(cells.get((combo, row, at), {}).values())
        return "refused" if not values and (combo, row) in refused else summary(values)

    lines = [
        "# Few-label APIs: reprogramming the paper's setting on local stand-ins",
        "",
        "Written by `python bench/fewlabel.py --report` from `fewlabel.jsonl` (2-core CPU). Test accuracy, mean ± sd over "
        "seeds (seed = the program's random start and draws; one split per task shared by every row: "
        f"{TRAIN_PER_CLASS} training images per class, {TEST_SIZE} test images, split seed {SPLIT_SEED}). Columns: training "
        "queries (label mapping + training + closing pass; evaluation not counted), or for the white-box rows training "
        "images processed by autograd. Zero-program: the starting program and its mapping, no step.",
        "",
    ]
    wide_images = {e["combo"]: e["test_images"] for e in entries if "test_images" in e}
    lines += summary_tables(cells, cell, kept, refused, wide_images) + [""]
    for combo in COMBOS:
        rows = [r for r in ROW_ORDER if any(k[0] == combo and k[1] == r for k in [*cells, *refused])]
        if not rows:
            continue
        model, task = combo.split("/")
        lines += [f"## {model} × {task} (`{TASKS[task]}`)", "",
                  "| row | zero-program | " + " | ".join(f"{b // 1000}k q" for b in BUDGETS) + " |",
                  "|---|---|" + "---|" * len(BUDGETS)]
        for row in rows:
            if row == "noapi":
                lines.append(f"| no API (logistic regression on raw pixels) | {cell(combo, row, 0)} |" + " |" * len(BUDGETS))
            elif row in METHODS:
                lines.append(f"| {ROW_NAMES.get(row, row)} | " + " | ".join(cell(combo, row, at) for at in [0, *BUDGETS]) + " |")
                if any((combo, row, at) in signals for at in BUDGETS):
                    lines.append("| … signal-to-noise of its summed steps | | " + " | ".join(
                        f"{np.mean(list(signals[(combo, row, at)].values())):.2f}" if (combo, row, at) in signals else "—" for at in BUDGETS) + " |")
                if any((combo, row, at) in kept for at in BUDGETS):
                    lines.append("| … runs that kept their start | | " + " | ".join(kept_count(kept.get((combo, row, at))) for at in BUDGETS) + " |")
        wb = [r for r in rows if r.startswith("whitebox")]
        if wb:
            lines += ["", "| white-box (autograd, same model and head) | start | " + " | ".join(f"{n:,} images" for n in WHITEBOX_IMAGES) + " |",
                      "|---|---|" + "---|" * len(WHITEBOX_IMAGES)]
            for row in wb:
                lines.append(f"| {WHITEBOX_NAMES[row]} | " + " | ".join(cell(combo, row, at) for at in [0, *WHITEBOX_IMAGES]) + " |")
        if any(r in METHODS and any(k[:2] == (combo, r) for k in cells) for r in rows):
            lines += ["", f"![{combo}](fewlabel-{model}-{task}.png)"]
            plot(combo, cells)
        lines.append("")
    (RESULTS / "fewlabel.md").write_text("\n".join(lines))
    print("\n".join(lines))


def kept_count(runs: dict[int, str] | None) -> str:
    return "—" if not runs else f"{sum(k == 'start' for k in runs.values())} of {len(runs)}"


def summary_tables(cells: dict, cell, kept: dict, refused: dict, wide_images: dict[str, int]) -> list[str]:  # noqa: ANN001 - report's cell(combo, row, at)
    """Every measured combination on one line each (the README's tables): what a user gets, the
    start guard, the wide check, and what the program's steps knew."""

    bounds: dict[tuple[str, str], list[float]] = {}
    for e in current(RESULTS / "whitebox.jsonl"):  # bench/whitebox.py's converged bounds
        bounds.setdefault((e["combo"], e["resolution"]), []).append(e["accuracy"])
    last = WHITEBOX_IMAGES[-1]
    lines = [
        "## Summary",
        "",
        f"White-box @{last:,}: autograd stopped after {last:,} image-passes, not converged (a figure below the bound). Converged: "
        "`bench/whitebox.py`, trained until the training loss plateaus or the training images are fit, measured on 2,000 held-out "
        "images (1,297 for the digits, 257 for 3 vs 8), not this table's 200 (`whitebox.md`; — where not run).",
        "",
        f"| model × task | no API | zero-program | default {' | '.join(f'{b // 1000}k' for b in BUDGETS)} "
        f"| paper {BUDGETS[-1] // 1000}k | white-box 16×16 @{last:,} | full @{last:,} | converged 16×16 | converged full |",
        "|---|---|---|" + "---|" * len(BUDGETS) + "---|---|---|---|---|",
    ]
    present = [c for c in COMBOS if cell(c, "noapi", 0) != "—"]
    for combo in present:
        model, task = combo.split("/")
        values = [cell(combo, "noapi", 0), cell(combo, "default", 0), *(cell(combo, "default", b) for b in BUDGETS),
                  cell(combo, "paper", BUDGETS[-1]), cell(combo, "whitebox", last), cell(combo, "whitebox-full", last),
                  *(summary(bounds.get((combo, resolution), [])) for resolution in ("16", "full"))]
        lines.append(f"| {model} × {task} | " + " | ".join(values) + " |")
    reasons = sorted({why for (combo, row), why in refused.items()})
    if reasons:
        lines += ["", "*Refused*: before any query, for " + ", ".join(sorted(f"{row} on {combo}" for combo, row in refused)) + ":", ""]
        lines += [f"- {why}" for why in reasons]

    guarded = [c for c in present if any((c, "guarded", b) in kept for b in BUDGETS)]
    if guarded:
        lines += [
            "", "The start guard (`--keep-better-start`, barapi.method.selection): the same runs, serving their start where the "
            "closing pass's sign test says training lost; how many of the seeds kept their start.", "",
            f"| model × task | default {' | '.join(f'{b // 1000}k' for b in BUDGETS)} | guarded {' | '.join(f'{b // 1000}k' for b in BUDGETS)} "
            f"| kept their start at {' · '.join(f'{b // 1000}k' for b in BUDGETS)} |",
            "|---|" + "---|" * (2 * len(BUDGETS) + 1),
        ]
        for combo in guarded:
            model, task = combo.split("/")
            starts = " · ".join(kept_count(kept.get((combo, "guarded", b))).replace(" of ", "/") for b in BUDGETS)
            lines.append(f"| {model} × {task} | " + " | ".join([*(cell(combo, r, b) for r in ("default", "guarded") for b in BUDGETS), starts]) + " |")

    wide = [(c, b) for c in present for b in BUDGETS if cell(c, "wide-guarded", b) != "—"]
    if wide:
        lines += [
            "", f"The wide check (`--rows wide`): guarded runs measured on up to {WIDE_TEST:,} held-out images (all the task has "
            f"beyond its training images; the shared {TEST_SIZE} among them), beside the same runs on the shared {TEST_SIZE}.", "",
            f"| model × task | queries | held-out images | start | trained | guarded | kept their start | on the shared {TEST_SIZE}: start "
            "| trained | guarded |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for combo, at in wide:
            model, task = combo.split("/")
            checked = set(cells[(combo, "wide-guarded", at)])  # the same seeds on the shared test set

            def shared(row: str, point: int) -> str:
                return summary([v for seed, v in cells.get((combo, row, point), {}).items() if seed in checked])

            values = [f"{at // 1000}k", str(wide_images.get(combo, "—")), *(cell(combo, f"wide-{label}", at) for label in ("start", "trained", "guarded")),
                      kept_count(kept.get((combo, "wide-guarded", at))), shared("default", 0), shared("default", at), shared("guarded", at)]
            lines.append(f"| {model} × {task} | " + " | ".join(values) + " |")

    lines += [
        "", "What the steps knew: the default, the same with its losses shuffled among its perturbed points (the null: steps "
        "that know nothing), on a 4×4 W, and the white-box bound on that W.", "",
        f"| model × task | zero-program | default 10k | 20k | null 10k | 20k | 4×4 W 10k | 20k | white-box 4×4 @{last:,} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for combo in present:
        if cell(combo, "shuffled", 10000) == "—" and cell(combo, "res-4", 10000) == "—":
            continue
        model, task = combo.split("/")
        values = [cell(combo, "default", 0), *(cell(combo, row, at) for row in ("default", "shuffled", "res-4") for at in (10000, 20000)), cell(combo, "whitebox-4", last)]
        lines.append(f"| {model} × {task} | " + " | ".join(values) + " |")

    lines += [
        "", f"Fewer, better-placed coordinates: the default's W placed on the {VISIBLE} px the model sees, as its 8×8 lowest "
        "cosines there (d = 192), and CMA-ES on those cosines; each from its own start (zero-program in the first column of "
        "its row); the white-box bound of the cosines.", "",
        "| model × task | row | zero-program | " + " | ".join(f"{b // 1000}k" for b in BUDGETS) + f" | white-box @{last:,} |",
        "|---|---|---|" + "---|" * (len(BUDGETS) + 1),
    ]
    for combo in present:
        model, task = combo.split("/")
        measured_here = [r for r in ("placed", "cosine-8", "cma-es") if cell(combo, r, 0) != "—"]
        for row in ["default", *measured_here] if measured_here else []:
            values = [cell(combo, row, at) for at in [0, *BUDGETS]] + [cell(combo, WHITEBOX_BOUND[row], last) if row in WHITEBOX_BOUND else "—"]
            lines.append(f"| {model} × {task} | {ROW_NAMES.get(row, row)} | " + " | ".join(values) + " |")

    longer = sorted({(c, r) for (c, r, at) in cells if at > BUDGETS[-1] and c in present}, key=lambda k: (COMBOS.index(k[0]), k[1]))
    if longer:
        beyond = sorted({at for (c, r, at) in cells if at > BUDGETS[-1]})
        lines += [
            "", f"Past the budgets: runs extended beyond {BUDGETS[-1]:,} queries (`--budgets {','.join(map(str, beyond))}`), "
            "beside their white-box bound.", "",
            "| model × task | row | zero-program | " + " | ".join(f"{b // 1000}k" for b in [*BUDGETS, *beyond]) + f" | white-box @{last:,} |",
            "|---|---|---|" + "---|" * (len(BUDGETS) + len(beyond) + 1),
        ]
        for combo, row in longer:
            model, task = combo.split("/")
            values = [cell(combo, row, at) for at in [0, *BUDGETS, *beyond]] + [cell(combo, WHITEBOX_BOUND[row], last) if row in WHITEBOX_BOUND else "—"]
            lines.append(f"| {model} × {task} | {ROW_NAMES.get(row, row)} | " + " | ".join(values) + " |")
    return lines


def plot(combo: str, cells: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, task = combo.split("/")
    price = PRICE_PER_1K.get(model, CLARIFAI_PRICE)
    figure, (by_queries, by_dollars) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in (r for r in ROW_ORDER if r in METHODS):
        points = [(at, list(cells[(combo, row, at)].values())) for at in [0, *BUDGETS] if (combo, row, at) in cells]
        if not points:
            continue
        x = np.array([p[0] for p in points])
        mean = np.array([np.mean(p[1]) for p in points])
        sd = np.array([np.std(p[1], ddof=1) if len(p[1]) > 1 else 0.0 for p in points])
        for axes, scale in ((by_queries, 1.0), (by_dollars, price / 1000)):
            axes.errorbar(x * scale, mean, yerr=sd, marker="o", capsize=3, label=row)
    for row, style in (("noapi", ":"), ("whitebox-4", (0, (1, 3))), ("whitebox", "--"), ("whitebox-full", "-.")):
        at = 0 if row == "noapi" else WHITEBOX_IMAGES[-1]
        values = list(cells.get((combo, row, at), {}).values())
        if values:
            for axes in (by_queries, by_dollars):
                axes.axhline(np.mean(values), linestyle=style, color="black", alpha=0.7, label=f"{row}: {np.mean(values):.1%}")
    by_queries.set_xlabel("training queries")
    by_dollars.set_xlabel(f"dollars at ${price:.2f} / 1,000 images")
    for axes in (by_queries, by_dollars):
        axes.set_ylabel("test accuracy")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"{model} × {task}")
    figure.tight_layout()
    figure.savefig(RESULTS / f"fewlabel-{model}-{task}.png", dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", default=",".join(COMBOS), help="model/task pairs, comma-separated")
    parser.add_argument("--targets", action="store_true", help=f"only {', '.join(TARGETS)}")
    parser.add_argument("--rows", default=",".join(ROW_ORDER))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default=",".join(map(str, BUDGETS)))
    parser.add_argument("--threads", type=int, default=2, help="CPU threads for the model (two benchmarks side by side: 1 each)")
    parser.add_argument("--report", action="store_true", help="only write fewlabel.md and the plots from what is measured")
    parser.add_argument("--answers-from", type=Path, action="append", default=[], metavar="FOLDER",
                        help="a bench/.work folder of earlier runs whose stores a rerun of the same configuration answers from")
    args = parser.parse_args()
    if not args.report:
        combos = TARGETS if args.targets else args.combos.split(",")
        measure(combos, args.rows.split(","), [int(s) for s in args.seeds.split(",")], [int(b) for b in args.budgets.split(",")], args.threads,
                AnswerStores(args.answers_from))
    report()


if __name__ == "__main__":
    main()
