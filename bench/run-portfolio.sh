#!/usr/bin/env bash
# The portfolio benchmark on two cores, in the order the issue's targets need it: V ≤ 8 on every
# target cell and seed; the digits' views within 10,000 training queries (20 candidates of 500
# images); the 1,000-label model beside the single-program default at the same training queries;
# 8 views of 96 candidates; the baselines; the default's cosine bands (and those seeded with the
# other Fashion pair's views); the coarse-2 and coarse-10 cells; the default's views refined by
# zeroth-order steps; the shared 200 test images; the wide random portfolios (V = 16 and 32 on the
# three targets, 48 on the Fashion pairs); the converged white-box bounds (one core each: about
# an hour a seed and Fashion cell; the rest on a GPU); the other few-label cells. Every line
# resumes where a kill left it. Needs the bench extra (`pip install -e '.[bench]'`: Lite1's weights).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CHEAP=selected-1,selected-2,selected-4,selected-8,random-1,random-2,random-4,random-8
WIDE=random-16,random-32,random-48
{ $PY bench/portfolio.py --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --rows $CHEAP
  $PY bench/portfolio.py --combos project/digits --seeds 0,1 --rows $CHEAP
  $PY bench/portfolio.py --combos project/digits --candidates 20 --rows selected-8-of-20,selected-4-of-20
  $PY bench/portfolio.py --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --candidates 96 --rows selected-8-of-96,selected-4-of-96
  $PY bench/portfolio.py --combos coarse-5/tshirt-shirt --seeds 0 --rows $WIDE; } &
{ $PY bench/portfolio.py --combos project/digits --seeds 2 --rows $CHEAP
  $PY bench/portfolio.py --combos imagenet/tshirt-shirt --rows noapi,lite1,zo-5000,selected-1,selected-2,selected-4,selected-8,random-1
  $PY bench/portfolio.py --targets --rows noapi,lite1
  $PY bench/portfolio.py --combos coarse-5/pullover-coat --seeds 0 --rows $WIDE; } &
wait
BANDS="$PY bench/portfolio.py --family bands"
FEWER=selected-1-bands,selected-2-bands,selected-4-bands
$BANDS --targets --rows selected-8-bands
$BANDS --combos project/digits --candidates 20 --rows selected-8-of-20-bands
$BANDS --combos coarse-5/tshirt-shirt --from coarse-5/pullover-coat --rows selected-8-bands-from-coarse-5/pullover-coat
$BANDS --combos coarse-5/pullover-coat --from coarse-5/tshirt-shirt --rows selected-8-bands-from-coarse-5/tshirt-shirt
$PY bench/portfolio.py --combos coarse-2/tshirt-shirt --rows noapi,random-1,selected-8
$BANDS --combos coarse-2/tshirt-shirt --rows selected-8-bands
$PY bench/portfolio.py --combos coarse-10/tshirt-shirt --rows noapi,random-1,selected-8
$BANDS --combos coarse-10/tshirt-shirt --rows selected-8-bands
$PY bench/portfolio.py --combos coarse-2/tshirt-shirt,coarse-10/tshirt-shirt --seeds 0 --rows lite1
for steps in 20 80; do
  $BANDS --refine $steps --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --rows selected-8-bands-refined-$steps
