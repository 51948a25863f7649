"""The store at a team's scale: pool reservations against a pool whose ledger already holds 10 k,
100 k and 1 M rows, and the bytes a cached answer takes.

Reservations: each worker process opens its own Store and books one image at a time on one
shared pool (reserve, then settle as paid with a 5-label answer, as a run does around each
request; or reserve alone), until it has booked ``--queries`` or the pool refuses it (once with reservations alone,
once followed by settling each as paid, once settling each 10 ms later, as after an API's answer): the pool's budget is set
to 90 % of what all workers want, so every cell races the pool to its end. p50/p99 are per
reservation (the ``reserve`` call alone); reservations/s are all workers' together over the
cell's wall time; overspend is what the pool's ledger holds beyond its budget (must be 0).
PostgreSQL runs on a throwaway cluster on loopback with fsync on; SQLite is a WAL file.

``--before REV`` measures the same cells with barapi at git revision REV (a worktree under
bench/.work), whose every reservation summed the pool's ledger under its row lock, side by side.

Bytes: 2,000 answers of 5, 200 and 1,000 labels cached through ``settle_paid``, the bytes the
responses table takes on disk (indexes included) per answer, as float64 (what every answer was
stored as before the codec, codec 0) and as stored now; scores in float32 (an ONNX or PyTorch
softmax, as the local server answers) and in 6-decimal float64 (a JSON API that rounds).

Cells are appended to bench/results/store.jsonl as they finish (a killed run resumes; --fresh
starts over) and bench/results/store.md is made from it.

    python bench/store.py                             # ~15 minutes on 2 cores
    python bench/store.py --before 680f158 --rows 10000,1000000 --workers 16 --queries 40
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from harness.pgcluster import fresh_database, prefill_ledger, store_engine, throwaway_cluster
from sqlalchemy import text

from barapi.store.schema import PAID_KINDS

BENCH = Path(__file__).resolve().parent
RESULTS, WORK = BENCH / "results", BENCH / ".work"
JSONL = RESULTS / "store.jsonl"
UNIT_USD = 0.0012
ANSWER = {f"label{j}": (j + 1) / 15 for j in range(5)}
# What each worker does per image: book it alone (the pool's own capacity); book and settle it
# as paid with its answer cached (a run's whole store work per image); or the same around an
# answer that takes 10 ms to come (faster than any remote API: a team's workers at full speed).
CYCLES = {"reserve": (False, 0.0), "reserve, settle": (True, 0.0), "reserve, 10 ms answer, settle": (True, 0.010)}


def book(home: str, url: str | None, queries: int, cycle: str) -> None:
    """One worker (``--book``, a process of its own, whose barapi is the one its PYTHONPATH finds):
    says it is ready once its store is open, books on "go" from its standard input, and prints
    each reservation's latency as one JSON list."""
    from barapi.errors import BudgetExceeded
    from barapi.store import Store, response_key

    store = Store(Path(home), url=url)
    settle, answer_s = CYCLES[cycle]
    run = f"w-{uuid.uuid4().hex[:8]}"
    print("ready", flush=True)
    sys.stdin.readline()
    latencies = []
    try:
        for i in range(queries):
            key = response_key("torchserve", run, f"{run}-{i}".encode())
            began = time.perf_counter()
            try:
                ids = store.reserve(run, "torchserve", "efficientnet-lite0", [key], UNIT_USD, pool="team")
            except BudgetExceeded:
                break
            latencies.append(time.perf_counter() - began)
            time.sleep(answer_s)
            if settle:
                store.settle_paid(ids, "torchserve", "efficientnet-lite0", {key: ANSWER})
    finally:
        if hasattr(store, "return_slices"):
            store.return_slices()
        print(json.dumps(latencies), flush=True)


def with_barapi(code: str | None) -> dict[str, str]:
    """The environment of a process whose barapi is the one at ``code`` (a worktree), or this one."""
    return os.environ | ({"PYTHONPATH": code} if code else {})


def spent(url: str | None, home: Path) -> float:
    engine = store_engine(url, home)
    with engine.connect() as connection:
        value = connection.execute(text(f"SELECT COALESCE(SUM(cost_usd), 0) FROM ledger WHERE pool = 'team' AND kind IN {PAID_KINDS}")).scalar()
    engine.dispose()
    return float(value)


