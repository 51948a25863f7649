"""Predictions per second at V views (issue: the portfolio): each predicted image is sent through
V programs, all at once (``LearnedProgram.predict``: one engine call, which the adapters batch
or send concurrently), against the local server through TorchServe's and Clarifai's protocols
and against the same model in process. Every image is new (nothing from the cache). Prints one
table and writes ``bench/results/prediction_speed.md``.

    python bench/prediction_speed.py [--views 1,8,48] [--images 24]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

from harness.servers import start_server

from barapi.adapters import build_classifier, client_for
from barapi.run.artifact import LearnedProgram
from barapi.config import MethodConfig, ProviderConfig, RunConfig
from barapi.mock.heads import coarse_model
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.store import Store

WORK = ROOT / "bench" / ".work"
MODEL = "coarse-5"


def portfolio(views: int, labels: list[str]) -> LearnedProgram:
    """V random programs and a readout of the right shape: the speed does not depend on its weights."""
    method = MethodConfig(iterations=0, candidates=max(views, 2), views=views)
    config = RunConfig(name="speed", provider=ProviderConfig(name="local"), method=method)
    rng = np.random.default_rng(views)
    programs = rng.normal(0, 1, size=(views, *method.geometry.parameter_shape))
    readout = {"mean": np.zeros(views * len(labels)), "scale": np.ones(views * len(labels)), "weights": np.zeros((views * len(labels) + 1, 2))}
    return LearnedProgram(config, programs, ["a", "b"], labels, np.zeros((2, 1), dtype=int), readout)


def measure(classifier, views: int, images: int) -> tuple[float, int]:  # noqa: ANN001 - a Classifier
    learned = portfolio(views, classifier.labels())
    targets = np.random.default_rng(images + views).uniform(-1, 1, size=(images, 112, 112, 3))  # new images: no cache hit
    store = Store(Path(tempfile.mkdtemp(prefix="speed-", dir=WORK)))
    began = time.perf_counter()
    result = learned.predict(classifier, store, targets, budget_usd=None, price_per_1k=0.0, ledger=None)
    return images / (time.perf_counter() - began), result.queries_paid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", default="1,8,48")
    parser.add_argument("--images", type=int, default=24)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    server, url = start_server(WORK / "home")
    os.environ.setdefault("CLARIFAI_PAT", "mock-key")
    rows = []
    try:
        classifiers = {"in process": InProcessClassifier(ImageNetModel(home=WORK / "home"), served=coarse_model(MODEL))}
        for name, options in (("TorchServe protocol (concurrent requests)", ProviderConfig(name="torchserve", options={"base_url": url, "model": MODEL})),
                              ("Clarifai protocol (batches of up to 128)", ProviderConfig(name="clarifai", options={"base_url": url, "model": MODEL, "rate_limit": 0}))):
            classifiers[name] = build_classifier(options, client_for(options))
        for views in (int(v) for v in args.views.split(",")):
            for name, classifier in classifiers.items():
                per_second, paid = measure(classifier, views, args.images)
                rows.append((views, name, per_second, paid))
                print(f"  V={views} {name}: {per_second:.2f} predictions/s ({paid} queries)", file=sys.stderr, flush=True)
    finally:
        server.terminate()
    lines = [f"`python bench/prediction_speed.py --views {args.views} --images {args.images}` ({time.strftime('%Y-%m-%d')}, 2-core CPU, server and client on "
             f"one machine, the `{MODEL}` model; every image new)", "",
             "| views V | path | predictions/s | queries/s | queries sent |", "|---|---|---|---|---|"]
    lines += [f"| {v} | {name} | {p:.2f} | {p * v:.1f} | {paid:,} |" for v, name, p, paid in rows]
    (ROOT / "bench" / "results" / "prediction_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
