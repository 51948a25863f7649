"""barapi from Python: reprogram the local ImageNet server to read handwritten digits, predict,
export the program, use the export without the store, and resume the run for more steps.

    python examples/quickstart.py                   # starts `barapi mock serve` for the example
    BARAPI_BASE_URL=http://127.0.0.1:8080 python examples/quickstart.py   # a server you started

Needs the mock extra (pip install 'barapi[mock]'). Dollars are simulated at Clarifai's list price.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
from sklearn.datasets import load_digits

import barapi


@contextmanager
def local_server():
    """The URL of a local ImageNet server: BARAPI_BASE_URL's, or one started for the example."""
    if os.environ.get("BARAPI_BASE_URL"):
        yield os.environ["BARAPI_BASE_URL"]
        return
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "barapi.cli", "mock", "serve", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/ping").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def progress(p: barapi.Progress) -> None:
    if p.phase in ("training", "done"):
        print(f"  {p.phase}: step {p.iteration}/{p.iterations}, {p.queries_paid:,} queries paid, ${p.cost_usd:.4f}")


def main() -> None:
    with local_server() as url:
        # The same settings as `barapi train --provider torchserve --base-url URL --dataset digits ...`.
        # 10 images a class and 3 steps keep the example under a minute (the default is 50 and 20).
        run = barapi.train(
            provider="torchserve", base_url=url, dataset="digits", train_per_class=10, test_size=100, iterations=3,
            price_per_1k=1.20, budget=5.0, on_progress=progress,
        )
        print(f"run {run.name}: test accuracy {run.test_accuracy:.1%}, {run.queries_paid:,} queries, ${run.cost_usd:.2f}, "
              f"program {run.program_sha256[:12]}")

        images = (load_digits().images[-5:] * 255 / 16).astype(np.uint8)  # any images: paths, PIL images or a numpy batch
        predicted = run.predict(images)
        print("predicted:", predicted.labels, "truth:", [str(d) for d in load_digits().target[-5:]])

        with tempfile.TemporaryDirectory() as folder:
            run.export(Path(folder) / "digits-program")
            exported = barapi.load(Path(folder) / "digits-program")  # no store needed: the folder holds the program
            again = exported.predict(images)
            print(f"the export predicts the same: {again.labels == predicted.labels} ({again.queries_paid} queries paid: cached)")

        more = barapi.resume(run.name, iterations=5)
        print(f"resumed to {more.iterations} steps: test accuracy {more.test_accuracy:.1%}, ${more.cost_usd:.2f} in all")


if __name__ == "__main__":
    main()