def race(code: str | None, home: Path, url: str | None, workers: int, queries: int, cycle: str) -> dict:
    """One cell: the pool set to 90 % of what the workers want on top of what it has spent."""
    before = spent(url, home)
    budget = before + 0.9 * workers * queries * UNIT_USD
    engine = store_engine(url, home)
    with engine.begin() as connection:
        connection.execute(text("UPDATE pools SET budget_usd = :b WHERE name = 'team'"), {"b": budget})
    engine.dispose()
    command = [sys.executable, __file__, "--book", str(home), url or "", str(queries), cycle]
    processes = [subprocess.Popen(command, env=with_barapi(code), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"  # every worker has opened its store
    began = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    latencies = [value for process in processes for value in json.loads(process.stdout.readline())]
    wall = time.perf_counter() - began
    for process in processes:
        process.wait()
    after = spent(url, home)
    return {"reservations": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * float(np.percentile(latencies, 99)), "per_s": len(latencies) / wall,
            "overspend_usd": round(max(after - budget, 0.0), 9), "pool_used": round((after - before) / (budget - before), 4)}


def worktree(rev: str) -> str:
    path = WORK / f"barapi-{rev}"
    if not path.exists():
        WORK.mkdir(exist_ok=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(path), rev], cwd=BENCH.parent, check=True, capture_output=True)
    return str(path)


def open_store(code: str | None, home: Path, url: str | None) -> None:
    """Create the schema as that barapi does (its own migrations)."""
    script = "import sys; from pathlib import Path; from barapi.store import Store; Store(Path(sys.argv[1]), url=sys.argv[2] or None)"
    subprocess.run([sys.executable, "-P", "-c", script, str(home), url or ""], env=with_barapi(code), check=True)  # -P: not the barapi in the cwd


def bytes_per_answer(url: str | None, labels: int, encoding: str, old: bool) -> float:
    import barapi.store.ledger as ledger
    from barapi.store import Store

    rng = np.random.default_rng(labels)
    home = Path(tempfile.mkdtemp(prefix="bench-store-bytes-", dir=WORK))
    store = Store(home, url=url)
    names = [f"label{j:04d}" for j in range(labels)]
    keep = ledger.encode_scores
    if old:
        ledger.encode_scores = lambda values: (0, np.asarray(values, dtype="<f8").tobytes())
    try:
        for start in range(0, 2000, 100):
            answers = {}
            for i in range(start, start + 100):
                logits = rng.normal(0, 3, labels).astype(np.float32)
                p = np.exp(logits - logits.max())
                p = (p / p.sum()).astype(np.float32).astype(np.float64)
                answers[f"{encoding}-{labels}-{i}"] = dict(zip(names, np.round(p, 6) if encoding == "decimal" else p))
            ids = store.reserve("bytes", "torchserve", "m", list(answers), 0.0)
            store.settle_paid(ids, "torchserve", "m", answers)
    finally:
        ledger.encode_scores = keep
    if url:
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE responses"))
    table = next(t for t in store.store_stats()["tables"] if t["table"] == "responses")
    return table["bytes"] / table["rows"]


def done_cells() -> dict[tuple, dict]:
    """Every cell measured so far, by its key (a race's key ends with its repeat)."""
    if not JSONL.exists():
        return {}
    cells = {}
    for line in JSONL.read_text().splitlines():
        if line.strip():
            figures = json.loads(line)
            cell = tuple(figures["cell"])
            cells[cell + (0,) if cell[0] != "bytes" and len(cell) == 6 else cell] = figures
    return cells


def record(cell: tuple, figures: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    with JSONL.open("a") as handle:
        handle.write(json.dumps({"cell": list(cell), **figures, "date": time.strftime("%Y-%m-%d")}) + "\n")
    print(f"  {cell}: {figures}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", default="10000,100000,1000000", help="ledger rows the pool holds before the race")
    parser.add_argument("--workers", default="1,4,16,32", help="PostgreSQL worker counts (SQLite: those of 1 and 4)")
    parser.add_argument("--queries", type=int, default=200, help="images each worker books (at most)")
    parser.add_argument("--repeats", type=int, default=3, help="races of each cell (the table shows their median)")
    parser.add_argument("--before", help="also measure barapi at this git revision")
    parser.add_argument("--no-bytes", action="store_true", help="skip the bytes per answer")
    parser.add_argument("--fresh", action="store_true", help="forget earlier cells")
    parser.add_argument("--book", nargs=4, metavar=("HOME", "URL", "QUERIES", "CYCLE"), help=argparse.SUPPRESS)  # one worker
    args = parser.parse_args()
    if args.book:
        home, url, queries, cycle = args.book
        return book(home, url or None, int(queries), cycle)
    if args.fresh and JSONL.exists():
        JSONL.unlink()
    done = done_cells()
    WORK.mkdir(exist_ok=True)
    versions = [("now", None)] + ([(args.before, worktree(args.before))] if args.before else [])
    with throwaway_cluster(durable=True) as server:
        for version, code in versions:
            for backend in ("PostgreSQL", "SQLite"):
                counts = [w for w in map(int, args.workers.split(",")) if backend == "PostgreSQL" or w <= 4]
                for rows in map(int, args.rows.split(",")):
                    todo = [(w, c, n) for n in range(args.repeats) for w in counts for c in CYCLES
                            if (version, backend, rows, w, args.queries, c, n) not in done]
                    if not todo:
                        continue
                    home = Path(tempfile.mkdtemp(prefix="bench-store-", dir=WORK))
                    url = fresh_database(server) if backend == "PostgreSQL" else None
                    open_store(code, home, url)
                    prefill_ledger(url, home, rows, UNIT_USD)
                    for workers, cycle, repeat in todo:
                        figures = race(code, home, url, workers, args.queries, cycle)
                        record((version, backend, rows, workers, args.queries, cycle, repeat), figures)
        if not args.no_bytes:
            for backend in ("PostgreSQL", "SQLite"):
                for encoding in ("float32", "decimal"):
                    for labels in (5, 200, 1000):
                        cell = ("bytes", backend, encoding, labels)
                        if cell not in done:  # each measurement on an empty store of its own
                            record(cell, {when: bytes_per_answer(fresh_database(server) if backend == "PostgreSQL" else None, labels, encoding,
                                                                 old=when == "before") for when in ("before", "after")})
    write_report()


def write_report() -> None:
    cells = done_cells()
    races: dict[tuple, list[dict]] = {}
    for cell, figures in sorted(cells.items(), key=lambda item: item[0]):
        if cell[0] != "bytes":
            races.setdefault(cell[:6], []).append(figures)
    lines = [
        "# The store at a team's scale",
        "",
        "Made by `python bench/store.py` (and `python bench/store.py --before 680f158 --rows 10000,1000000 --workers 16 --queries 40 "
        "--no-bytes` for the rows of barapi before running totals and slices) on a 2-core CPU; each race's figures and date are in "
        "`store.jsonl`. One pool that every worker books on, its ledger already holding the rows shown. Each worker books one image at "
        "a time until it has booked its share or the pool, set to 90 % of what all want, refuses it: it books each image alone (the "
        "pool's capacity); books it and settles it as paid with its answer cached (a run's whole store work per image); or does so "
        "around an answer that takes 10 ms to come (faster than any remote API). p50/p99: the `reserve` call; reservations/s: all "
        "workers together; overspend: the pool's ledger beyond its budget. Each cell is raced `runs` times: the median of each figure, "
        "the range of reservations/s, the largest overspend. PostgreSQL 15 on loopback, fsync on; SQLite in WAL mode; the server and "
        "every worker share the 2 cores.",
        "",
        "| barapi | store | ledger rows before | workers | each worker, per image | images each | runs | p50 ms | p99 ms | "
        "reservations/s (range) | overspend | pool used |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (v, b, r, w, q, c), runs in races.items():
        per_s = [f["per_s"] for f in runs]
        lines.append(f"| {v} | {b} | {r:,} | {w} | {c} | {q} | {len(runs)} | {statistics.median(f['p50_ms'] for f in runs):.1f} | "
                     f"{statistics.median(f['p99_ms'] for f in runs):.1f} | {statistics.median(per_s):,.0f} ({min(per_s):,.0f}-{max(per_s):,.0f}) | "
                     f"${max(f['overspend_usd'] for f in runs):.4f} | {100 * statistics.median(f['pool_used'] for f in runs):.0f} % |")
    sizes = sorted((c, f) for c, f in cells.items() if c[0] == "bytes")
    if sizes:
        lines += [
            "", "Bytes the responses table takes on disk per cached answer (2,000 answers, indexes included): float64 as every answer "
            "was stored before the codec, and as stored now (`barapi.store.codec`).", "",
            "| store | scores | labels | before (float64) | now | now / before |", "|---|---|---|---|---|---|",
        ]
        lines += [f"| {b} | {e} | {n:,} | {f['before']:,.0f} | {f['after']:,.0f} | {f['after'] / f['before']:.2f} |" for (_, b, e, n), f in sizes]
    (RESULTS / "store.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
