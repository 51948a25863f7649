"""Per-query overhead of the store (reserve, settle as paid, cache the answer) for the SQLite
file and a PostgreSQL server, at 1, 4 and 16 concurrent worker processes, with and without a
budget pool (whose reservations are serialised across workers).

Each worker process opens its own Store and books ``--queries`` images one request at a time,
each answer a 1,000-label ImageNet-sized score vector, as a TorchServe-style provider sends
them. PostgreSQL runs on a throwaway cluster on a loopback port with its default durability
(fsync on). Writes bench/results/store.md.

    python bench/store.py                 # ~2 minutes on 2 cores
    python bench/store.py --queries 100 --workers 1,4
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from pgcluster import throwaway_cluster  # noqa: E402

from barapi.method.labels import imagenet_classes  # noqa: E402
from barapi.store import Store, response_key  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
UNIT_USD = 0.0012


def book(home: str, url: str | None, pool: str | None, queries: int, start: multiprocessing.Event, out: multiprocessing.Queue) -> None:
    store = Store(Path(home), url=url)
    labels = imagenet_classes()
    run = f"w-{uuid.uuid4().hex[:8]}"
    start.wait()
    latencies = []
    for i in range(queries):
        key = response_key("torchserve", run, f"{run}-{i}".encode())
        answer = {label: (j + 1) / 500500 for j, label in enumerate(labels)}
        began = time.perf_counter()
        ids = store.reserve(run, "torchserve", "efficientnet-lite0", [key], UNIT_USD, pool=pool)
        store.settle_paid(ids, "torchserve", "efficientnet-lite0", {key: answer})
        latencies.append(time.perf_counter() - began)
    out.put(latencies)


def measure(url: str | None, workers: int, queries: int, pool: bool) -> dict:
    home = tempfile.mkdtemp(prefix="bench-store-")
    store = Store(Path(home), url=url)
    name = None
    if pool:
        name = f"pool-{uuid.uuid4().hex[:6]}"
        store.set_pool(name, 1e9)
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [context.Process(target=book, args=(home, url, name, queries, start, out)) for _ in range(workers)]
    for process in processes:
        process.start()
    time.sleep(3)  # every worker has opened its store
    began = time.perf_counter()
    start.set()
    latencies = [value for _ in processes for value in out.get()]
    wall = time.perf_counter() - began
    for process in processes:
        process.join()
    return {"p50_ms": 1000 * statistics.median(latencies), "p99_ms": 1000 * statistics.quantiles(latencies, n=100)[98],
            "per_s": len(latencies) / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="1,4,16")
    parser.add_argument("--queries", type=int, default=200, help="images each worker books")
    args = parser.parse_args()
    rows = []
    with throwaway_cluster(durable=True) as server:
        for backend, url in (("SQLite (WAL)", None), ("PostgreSQL 15", server)):
            for pool in (False, True):
                for workers in map(int, args.workers.split(",")):
                    figures = measure(url, workers, args.queries, pool)
                    rows.append((backend, "pool" if pool else "run budget", workers, figures))
                    print(f"  {backend}, {'pool' if pool else 'no pool'}, {workers} workers: {figures}", file=sys.stderr, flush=True)
    lines = [
        "# Store overhead per query (reserve, settle as paid, cache a 1,000-label answer)",
        "",
        f"`python bench/store.py {' '.join(sys.argv[1:])}` on a 2-core CPU, {time.strftime('%Y-%m-%d')}: each worker process books "
        f"{args.queries} images one request at a time; p50/p99 are per image, throughput is all workers together. "
        "PostgreSQL: a local cluster on loopback with fsync on.",
        "",
        "| store | budget | workers | p50 ms | p99 ms | images/s |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {b} | {p} | {w} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['per_s']:.0f} |" for b, p, w, f in rows]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
