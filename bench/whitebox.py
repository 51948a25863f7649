"""White-box bounds trained to convergence: the yardstick every API row is read against.

The default's program (its start W0, its basis, the 8-bit rounding as a straight-through step,
the model's resize and crop, the served head) trained by torch autograd through the same
network (``bench/harness/torchpath.py``), full batch (every training image each step), Adam, the
readout's weights trained jointly from the readout fitted at W0. Training stops at a plateau of
the training loss — no 1 % improvement on the best loss within ``PATIENCE`` steps — or once the
training images are fit (loss below ``FIT_LOSS``: nothing is left to learn from them;
``stopped: "fit"``), or at ``--max-steps`` (``plateau_step: null``: not converged). Nothing is
chosen on the test images: the program at the lowest training loss (full-batch Adam's last steps
can spike) is measured like a black-box run (the readout refitted at that W from the in-process
model's answers) on the shared split's ``--test-size`` held-out images (2,000; 1,297 for the digits).

``--batch B`` (for the digits' 500 images, whose full batch would take an estimated 7–20 h of a
core a seed: 11–32 s a 100-image step here, 441–462 steps on a GPU): Adam steps on B shuffled
images; a step of the count above is then one pass over the images, its loss taken on every
training image at the pass's end, the patience counted in the same Adam steps.

Each (cell, resolution, seed) is one line of ``bench/results/whitebox.jsonl`` with its loss curve,
final loss, plateau step and seconds; a rerun skips what is there. A seed's training so far is
kept after every step (``bench/.work/whitebox-checkpoints``), its black-box answers beside it: a
killed seed resumes at its last step, on the same trajectory, without paying its start's
measurement again, so a seed longer than one sitting can be run in parts.

    python bench/whitebox.py --threads 1                       # the three target cells, 16×16
    python bench/whitebox.py --resolutions full --max-steps 300
    python bench/whitebox.py --combos project/digits --batch 100 --max-steps 30
    bash bench/whitebox-gpu.sh    # on a lent GPU: WORKERS processes (--device cuda --queue DIR) over every cell
    python bench/whitebox.py --report                          # bench/results/whitebox.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from harness.cells import COMBOS, DEFAULT, TARGETS, WHITEBOX_RESULTS, WORK, by_parts, fewlabel_config, served_model, whitebox_bounds
from harness.results import RESULTS
from harness.torchpath import TorchNetwork, TorchPath

from barapi.method.losses import class_weights
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.method.readout import LinearReadout
from barapi.store import Store
from barapi.run.trainer import Trainer

MEASURED = WHITEBOX_RESULTS
RESOLUTIONS = {"16": (16, 0.05), "full": (None, 0.01)}  # W's side (None: every canvas pixel) and Adam's step
PATIENCE, IMPROVEMENT, FIT_LOSS = 25, 0.01, 1e-3
CHUNK = 100  # images through the network at once: a full batch of the digits' 500 is ~16 GB of activations
TEST_SIZE = 2000
CELLS = TARGETS + [c for c in COMBOS if c not in TARGETS and not c.startswith("imagenet/")]  # every few-label cell, the targets first
CHECKPOINTS = WORK / "whitebox-checkpoints"


def job_name(combo: str, resolution: str, seed: int) -> str:
    """One (cell, resolution, seed) as a file name: its checkpoint's, its answers', its claim in a queue."""
    return f"{combo.replace('/', '-')}-{resolution}-seed{seed}"


def checkpoint_file(combo: str, resolution: str, seed: int, batch: int) -> Path:
    return CHECKPOINTS / f"{job_name(combo, resolution, seed)}-batch{batch}.pt"


def answers_store(combo: str, resolution: str, seed: int) -> Path:
    """Where a seed's black-box answers (its start's and its end's test accuracy) are kept until its line is written."""
    return CHECKPOINTS / f"{job_name(combo, resolution, seed)}-answers"


def forget(combo: str, resolution: str, seed: int, batch: int) -> None:
    """A seed's checkpoint and answers store, once its line is written (or for a step that was not a job)."""
    checkpoint_file(combo, resolution, seed, batch).unlink(missing_ok=True)
    shutil.rmtree(answers_store(combo, resolution, seed), ignore_errors=True)


