#!/usr/bin/env bash
# The white-box bounds (bench/whitebox.py) on a lent GPU machine: full batch to a plateau or
# the training images' fit, on every few-label cell, both resolutions, seeds 0-2. That machine
# has python 3.12 with a CUDA torch, nothing from a registry and no Debian dataset, so three
# ignored folders travel with the tree (prepared here, names in .git/info/exclude):
#   .whl/                  barapi's wheel (`pip wheel --no-deps --no-build-isolation . -w .whl`) and the
#                          dependencies the machine lacks, as cp312 wheels (pydantic, sqlmodel, alembic, ...)
#   .carry/fashion-mnist/  Fashion-MNIST's labels and its images of the four classes the cells use
#                          (the others zeroed: the split draws from every label, 13 MB instead of 30)
#   bench/.work/home/projects/  the trained project head that project/* cells serve
# WORKERS processes take the missing (cell, resolution, seed) jobs from one queue, the target
# cells and 16x16 first, until LIMIT seconds; what they measured is gathered in OUT/whitebox.jsonl
# (append it to bench/results/whitebox.jsonl here), their progress in OUT/log.txt, and the
# checkpoints of jobs the limit stopped in OUT/checkpoints.tar.* (unpack them into bench/.work here
# and `python bench/whitebox.py` resumes those jobs on this machine's CPU).
set -u -o pipefail
OUT=${OUT:-bench/.work/gpu} WORKERS=${WORKERS:-5} LIMIT=${LIMIT:-480}
WORKDIR=$(mktemp -d)
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/bench BARAPI_FASHION_MNIST=$PWD/.carry/fashion-mnist PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
nvidia-smi -L
# One step of one cell first: a broken install stops here, in seconds, not after the workers' limit.
timeout 120 python3 -P -c "
import whitebox
from harness import cells, torchpath
from barapi.mock.model import InProcessClassifier
network = torchpath.TorchNetwork('cuda')
classifier = InProcessClassifier(network, served=cells.served_model('project', network))
entry = whitebox.converge(classifier, 'project/digits', '16', 0, 1, 0, 'cuda')
print('smoke', entry['start_accuracy'], entry['accuracy'], entry['seconds'], 's a step')
whitebox.forget('project/digits', '16', 0, entry['batch'])  # not a job: nothing to resume
" 2>&1 | grep -v "^  " || exit 1
THREADS=$(( $(nproc) / WORKERS )); [ "$THREADS" -gt 0 ] || THREADS=1  # the cores split over the workers
for k in $(seq 0 $((WORKERS - 1))); do
    timeout "$LIMIT" python3 bench/whitebox.py --device cuda --threads "$THREADS" --queue "$WORKDIR/queue" --out "$WORKDIR/wb-$k.jsonl" \
        --all-cells --resolutions 16 full --max-steps 1000 >> "$OUT/log.txt" 2>&1 &
done
wait
cat "$WORKDIR"/wb-*.jsonl > "$OUT/whitebox.jsonl" 2>/dev/null
# A file comes back only under 16 MiB, and a full-resolution checkpoint weighs ~2.5 MB.
ls bench/.work/whitebox-checkpoints/*.pt >/dev/null 2>&1 && tar -c bench/.work/whitebox-checkpoints/*.pt | split -b 15M - "$OUT/checkpoints.tar."
echo "measured: $(wc -l < "$OUT/whitebox.jsonl") (cell, resolution, seed); taken: $(ls "$WORKDIR/queue" | tr '\n' ' ')"
