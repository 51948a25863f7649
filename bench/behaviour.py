"""A fingerprint of what training does, to show that a refactoring changed nothing: for a fixed
seed, each mapping, estimator and step rule (and CMA-ES, a portfolio) trains a small run through
the in-process model, and its program_sha256, queries paid and test accuracy are printed, one
JSON line each. Run it on two revisions and compare the lines:

    python bench/behaviour.py > after.jsonl
    (cd /tmp/old && PYTHONPATH=. python /work/main/bench/behaviour.py) > before.jsonl   # an older tree laid out as a package
    diff before.jsonl after.jsonl
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from barapi.config import DataConfig, MethodConfig, ProviderConfig, RunConfig
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.store import Store
from barapi.run.trainer import Trainer

SMALL = {"iterations": 3, "batch_size": 4, "q": 2}
CASES: dict[str, dict] = {
    **{f"mapping={m}": {"mapping": m} for m in ("linear", "frequency", "random", "iterative")},
    **{f"estimator={e},rule={r}": {"estimator": e, "optimizer": r} for e in ("one-sided", "two-sided", "spsa") for r in ("adam", "sgd", "sign-sgd")},
    "optimizer=cma-es": {"optimizer": "cma-es"},
    "loss=ce": {"loss": "ce"},
    "basis=cosine": {"geometry": {"basis": "cosine", "program_resolution": 8, "embed_size": 112}},
    "portfolio=2of3": {"iterations": 0, "views": 2, "candidates": 3},
}


def main() -> None:
    network = ImageNetModel()
    for name, update in CASES.items():
        method = MethodConfig.model_validate(MethodConfig().model_dump() | SMALL | update)
        config = RunConfig(name="fingerprint", seed=7, provider=ProviderConfig(name="local"),
                           data=DataConfig(dataset="digits", train_per_class=3, test_size=10, split_seed=0), method=method)
        result = Trainer(config, InProcessClassifier(network), Store(Path(tempfile.mkdtemp(prefix="fingerprint-")))).run()
        print(json.dumps({"case": name, "program_sha256": result.program_sha256, "queries_paid": result.queries_paid,
                          "test_accuracy": result.test_accuracy}), flush=True)


if __name__ == "__main__":
    main()