done
$BANDS --refine 20 --combos project/digits --candidates 20 --rows selected-8-of-20-bands-refined-20
$PY bench/portfolio.py --targets --rows random-16,random-32 --threads 1 &
$PY bench/portfolio.py --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --rows random-48 --threads 1
wait
$PY bench/portfolio.py --targets --shared-200
$PY bench/portfolio.py --combos coarse-2/tshirt-shirt --shared-200
$PY bench/whitebox.py --threads 1 --combos coarse-5/tshirt-shirt coarse-5/pullover-coat
# The remaining bounds (full resolution, the digits, Pullover/Coat's capped seeds, the other cells'
# 16x16) on a lent GPU: `WORKERS=5 LIMIT=500 bash bench/whitebox-gpu.sh` there, its OUT/whitebox.jsonl
# appended to bench/results/whitebox.jsonl here.
# The rest of the few-label grid: the baselines, the zero-program and the default on every cell;
# 48 random programs on the digits.
$PY bench/portfolio.py --combos project/digits --rows random-48 --threads 1 &
GRID=coarse-2/pullover-coat,coarse-10/pullover-coat,coarse-5/digits-3v8,coarse-2/digits-3v8,coarse-10/digits-3v8,project/digits-3v8
$PY bench/portfolio.py --combos $GRID --rows noapi,random-1 --threads 1
$BANDS --combos $GRID --rows selected-8-bands --threads 1
wait
DIGITS=coarse-5/digits,coarse-2/digits,coarse-10/digits
$PY bench/portfolio.py --combos $DIGITS --rows noapi,random-1 --threads 1
$BANDS --combos $DIGITS --candidates 20 --rows selected-8-of-20-bands --threads 1
$PY bench/portfolio.py --combos project/digits --rows noapi
$PY bench/portfolio.py --family casts --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat --rows selected-8-casts --threads 1
# Lite1 features on every cell (one figure a task: they do not depend on the served model); the
# random ladder and selected 1–8 of 48 random on the 3-vs-8 cells and coarse-2 × T-shirt/Shirt;
# a full-resolution bound on coarse-2 × T-shirt/Shirt on one core (~30 min a seed).
REST=coarse-2/tshirt-shirt,coarse-10/tshirt-shirt,$GRID,$DIGITS  # every few-label cell but the three targets
$PY bench/portfolio.py --combos $REST --rows lite1 --seeds 0 --threads 1
LADDER=random-1,random-2,random-4,random-8,random-16,random-32,random-48,selected-1,selected-2,selected-4,selected-8
$PY bench/whitebox.py --combos coarse-2/tshirt-shirt --resolutions full --max-steps 400 --threads 1 &
$PY bench/portfolio.py --combos coarse-2/digits-3v8,coarse-5/digits-3v8,coarse-10/digits-3v8,project/digits-3v8 --rows $LADDER --threads 1
$PY bench/portfolio.py --combos coarse-2/tshirt-shirt --rows $LADDER --threads 1
wait
# The ladder and a full-resolution bound on coarse-10 × T-shirt/Shirt; the single-program default
# at a portfolio's training queries on every few-label cell.
$PY bench/whitebox.py --combos coarse-10/tshirt-shirt --resolutions full --max-steps 400 --threads 1 &
$PY bench/portfolio.py --combos coarse-10/tshirt-shirt --rows $LADDER --threads 1
$PY bench/portfolio.py --combos coarse-5/tshirt-shirt,coarse-5/pullover-coat,project/digits,$REST --rows zo-5000 --threads 1
wait
# Fewer of the default's bands (1, 2, 4 chosen) on the Pullover/Coat and digits cells: the
# candidates' answers are those the 8 chosen were drawn from.
$BANDS --combos coarse-2/pullover-coat,coarse-10/pullover-coat --rows $FEWER --threads 1 &
$BANDS --combos $DIGITS --candidates 20 --rows selected-1-of-20-bands,selected-2-of-20-bands,selected-4-of-20-bands --threads 1
wait
# Full-resolution bounds on both Pullover/Coat cells beside the targets (one core each, ~35 s a
# step), then coarse-2 × 3 vs 8 on the core the shorter one frees (seed 0 so far).
$PY bench/whitebox.py --combos coarse-2/pullover-coat --resolutions full --max-steps 400 --threads 1 &
$PY bench/whitebox.py --combos coarse-10/pullover-coat --resolutions full --max-steps 400 --threads 1
$PY bench/whitebox.py --combos coarse-2/digits-3v8 --resolutions full --max-steps 400 --threads 1 --seeds 0
wait
# Pullover/Coat's random ladder through coarse-2 and coarse-10 beside coarse-2's last bound seed
# and the other 3 vs 8 bounds; the 1,000-label ladder and fewer of its bands.
WIDER=random-2,random-4,random-8,random-16,random-32,random-48
$PY bench/whitebox.py --combos coarse-2/pullover-coat --resolutions full --max-steps 400 --threads 1 --seeds 2 &
$PY bench/portfolio.py --combos coarse-2/pullover-coat,coarse-10/pullover-coat --rows $WIDER --threads 1
$PY bench/whitebox.py --combos coarse-2/digits-3v8 --resolutions full --max-steps 400 --threads 1 --seeds 1 2
wait
$PY bench/whitebox.py --combos coarse-5/digits-3v8 coarse-10/digits-3v8 project/digits-3v8 --resolutions full --max-steps 400 --threads 1 &
{ $PY bench/portfolio.py --combos imagenet/tshirt-shirt --rows $WIDER --threads 1
  $BANDS --combos imagenet/tshirt-shirt --rows $FEWER --threads 1; }
wait
# The ladder and 1–8 chosen of 48 random on two 10-digit cells, one core each (~80 min a seed),
# then fewer of the default's bands on the other T-shirt/Shirt and the 3 vs 8 cells.
$PY bench/portfolio.py --combos coarse-5/digits --rows $WIDER,selected-1,selected-2,selected-4,selected-8 --threads 1 &
$PY bench/portfolio.py --combos coarse-2/digits --rows $WIDER,selected-1,selected-2,selected-4,selected-8 --threads 1
wait
$BANDS --combos coarse-2/tshirt-shirt,coarse-10/tshirt-shirt --rows $FEWER --threads 1 &
$BANDS --combos coarse-5/digits-3v8,coarse-2/digits-3v8,coarse-10/digits-3v8,project/digits-3v8 --rows $FEWER --threads 1
wait
# coarse-10 × digits' ladder, a seed a process (three on two cores); meanwhile the shared 200 test
# images for the rows this machine's stores already hold (no query) and the baselines.
for seed in 0 1 2; do
  $PY bench/portfolio.py --combos coarse-10/digits --seeds $seed --rows $WIDER,selected-1,selected-2,selected-4,selected-8 --threads 1 &
done
$PY bench/portfolio.py --combos coarse-2/digits-3v8,coarse-5/digits-3v8,coarse-10/digits-3v8,project/digits-3v8,coarse-2/tshirt-shirt,coarse-10/tshirt-shirt \
  --rows noapi,lite1,$FEWER --shared-200 --threads 1
wait
$PY bench/portfolio.py --combos coarse-10/digits --rows noapi,lite1,$WIDER,selected-1,selected-2,selected-4,selected-8 --shared-200 --threads 1
# The shared 200 for every other row, a cell a process: runs this machine's stores lack are run
# again with the 200 as their test set (about 20,000 queries a Fashion or 3-vs-8 cell and seed,
# 45,000 a digits one).
printf '%s\n' imagenet/tshirt-shirt coarse-2/tshirt-shirt coarse-10/tshirt-shirt coarse-2/pullover-coat coarse-10/pullover-coat \
  coarse-5/tshirt-shirt coarse-5/pullover-coat coarse-5/digits-3v8 coarse-10/digits-3v8 project/digits-3v8 coarse-2/digits-3v8 \
  project/digits coarse-5/digits coarse-2/digits coarse-10/digits | xargs -P 2 -I{} $PY bench/portfolio.py --combos {} --shared-200 --threads 1
$PY bench/portfolio.py --report
$PY bench/whitebox.py --report