def measured() -> list[dict]:
    return whitebox_bounds()


def converge(classifier: InProcessClassifier, combo: str, resolution: str, seed: int, max_steps: int, batch: int = 0, device: str = "cpu") -> dict:
    import torch

    torch.manual_seed(seed)
    side, lr = RESOLUTIONS[resolution]
    method = DEFAULT.model_copy(update={"geometry": DEFAULT.geometry.model_copy(update={"program_resolution": side})})
    config = fewlabel_config(combo.split("/")[1], method, seed)
    config = config.model_copy(update={"data": config.data.model_copy(update={"test_size": TEST_SIZE})})
    trainer = Trainer(config, classifier, Store(answers_store(combo, resolution, seed)))  # a resumed seed finds its answers cached
    state = trainer.start()
    start_accuracy = trainer.test_accuracy(state)
    path, split = TorchPath(classifier, trainer.program, device), trainer.split
    w = path.tensor(trainer.optimizer.w)
    readout = path.readout(LinearReadout.fit(trainer.training_answers(state), split.y_train, split.n_classes, method.readout_l2))
    readout["weights"].requires_grad_(True)
    optimiser = torch.optim.Adam([w, readout["weights"]], lr=lr)
    weights = class_weights(split.y_train, split.n_classes)
    losses: list[float] = []
    best, best_at, plateau_step, stopped, started = float("inf"), 0, None, "max-steps", time.monotonic()
    lowest_w, lowest_at = w.detach().clone(), 0  # the program at the lowest training loss: what is measured
    n, batch = len(split.y_train), batch or len(split.y_train)
    shuffle = np.random.default_rng(seed)
    patience = max(1, -(-PATIENCE * batch // n))  # PATIENCE counts Adam steps; a pass over the images takes n / batch of them
    saved = checkpoint_file(combo, resolution, seed, batch)
    saving = saved.with_suffix(".tmp")  # written whole, then renamed: a kill mid-write leaves the previous step's
    saved.parent.mkdir(parents=True, exist_ok=True)
    if saved.exists():
        kept = torch.load(saved, map_location=device)
        with torch.no_grad():
            w.copy_(kept["w"])
            readout["weights"].copy_(kept["readout"])
        optimiser.load_state_dict(kept["optimiser"])
        shuffle.bit_generator.state = kept["shuffle"]
        losses, best, best_at, lowest_w, lowest_at = kept["losses"], kept["best"], kept["best_at"], kept["lowest_w"], kept["lowest_at"]
        started -= kept["seconds"]
        print(f"  {combo} {resolution} seed {seed}: resumed after step {len(losses)} ({kept['seconds']:.0f} s)", file=sys.stderr, flush=True)

    def loss_on(part: np.ndarray, backward: bool) -> float:
        """The focal loss on these images (a mean), its gradient accumulated chunk by chunk: the
        same value and step as in one piece, in the memory of CHUNK images."""
        total = 0.0
        for chunk in np.array_split(part, -(-len(part) // CHUNK)):
            loss = path.focal_loss(w, split.x_train[chunk], split.y_train[chunk], readout, weights, method.focal_gamma) * (len(chunk) / len(part))
            if backward:
                loss.backward()
            total += loss.item()
        return total

    for step in range(len(losses) + 1, max_steps + 1):  # a step: one pass over the training images (one Adam step when full batch)
        at_start = w.detach().clone()
        order = shuffle.permutation(n) if batch < n else np.arange(n)
        for start in range(0, n, batch):
            optimiser.zero_grad()
            loss = loss_on(order[start:start + batch], backward=True)
            optimiser.step()
        if batch < n:  # the loss of the program the pass ended at, on every training image
            with torch.no_grad():
                loss = loss_on(np.arange(n), backward=False)
        measured_w = at_start if batch == n else w.detach().clone()  # full batch: the loss is of the program before its step
        if float(loss) < min(losses, default=float("inf")):
            lowest_w, lowest_at = measured_w, step
        losses.append(round(float(loss), 5))
        if losses[-1] < best * (1 - IMPROVEMENT):
            best, best_at = losses[-1], step
        if step - best_at >= patience or losses[-1] < FIT_LOSS:
            plateau_step, stopped = step, "plateau" if step - best_at >= patience else "fit"
            break
        if step % 10 == 0 or batch < n:
            print(f"  {combo} {resolution} seed {seed}: step {step}, loss {losses[-1]:.4f} ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        torch.save({"w": w.detach(), "readout": readout["weights"].detach(), "optimiser": optimiser.state_dict(),
                    "shuffle": shuffle.bit_generator.state, "losses": losses, "best": best, "best_at": best_at,
                    "lowest_w": lowest_w, "lowest_at": lowest_at, "seconds": time.monotonic() - started}, saving)
        os.replace(saving, saved)
    seconds = time.monotonic() - started
    trainer.optimizer.w = lowest_w.cpu().numpy()[0].transpose(1, 2, 0).astype(np.float64)
    state.mapping.read_at = -1  # measured like a black-box run: the readout refitted at this W
    return {"combo": combo, "resolution": resolution, "seed": seed, "start_accuracy": start_accuracy,
            "accuracy": trainer.test_accuracy(state), "test_images": len(split.y_test), "steps": len(losses),
            "plateau_step": plateau_step, "stopped": stopped, "final_loss": losses[-1], "losses": losses, "lr": lr,
            "measured_step": lowest_at, "measured_loss": losses[lowest_at - 1],
            "train_images": n, "batch": batch, "seconds": round(seconds), "device": device, "date": time.strftime("%Y-%m-%d")}


def taken(queue: Path | None, combo: str, resolution: str, seed: int) -> bool:
    """Whether another process of the same ``queue`` folder has already taken this job (else it is now this one's)."""
    if queue is None:
        return False
    try:
        (queue / job_name(combo, resolution, seed)).mkdir(parents=True)
        return False
    except FileExistsError:
        return True


def measure(combos: list[str], resolutions: list[str], seeds: list[int], max_steps: int, threads: int, batch: int,
            device: str = "cpu", queue: Path | None = None, out: Path = MEASURED) -> None:
    """Each (cell, resolution, seed) not yet measured: the target cells first, then 16×16 before
    full resolution (the cheaper first), cells in the order given. Processes given one ``queue``
    folder split the list, each taking the next job none has taken (on a GPU, several processes
    keep it busy while each measures on the CPU)."""
    import torch

    torch.set_num_threads(threads)
    torch.backends.cudnn.benchmark = True  # the shapes are fixed (CHUNK images), so cudnn's timed choice of kernels pays
    WORK.mkdir(exist_ok=True)
    out.parent.mkdir(exist_ok=True)
    network = TorchNetwork(device) if device != "cpu" else ImageNetModel(home=WORK / "home", threads=threads)
    done = {(m["combo"], m["resolution"], m["seed"]) for m in measured()}
    jobs = sorted(((c, r, s) for c in combos for r in resolutions for s in seeds if (c, r, s) not in done),
                  key=lambda job: (job[0] not in TARGETS, job[1] == "full"))
    for combo, resolution, seed in jobs:
        if taken(queue, combo, resolution, seed):
            continue
        classifier = InProcessClassifier(network, served=served_model(combo.split("/")[0], network))
        entry = converge(classifier, combo, resolution, seed, max_steps, batch, device)
        with out.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
        forget(combo, resolution, seed, entry["batch"])
        print(json.dumps({k: v for k, v in entry.items() if k != "losses"}), flush=True)


def stopping(entry: dict) -> str:
    """Where the loss curve plateaued or fit the training images, and where training stopped."""
    fit = next((i + 1 for i, loss in enumerate(entry["losses"]) if loss < FIT_LOSS), None)
    said = f"fit at {fit}" if fit else f"plateau at {entry['plateau_step']}" if entry["plateau_step"] else "neither"
    passes = f" passes of {entry['batch']}-image steps" if by_parts(entry) else ""
    return f"{said}; ran {entry['steps']}{passes}" + (f"; measured at {entry['measured_step']}" if "measured_step" in entry else "")


def seconds(rows: list[dict]) -> str:
    """Training seconds per seed, by where they ran: a core here and a shared GPU differ 100-fold."""
    where = sorted({e.get("device", "cpu") for e in rows})
    return "; ".join(f"{statistics.mean(e['seconds'] for e in rows if e.get('device', 'cpu') == d):,.0f} ({d})" for d in where)


def report() -> str:
    entries = measured()
    lines = ["# White-box bounds trained to convergence", "",
             f"`python bench/whitebox.py --report`, from `bench/results/whitebox.jsonl` ({TEST_SIZE:,} held-out images, 1,297 for the "
             "digits; 50 training images per class, split seed 0). Full-batch Adam through the served model (autograd, the 8-bit "
             "rounding straight-through; rows that say \"passes\" took Adam steps on shuffled parts of the images, a step below being "
             "one pass, its loss on every training image), readout weights jointly; stopped at a plateau (no "
             f"{IMPROVEMENT:.0%} gain in the training loss within {PATIENCE} Adam steps), once the training loss is below {FIT_LOSS} (the training images fit), or at --max-steps. "
             "Accuracy of the program at the lowest training loss (the last step's in the runs that predate that rule, seed 0: their "
             "last loss was their lowest region), measured like a black-box run. \"neither\" in the last column: training reached "
             "--max-steps before either rule held — not converged by this bench's rules, a figure below the bound. Where: cpu, one core "
             "here; cuda, one H200 shared by the 2 to 9 processes of `bench/whitebox-gpu.sh` (a row's seconds: its share of it, summed over the calls a resumed seed took), the "
             "black-box measurement there the same network run by torch (`torchpath.TorchNetwork`).", "",
             "| cell | W | seeds | start | trained | training loss of the program measured | stopped at step | training seconds per seed (where) |",
             "|---|---|---|---|---|---|---|---|"]
    for combo in CELLS:
        for resolution in RESOLUTIONS:
            rows = [e for e in entries if e["combo"] == combo and e["resolution"] == resolution]
            if not rows:
                continue

            def cell(values: list[float], scale: float = 100, digits: int = 1) -> str:
                return f"{scale * statistics.mean(values):.{digits}f}" + (f" ± {scale * statistics.stdev(values):.{digits}f}" if len(values) > 1 else "")

            plateaus = ", ".join(stopping(e) for e in rows)
            lines.append(f"| {combo} | {'16×16' if resolution == '16' else 'full'} | {len(rows)} | {cell([e['start_accuracy'] for e in rows])} | "
                         f"**{cell([e['accuracy'] for e in rows])}** | {cell([e.get('measured_loss', e['final_loss']) for e in rows], 1, 5)} | {plateaus} | "
                         f"{seconds(rows)} |")
    superseded = [json.loads(line) for line in MEASURED.read_text().splitlines() if line.strip() and "superseded" in line] if MEASURED.exists() else []
    lines += [""] + [f"Superseded: {e['combo']} seed {e['seed']}, {100 * e['accuracy']:.1f} % — {e['superseded']}." for e in superseded]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--combos", nargs="+", default=TARGETS)
    parser.add_argument("--all-cells", action="store_true", help="every few-label cell, the targets first (instead of --combos)")
    parser.add_argument("--resolutions", nargs="+", default=["16"], choices=list(RESOLUTIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=0, help="images per Adam step (0: every training image); a step of --max-steps is then one pass")
    parser.add_argument("--device", default="cpu", help="where torch trains and measures (cuda: a GPU; the black-box measurement then runs the same network in torch there)")
    parser.add_argument("--queue", type=Path, help="a folder that several processes share: each takes the next missing (cell, resolution, seed) none has taken")
    parser.add_argument("--out", type=Path, default=MEASURED, help="where the measurements are appended (a GPU machine's workers: one file each, merged here)")
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if not args.report:
        measure(CELLS if args.all_cells else args.combos, args.resolutions, args.seeds, args.max_steps, args.threads, args.batch, args.device, args.queue, args.out)
    text = report()
    (RESULTS / "whitebox.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
