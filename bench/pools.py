"""Budget pools under a race, on the SQLite file and on PostgreSQL, against the local server: 8
`barapi train` processes on a $1.20 pool at $1.20 / 1,000; 6 on a $0.20 pool that holds the
reserves (what a run needs to end measured) of only some of them; 4 processes killed at random
moments and resumed by other processes (other homes); and a second run on the same images
through another process. Every run must end measured or be refused before paying: the table
counts the runs that did neither (it must be 0). Writes bench/results/pools.md. The same scenarios are asserted, smaller, by
tests/test_pools.py.

    python bench/pools.py          # ~5 minutes on 2 cores

``--scale`` measures instead what a pool's history costs a team: four `barapi train` runs on one
pool of a PostgreSQL store (the digits, 10 images a class, 10 iterations, at $1.20 / 1,000), on a
fresh pool and on one whose ledger already holds 1,000,000 rows, the four runs' wall time side
by side. Writes bench/results/pools-scale.md.

    python bench/pools.py --scale  # ~5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from harness.servers import start_server
from harness.pgcluster import fresh_database, prefill_ledger, throwaway_cluster
from harness.poolrace import POOL_USD, RUN, finish, kill_race, race, store_of, worker

WORK = Path(__file__).resolve().parent / ".work"
RESULTS = Path(__file__).resolve().parent / "results"
TIGHT_POOL_USD = 0.20


def cache_figures(server_url: str, shared: dict[str, str], tmp: Path) -> dict:
    small = [a for a in RUN if a not in ("--pool", "team")] + ["--iterations", "3"]
    paid = {}
    for name in ("first", "second"):
        code, out, err = finish(worker(shared, tmp / name, "train", "--base-url", server_url, *small, "--name", name))
        summary = json.loads(out.strip().splitlines()[-1])
        paid[name] = (summary["queries_paid"], summary["queries_cached"])
    return {"first_paid": paid["first"][0], "second_paid": paid["second"][0], "second_cached": paid["second"][1],
            "second_spent_in_ledger": store_of(shared, tmp).spent("second")[0]}


SCALE_RUN = ["--dataset", "digits", "--train-per-class", "10", "--iterations", "10", "--price-per-1k", "1.20", "--pool", "team", "--yes", "--json"]
SCALE_ROWS = (0, 1_000_000)


def scale() -> None:
    """Four pooled runs on a fresh pool and on one with a million earlier ledger rows."""
    WORK.mkdir(exist_ok=True)
    server, url = start_server(WORK / "home")
    figures = []
    try:
        with throwaway_cluster(durable=True) as postgres:
            for rows in SCALE_ROWS:
                tmp = Path(tempfile.mkdtemp(prefix="bench-pools-scale-", dir=WORK))
                shared = {"BARAPI_STORE": fresh_database(postgres)}
                store = store_of(shared, tmp)
                prefill_ledger(shared["BARAPI_STORE"], tmp, rows, 0.0012)
                store.set_pool("team", 1_000_000.0)
                began = time.monotonic()
                processes = [worker(shared, tmp / f"s{i}", "train", "--base-url", url, *SCALE_RUN, "--seed", str(i), "--name", f"s{i}")
                             for i in range(4)]
                results = [finish(p) for p in processes]
                summaries = [json.loads(out.strip().splitlines()[-1]) for code, out, err in results if code == 0]
                figures.append({"rows": rows, "wall_s": time.monotonic() - began, "queries_paid": [s["queries_paid"] for s in summaries],
                                "test_accuracy": [s["test_accuracy"] for s in summaries],
                                "failed": [err.strip().splitlines()[-1] for code, _, err in results if code != 0],
                                "verify": store.pool_verify("team"), "date": time.strftime("%Y-%m-%d")})
                print(f"  {rows:,} earlier rows: {figures[-1]}", file=sys.stderr, flush=True)
    finally:
        server.terminate()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pools-scale.jsonl").write_text("".join(json.dumps(f) + "\n" for f in figures))
    fresh = figures[0]["wall_s"]
    lines = [
        "# What a pool's history costs a team (`python bench/pools.py --scale`, 2-core CPU, " + figures[0]["date"] + ")",
        "",
        "Four `barapi train` processes at once on one pool of a PostgreSQL 15 store (loopback, fsync on), against the local server: "
        f"`{' '.join(SCALE_RUN)}`, seeds 0-3. The same runs on a fresh pool and on a pool whose ledger already holds the rows shown "
        "(`pools-scale.jsonl` has each figure).",
        "",
        "| earlier ledger rows on the pool | wall time, all four | vs the fresh pool | queries paid, each | runs failed | the pool's running total agrees with its ledger |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {f['rows']:,} | {f['wall_s']:.0f} s | {f['wall_s'] / fresh:.2f}x | {', '.join(map(str, f['queries_paid']))} | {len(f['failed'])} | "
              f"{'yes' if f['verify']['ok'] else 'NO: ' + str(f['verify']['difference_usd'])} |" for f in figures]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pools-scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", action="store_true", help="four pooled runs on a fresh pool and on one with 1 M earlier ledger rows")
    if parser.parse_args().scale:
        scale()
        return
    WORK.mkdir(exist_ok=True)
    server, url = start_server(WORK / "home")
    rows = []
    try:
        with throwaway_cluster(durable=True) as postgres:
            for backend in ("SQLite", "PostgreSQL"):
                for scenario in ("race", "tight", "kill", "cache"):
                    tmp = Path(tempfile.mkdtemp(prefix=f"bench-pools-{scenario}-", dir=WORK))
                    shared = {"BARAPI_HOME": str(tmp / "home")} if backend == "SQLite" else {"BARAPI_STORE": fresh_database(postgres)}
                    began = time.monotonic()
                    if scenario == "race":
                        figures = race(url, shared, tmp)[1]
                    elif scenario == "tight":
                        figures = race(url, shared, tmp, workers=6, pool_usd=TIGHT_POOL_USD)[1]
                    elif scenario == "kill":
                        figures = kill_race(url, shared, tmp)[1]
                    else:
                        figures = cache_figures(url, shared, tmp)
                    rows.append((backend, scenario, figures, time.monotonic() - began))
                    print(f"  {backend} {scenario}: {figures}", file=sys.stderr, flush=True)
    finally:
        server.terminate()
    lines = [
        "# Budget pools under a race (`python bench/pools.py`, 2-core CPU, " + time.strftime("%Y-%m-%d") + ")",
        "",
        f"A ${POOL_USD:.2f} pool at $1.20 / 1,000 images (1,000 images), against the local server; each run would want ~310.",
        "",
        f"The tight race: a ${TIGHT_POOL_USD:.2f} pool; each run holds $0.084 (70 images) aside to end measured.",
        "",
        "| store | scenario | spent of the pool | queries paid | overrun | reservations left unsettled | ended measured | refused before paying | neither | paid by refused runs | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, scenario, f, seconds in rows:
        if scenario == "cache":
            continue
        measured, refused = f["outcomes"].count("measured"), f["outcomes"].count("refused by the pool")
        what = (f"8 workers, ${POOL_USD:.2f}" if scenario == "race" else f"6 workers, ${TIGHT_POOL_USD:.2f}" if scenario == "tight"
                else f"4 workers, {f['kills']} kills, resumed elsewhere")
        lines.append(f"| {backend} | {what} | ${f['spent_usd']:.4f} | {f['queries_paid']:,} | ${f['overrun_usd']:.4f} | {f['unsettled']} | "
                     f"{measured} | {refused} | {len(f['outcomes']) - measured - refused} | {f['paid_by_refused']} | {seconds:.0f} |")
    lines += ["", "| store | a second run on the same images, through another process | paid | from the cache |", "|---|---|---|---|"]
    for backend, scenario, f, _ in rows:
        if scenario == "cache":
            lines.append(f"| {backend} | first run paid {f['first_paid']:,} | {f['second_paid']} (ledger: {f['second_spent_in_ledger']}) | {f['second_cached']:,} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pools.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
