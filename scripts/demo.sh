#!/usr/bin/env bash
# Start the local ImageNet server, reprogram it to read handwritten digits, stop the server.
set -euo pipefail
port=$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
barapi mock serve --port "$port" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do
  if python -c "import httpx,sys; sys.exit(httpx.get('http://127.0.0.1:$port/ping').status_code != 200)" 2>/dev/null; then break; fi
  kill -0 "$server" 2>/dev/null || { echo "the mock server did not start" >&2; exit 1; }
  sleep 0.5
done
# Dollars are simulated at Clarifai's list price, to show what the same run would cost there.
barapi train --provider torchserve --base-url "http://127.0.0.1:$port" --dataset digits \
  --price-per-1k 1.20 --yes "$@"
