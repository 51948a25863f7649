"""Load on the local server (issue: reliability): N clients posting programmed 224 px PNGs as fast
as they are answered, for a bounded time; failed requests (none were injected), p50/p99 latency
and throughput. Prints one table.

    python bench/load.py [--clients 1,4,16] [--seconds 30]
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from harness.servers import start_server
from harness.loadgen import load

from barapi.mock.model import DEFAULT_MODEL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    server, url = start_server(ROOT / "bench" / ".work" / "home")
    try:
        results = [load(url, DEFAULT_MODEL, int(n), args.seconds) for n in args.clients.split(",")]
    finally:
        server.terminate()
    print(f"`python bench/load.py --clients {args.clients} --seconds {args.seconds:g}` (2-core CPU, server and clients on one machine)\n")
    print("| clients | seconds | requests | failed | images/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r.clients} | {r.seconds:.0f} | {r.requests:,} | {r.failures} | {r.per_second:.1f} | {r.p50_ms:.0f} | {r.p99_ms:.0f} |")


if __name__ == "__main__":
    main()
