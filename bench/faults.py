"""Fault soak (issue: reliability): training runs against the local server with 30 % of requests
failing — 5xx, 429 with Retry-After, timeouts, connection resets, truncated bodies — each checked
against the same run without faults. Prints one table.

    python bench/faults.py [--runs 10] [--iterations 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from harness.faultsoak import FAULT_MIX, fault_soak

from barapi.mock.model import ImageNetModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=10)
    args = parser.parse_args()
    started = time.monotonic()
    result = fault_soak(ImageNetModel(home=ROOT / "bench" / ".work" / "home"), args.runs, args.iterations)
    mix = ", ".join(f"{k.removesuffix('_rate')} {v:.0%}" for k, v in FAULT_MIX.items())
    print(f"`python bench/faults.py --runs {args.runs} --iterations {args.iterations}` ({time.monotonic() - started:.0f} s; fault mix: {mix})\n")
    print("| runs | completed | faults injected | failed attempts (retried) | paid queries | paid without faults | budget overruns | lost responses | program ≠ fault-free run |")
    print("|---|---|---|---|---|---|---|---|---|")
    injected = ", ".join(f"{kind} {n}" for kind, n in sorted(result.injected.items()))
    print(f"| {result.runs} | {result.completed} | {sum(result.injected.values())} ({injected}) | {result.failed_attempts} | "
          f"{result.paid_queries:,} | {result.paid_without_faults:,} | {result.overruns} | {result.lost_responses} | {result.program_mismatches} |")


if __name__ == "__main__":
    main()
