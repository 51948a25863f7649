"""Request rate each adapter sustains against the local server, with its client-side rate
limiter off and at its default, beside the server's own capacity (the model in-process).

    python bench/providers.py [--images 240]
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import httpx
import numpy as np

from barapi.adapters.azure import DEFAULT_RATE_PER_SECOND as AZURE_RATE
from barapi.adapters.azure import AzureCustomVisionClassifier
from barapi.adapters.clarifai import DEFAULT_RATE_PER_SECOND as CLARIFAI_RATE
from barapi.adapters.clarifai import ClarifaiClassifier
from barapi.adapters.torchserve import TorchServeClassifier
from barapi.mock.model import ImageNetModel, InProcessClassifier
from barapi.mock.server import MockServer
from barapi.method.program import Program, initial_parameters
from barapi.config import Geometry

WORK = Path(__file__).resolve().parent / ".work"


def timed(classifier, images: list[bytes]) -> tuple[float, int]:
    """(seconds, HTTP requests) to score the images."""
    sender = getattr(classifier, "sender", None)
    before = sender.attempts if sender else 0
    start = time.perf_counter()
    classifier.predict(images)
    return time.perf_counter() - start, (sender.attempts - before) if sender else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=240)
    args = parser.parse_args()
    WORK.mkdir(exist_ok=True)
    model = ImageNetModel(home=WORK / "home")
    g = Geometry(program_resolution=16)
    rng = np.random.default_rng(0)
    images = Program(g).encode_batch(initial_parameters(g, 0.5, rng), rng.uniform(-1, 1, (args.images, 64, 64, 3)))
    server = MockServer("127.0.0.1", 0, model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    client = httpx.Client()
    local = InProcessClassifier(model)
    local.predict(images[:32])
    seconds, _ = timed(local, images)
    capacity = args.images / seconds
    rows = [("model in-process (server capacity)", "—", capacity, None)]
    adapters = {
        "torchserve": lambda rate: TorchServeClassifier(client, base_url=url, rate_per_second=rate),
        "clarifai": lambda rate: ClarifaiClassifier(client, pat="mock-key", base_url=url, rate_per_second=rate),
        "azure": lambda rate: AzureCustomVisionClassifier(client, key="mock-key", endpoint=url, project_id="p", iteration="i", rate_per_second=rate),
    }
    defaults = {"torchserve": None, "clarifai": CLARIFAI_RATE, "azure": AZURE_RATE}
    for name, build in adapters.items():
        build(None).predict(images[:8])
        for label, rate in (("off", None), (f"{defaults[name]:g}/s" if defaults[name] else "off (default)", defaults[name])):
            if rate is None and label != "off":
                continue
            seconds, requests = timed(build(rate), images)
            rows.append((f"{name}, limiter {label}", f"{requests / seconds:.1f}", args.images / seconds, args.images / seconds / capacity))
    server.shutdown()
    print(f"{args.images} images of 224×224, 2-core CPU")
    print("| path | requests/s | images/s | share of server capacity |\n|---|---|---|---|")
    for path, requests, rate, share in rows:
        print(f"| {path} | {requests} | {rate:.1f} | {'—' if share is None else f'{share:.0%}'} |")


if __name__ == "__main__":
    main()
