"""What a zeroth-order step can see: the estimate against the true gradient (issue: the program
carries the learning).

At each learning target's starting program (bench/fewlabel.py's split, training images only),
for a batch of 20 training images: the gradient of the training loss (focal, through the
readout fitted at W0) by autograd through the same network and head (``torchpath.TorchPath``),
and the two-sided estimate from ``q`` unit-sphere directions at several β, every loss read
through the black-box path (8-bit PNG, the model's own preprocessing). Per β:

- ``cos``: cosine between the estimate and the gradient (exact directional derivatives along
  q random directions would give about √(q/d));
- ``slope kept``: mean |finite difference| / mean |β ∇L·u|, how much of the local slope is still
  there at the scale of the step (1 on a linear loss).

And how much a query can carry at all: at the same starting program, the gradient of each
training image's loss by autograd (up to ``NOISE_IMAGES`` of them), at several resolutions of W.
Their mean g and spread σ² = mean ‖g_i − g‖² give the number of images a white-box step must
average before the mean gradient stands out of the per-image noise, N* = σ² / ‖g‖², and the
queries a two-sided estimate needs for the same, Q* ≈ 2d·N*: averaged over a run, q unit-sphere
directions on b images cost 2qb queries and leave d/q·‖g_b‖² of variance, whatever q and b.

And what the 8-bit rounding costs: at the same program and batches, the two-sided estimate of
the default (each side rounded to grey levels on its own, so the pair differs by the intended
move plus the two roundings) against one whose directions are whole grey levels already — every
14×14 cell of the 16×16 grid moved by ±k levels, so both sides are exactly the rounded program
± that pattern and the pair differs by nothing else — each against its own autograd gradient (W's;
the cells' uniform shift's).

One line per measurement in ``bench/results/zo_signal.jsonl``, ``gradient_noise.jsonl`` and
``exact_moves.jsonl`` (a rerun skips what is there); ``--report`` writes ``zo_signal.md``.

    python bench/zo_signal.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from harness.torchpath import TorchPath
from harness.cells import in_process, COSINE_8, PLACED, TARGETS, WORK, fewlabel_config
from harness.results import RESULTS, read_lines

from barapi.config import PRESETS
from barapi.method.losses import class_weights, focal_loss
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.method.program import Program, quantize
from barapi.config import GREY_LEVEL
from barapi.method.readout import LinearReadout
from barapi.store import Store
from barapi.run.trainer import Trainer

MEASURED = RESULTS / "zo_signal.jsonl"
NOISE = RESULTS / "gradient_noise.jsonl"
EXACT = RESULTS / "exact_moves.jsonl"
EXACT_LEVELS = [1, 2]  # k of the whole-level cell patterns
EXACT_TRIALS = 6
# The canvas as the default sends it (224 px: the model resizes it to 256, bicubic, back to 8 bits,
# and crops 224) and one the model's preprocessing leaves alone (256 px: no resize; the crop
# keeps the centre 224 exactly, where the program is placed).
EXACT_GEOMETRIES = {"224": {}, "256": {"canvas_size": 256, "embed_size": 128, "visible_size": 224}}
BETAS = [0.1, 0.3, 1.0, 2.0]
RESOLUTIONS = [4, 16]
# W's of the noise count: a resolution of the default's grid, or a named geometry (fewlabel's rows).
NOISE_RESOLUTIONS: list[int | str | None] = [4, 8, 16, None, "placed", "cosine-8"]
NOISE_GEOMETRIES = {"placed": PLACED, "cosine-8": COSINE_8}
NOISE_NAMES = {"placed": "16×16 placed", "cosine-8": "8×8 cosines, placed"}
NOISE_IMAGES = 200
DIRECTIONS, BATCH, TRIALS = 20, 20, 4


def measure(combos: list[str], network: ImageNetModel) -> None:
    done = {(m["combo"], m["resolution"], m["trial"]) for m in read_lines(MEASURED)}
    for combo in combos:
        model, task = combo.split("/")
        classifier = in_process(model, network)
        for resolution in RESOLUTIONS:
            trials = [t for t in range(TRIALS) if (combo, resolution, t) not in done]
            if not trials:
                continue
            method, split, program, w0, weights, fitted = starting_point(classifier, task, resolution)
            path = TorchPath(classifier, program)
            for trial in trials:
                rng = np.random.default_rng([resolution, trial, 0x516])
                batch = rng.choice(len(split.y_train), size=BATCH, replace=False)
                x, y = split.x_train[batch], split.y_train[batch]
                w = path.tensor(w0)
                path.focal_loss(w, x, y, path.readout(fitted), weights, method.focal_gamma).backward()
                gradient = w.grad.numpy()[0].transpose(1, 2, 0).astype(np.float64)
                loss = lambda v: focal_loss(fitted.target_scores(answers(classifier, program, v, x)), y, weights, method.focal_gamma)  # noqa: E731
                row = {"combo": combo, "resolution": resolution, "trial": trial, "d": int(w0.size), "gradient_norm": float(np.linalg.norm(gradient)), "betas": {}}
                for beta in BETAS:
                    directions = [u / np.linalg.norm(u) for u in rng.standard_normal((DIRECTIONS, *w0.shape))]
                    differences = np.array([(loss(w0 + beta * u) - loss(w0 - beta * u)) / 2 for u in directions])
                    linear = np.array([beta * float(np.sum(gradient * u)) for u in directions])
                    estimate = w0.size / DIRECTIONS * np.tensordot(differences / beta, np.stack(directions), axes=1)
                    row["betas"][str(beta)] = {"cos": cosine(estimate, gradient), "slope_kept": float(np.mean(np.abs(differences)) / np.mean(np.abs(linear))),
                                               "sign_agreement": float(np.mean(np.sign(differences) == np.sign(linear)))}
                with MEASURED.open("a") as handle:
                    handle.write(json.dumps(row | {"ts": time.time()}) + "\n")
                print(f"  {combo} {resolution}×{resolution} trial {trial}: {row['betas']}", file=sys.stderr, flush=True)


def measure_noise(combos: list[str], network: ImageNetModel) -> None:
    done = {(m["combo"], m["resolution"]) for m in read_lines(NOISE)}
    for combo in combos:
        model, task = combo.split("/")
        classifier = in_process(model, network)
        for resolution in NOISE_RESOLUTIONS:
            if (combo, resolution) in done:
                continue
            method, split, program, w0, weights, fitted = starting_point(classifier, task, resolution)
            path = TorchPath(classifier, program)
            readout = path.readout(fitted)
            rng = np.random.default_rng(0x6E0)
            chosen = rng.choice(len(split.y_train), size=min(NOISE_IMAGES, len(split.y_train)), replace=False)
            gradients = []
            for i in chosen:
                w = path.tensor(w0)
                # The batch loss is the mean of these (class weights included).
                path.focal_loss(w, split.x_train[i : i + 1], split.y_train[i : i + 1], readout, weights, method.focal_gamma).backward()
                gradients.append(w.grad.numpy().ravel().astype(np.float64))
            g = np.stack(gradients)
            mean = g.mean(axis=0)
            spread = float(np.mean(np.sum((g - mean) ** 2, axis=1)))
            # ‖mean‖² overstates the expected gradient's by σ²/n; the difference is unbiased.
            signal = float(np.sum(mean**2)) - spread / len(g)
            row = {"combo": combo, "resolution": resolution, "d": int(w0.size), "n": len(g), "spread": spread, "mean_norm2": float(np.sum(mean**2)), "signal": signal}
            with NOISE.open("a") as handle:
                handle.write(json.dumps(row | {"ts": time.time()}) + "\n")
            print(f"  {combo} resolution {resolution}: {row}", file=sys.stderr, flush=True)


def measure_exact(combos: list[str], network: ImageNetModel) -> None:
    done = {(m["combo"], m.get("canvas", "224"), m["trial"]) for m in read_lines(EXACT)}
    for combo in combos:
        model, task = combo.split("/")
        classifier = in_process(model, network)
        for canvas, update in EXACT_GEOMETRIES.items():
            trials = [t for t in range(EXACT_TRIALS) if (combo, canvas, t) not in done]
            if trials:
                exact_trials(classifier, combo, canvas, update, trials)


def exact_trials(classifier: InProcessClassifier, combo: str, canvas: str, update: dict, trials: list[int]) -> None:
    method, split, program, w0, weights, fitted = starting_point(classifier, combo.split("/")[1], 16, update)
    g = method.geometry
    grid = TorchPath(classifier, program)
    pixels = TorchPath(classifier, Program(g.model_copy(update={"program_resolution": None, "visible_size": None})))
    pre_tanh = np.einsum("ir,rsc,js->ijc", program.expansion, w0, program.expansion)  # the canvas before tanh, as a full-resolution W
    cell, start = g.span // 16, (g.canvas_size - g.span) // 2
    base = quantize(program.perturbation(w0)).astype(int)
    band = program.mask.astype(bool)

    def loss_of(canvas: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        scores = scores_of(classifier, program.encode_on(canvas.astype(np.uint8), x))
        return focal_loss(fitted.target_scores(scores), y, weights, method.focal_gamma)

    def cells(signs: np.ndarray) -> np.ndarray:
        pattern = np.zeros((g.canvas_size, g.canvas_size, 3))
        pattern[start : start + 16 * cell, start : start + 16 * cell] = np.repeat(np.repeat(signs, cell, axis=0), cell, axis=1)
        return pattern * band

    for trial in trials:
        rng = np.random.default_rng([trial, 0xE4AC7])
        batch = rng.choice(len(split.y_train), size=BATCH, replace=False)
        x, y = split.x_train[batch], split.y_train[batch]
        readout = grid.readout(fitted)
        w = grid.tensor(w0)
        grid.focal_loss(w, x, y, readout, weights, method.focal_gamma).backward()
        g_w = w.grad.numpy()[0].transpose(1, 2, 0).astype(np.float64)
        v = pixels.tensor(pre_tanh)
        pixels.focal_loss(v, x, y, readout, weights, method.focal_gamma).backward()
        # ∂L/∂(one grey level up in every pixel of a cell), tanh' ≈ 1 at the small W0
        g_pixel = v.grad.numpy()[0].transpose(1, 2, 0).astype(np.float64) * GREY_LEVEL * band
        g_cells = g_pixel[start : start + 16 * cell, start : start + 16 * cell].reshape(16, cell, 16, cell, 3).sum(axis=(1, 3))
        row = {"combo": combo, "canvas": canvas, "trial": trial, "d": int(w0.size), "ideal": float(np.sqrt(DIRECTIONS / w0.size))}
        beta = method.perturbation_radius
        directions = [u / np.linalg.norm(u) for u in rng.standard_normal((DIRECTIONS, *w0.shape))]
        differences = np.array([(loss_of(quantize(program.perturbation(w0 + beta * u)), x, y)
                                 - loss_of(quantize(program.perturbation(w0 - beta * u)), x, y)) / 2 for u in directions])
        row["rounded"] = cosine(np.tensordot(differences, np.stack(directions), axes=1), g_w)
        for k in EXACT_LEVELS:
            signs = rng.choice((-1, 1), size=(DIRECTIONS, 16, 16, 3))
            moves = [cells(s) * k for s in signs]
            differences = np.array([(loss_of(np.clip(base + m, 0, 255), x, y) - loss_of(np.clip(base - m, 0, 255), x, y)) / 2 for m in moves])
            row[f"exact_{k}"] = cosine(np.tensordot(differences, signs.astype(float), axes=1), g_cells)
        with EXACT.open("a") as handle:
            handle.write(json.dumps(row | {"ts": time.time()}) + "\n")
        print(f"  {combo} {canvas} trial {trial}: {row}", file=sys.stderr, flush=True)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * b) / np.linalg.norm(a) / np.linalg.norm(b))


def starting_point(classifier: InProcessClassifier, task: str, resolution: int | str | None, geometry: dict | None = None):  # noqa: ANN201
    """The default's starting program at this resolution (or named geometry), as a run draws it, and its readout."""
    default = PRESETS["default"]
    update = NOISE_GEOMETRIES[resolution] if isinstance(resolution, str) else {"program_resolution": resolution}
    update |= geometry or {}
    method = default.model_copy(update={"geometry": default.geometry.model_copy(update=update)})
    trainer = Trainer(fewlabel_config(task, method, 0), classifier, Store(Path(tempfile.mkdtemp(prefix="zo-signal-", dir=WORK))))
    split, program = trainer.split, trainer.program
    trainer.start()
    w0 = trainer.optimizer.w
    fitted = LinearReadout.fit(answers(classifier, program, w0, split.x_train), split.y_train, split.n_classes, method.readout_l2)
    return method, split, program, w0, class_weights(split.y_train, split.n_classes), fitted


