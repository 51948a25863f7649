"""Crash test at scale: a real `barapi train` against the local server, SIGKILLed at random
moments and resumed until done, against an uninterrupted run of the same configuration.

    python bench/crash.py [--runs 3] [--iterations 30]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from harness.servers import start_server
from harness.killsoak import kill_and_resume


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="barapi-crash-"))
    server, url = start_server(ROOT / "bench" / ".work" / "home")
    train = ["--base-url", url, "--dataset", "digits", "--train-per-class", "5", "--test-size", "50", "--iterations", str(args.iterations),
             "--batch-size", "6", "--q", "3", "--concurrency", str(args.concurrency), "--price-per-1k", "1.2"]
    rows = []
    try:
        for run in range(args.runs):
            env = os.environ | {"BARAPI_HOME": str(work / f"ref{run}")}
            out = subprocess.run([sys.executable, "-m", "barapi.cli", "train", *train, "--seed", str(run), "--name", "r", "--json"],
                                 env=env, capture_output=True, text=True, check=True).stdout
            reference = json.loads(out.strip().splitlines()[-1])
            soak = kill_and_resume(work / f"killed{run}", [*train, "--seed", str(run)], "r", seed=run, min_s=1.5, max_s=5.0)
            extra = soak.final["queries_paid"] - reference["queries_paid"]
            rows.append((run, soak.kills, soak.resumes, int(soak.final["program_sha256"] != reference["program_sha256"]),
                         soak.integrity_failures, reference["queries_paid"], extra, args.concurrency * soak.kills))
    finally:
        server.terminate()
    print("| run | kills | resumes | sha mismatches | integrity failures | paid (uninterrupted) | paid again | bound (in flight × kills) |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    print(f"| total | {sum(r[1] for r in rows)} | {sum(r[2] for r in rows)} | {sum(r[3] for r in rows)} | {sum(r[4] for r in rows)} | "
          f"{sum(r[5] for r in rows)} | {sum(r[6] for r in rows)} | {sum(r[7] for r in rows)} |")


if __name__ == "__main__":
    main()
