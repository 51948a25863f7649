#!/usr/bin/env bash
# The portfolio benchmark on two cores: the rows the issue's targets need first (V ≤ 8), on every
# target cell and seed, then the wide random portfolios. Each line resumes where a kill left it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CHEAP=selected-1,selected-2,selected-4,selected-8,random-1,random-2,random-4,random-8
WIDE=random-16,random-32,random-48
{ $PY bench/portfolio.py --combos coarse-5/tshirt-shirt --rows $CHEAP
  $PY bench/portfolio.py --combos project/digits --seeds 0,1 --rows $CHEAP
  $PY bench/portfolio.py --combos coarse-5/tshirt-shirt --rows $WIDE; } &
{ $PY bench/portfolio.py --combos coarse-5/pullover-coat --rows $CHEAP
  $PY bench/portfolio.py --combos project/digits --seeds 2 --rows $CHEAP
  $PY bench/portfolio.py --combos coarse-5/pullover-coat --rows $WIDE
  $PY bench/portfolio.py --combos project/digits --rows $WIDE; } &
wait