def answers(classifier: InProcessClassifier, program, w: np.ndarray, images: np.ndarray) -> np.ndarray:  # noqa: ANN001
    return scores_of(classifier, program.encode_batch(w, images))


def scores_of(classifier: InProcessClassifier, sent: list[bytes]) -> np.ndarray:
    """The model's answers to these images, one column per label."""
    return np.stack([[r[label] for label in classifier.labels()] for r in classifier.predict(sent)])


def report() -> None:
    entries = read_lines(MEASURED)
    lines = [
        "# What a zeroth-order step sees at the starting program",
        "",
        f"`python bench/zo_signal.py` (2-core CPU). Per learning target, at the default's starting program: the gradient of "
        f"the training loss on {BATCH} training images by autograd through the same network and head, against the two-sided "
        f"estimate from {DIRECTIONS} unit-sphere directions read through the black-box path (8-bit images). cos: cosine of "
        f"the two (exact directional derivatives would give ≈ √(q/d)); slope kept: mean |finite difference| / mean |β·∇L·u| "
        f"(1 if the loss were linear at that scale); sign: how often the difference has the sign the gradient predicts "
        f"(0.5 = chance). Mean over the batches measured (n).",
        "",
        "| model × task | W | d | n | √(q/d) | " + " | ".join(f"β = {b}: cos / slope kept / sign" for b in BETAS) + " |",
        "|---|---|---|---|---|" + "---|" * len(BETAS),
    ]
    for combo in sorted({e["combo"] for e in entries}):
        for resolution in RESOLUTIONS:
            rows = [e for e in entries if e["combo"] == combo and e["resolution"] == resolution]
            if not rows:
                continue
            d = rows[0]["d"]
            cells = []
            for beta in BETAS:
                values = [r["betas"][str(beta)] for r in rows]
                cells.append(" / ".join(f"{np.mean([v[k] for v in values]):.2f}" for k in ("cos", "slope_kept", "sign_agreement")))
            lines.append(f"| {combo} | {resolution}×{resolution} | {d} | {len(rows)} | {np.sqrt(DIRECTIONS / d):.2f} | " + " | ".join(cells) + " |")
    lines += noise_report() + exact_report()
    (RESULTS / "zo_signal.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def noise_report() -> list[str]:
    entries = read_lines(NOISE)
    if not entries:
        return []
    lines = [
        "",
        "## How much one query can carry",
        "",
        f"Per-image gradients of the training loss by autograd at the default's starting program (up to {NOISE_IMAGES} training "
        "images), σ² their spread (mean ‖g_i − ḡ‖²). Two signals: ‖ḡ‖², the training-set gradient that a run descends, and "
        "‖g‖² = ‖ḡ‖² − σ²/n, the expected gradient that would carry to new images (unbiased; ≤ 0: none stands out of these n). "
        "N = σ²/signal: how many images a gradient must average before the signal stands out of the per-image noise "
        "(signal-to-noise 1); Q ≈ 2d·N: the queries an ideal two-sided estimate (exact differences, unit-sphere directions) "
        "needs for the same, whatever its q and batch size. The 8-bit path only adds to it (the cosines above).",
        "",
        "| model × task | W | d | n | σ² | training set: ‖ḡ‖²/σ² | N | Q | expected: ‖g‖²/σ² | N | Q |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in sorted(entries, key=lambda e: (e["combo"], e["d"])):
        side = NOISE_NAMES.get(e["resolution"]) or (f"{e['resolution']}×{e['resolution']}" if e["resolution"] else "full")
        cells = []
        for signal in (e["mean_norm2"], e["signal"]):
            ratio = signal / e["spread"]
            cells += [f"{ratio:.4f}", f"{1 / ratio:,.0f}", f"{2 * e['d'] / ratio:,.0f}"] if ratio > 0 else [f"{ratio:.4f}", "∞", "∞"]
        lines.append(f"| {e['combo']} | {side} | {e['d']:,} | {e['n']} | {e['spread']:.1f} | " + " | ".join(cells) + " |")
    return lines


def exact_report() -> list[str]:
    entries = read_lines(EXACT)
    if not entries:
        return []
    lines = [
        "",
        "## What the 8-bit rounding costs",
        "",
        f"At the default's starting program (16×16 `W`), {BATCH} training images a batch, {DIRECTIONS} directions: cosine with "
        "the autograd gradient of (a) the default's two-sided estimate, each side rounded to grey levels on its own, against "
        "W's gradient; (b) an estimate whose moves are whole grey levels already (each 14×14 cell of the grid ± k levels: both "
        "sides exactly the rounded program ± the pattern), against the gradient of the cells' uniform shifts. Canvas 224: as "
        "the default sends it, resized by the model to 256 (bicubic, back to 8 bits) and cropped; canvas 256: the model's "
        "resize leaves it alone and its crop keeps the centre 224 exactly, where the program is placed. Mean ± standard "
        "error over the batches (n); exact differences of a linear loss would give √(q/d).",
        "",
        "| model × task | canvas | n | √(q/d) | (a) rounded, β = 1.5 levels | (b) whole levels, k = 1 | k = 2 |",
        "|---|---|---|---|---|---|---|",
    ]
    for combo in sorted({e["combo"] for e in entries}):
        for canvas in EXACT_GEOMETRIES:
            rows = [e for e in entries if e["combo"] == combo and e.get("canvas", "224") == canvas]
            if not rows:
                continue
            cells = [f"{np.mean([r[k] for r in rows]):.3f} ± {np.std([r[k] for r in rows], ddof=1) / np.sqrt(len(rows)):.3f}"
                     for k in ("rounded", *(f"exact_{k}" for k in EXACT_LEVELS))]
            lines.append(f"| {combo} | {canvas} | {len(rows)} | {rows[0]['ideal']:.2f} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", default=",".join(TARGETS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        import torch

        torch.set_num_threads(args.threads)
        network = ImageNetModel(home=WORK / "home", threads=args.threads)  # one load for both measurements
        measure(args.combos.split(","), network)
        measure_noise(args.combos.split(","), network)
        measure_exact(args.combos.split(","), network)
    report()


if __name__ == "__main__":
    main()
