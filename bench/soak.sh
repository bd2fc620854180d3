#!/usr/bin/env bash
# The soak: Lollipop (release build, default [limits]) with a 100,000-domain
# list, under bench/soak.py's bounded mixed load on loopback for MINUTES
# (default 10): well-behaved clients, random names at a silent upstream,
# malformed datagrams, idle and slow TCP clients, a flooding client, and a
# reload every 30 s. Prints the well-behaved clients' answered and SERVFAIL
# shares, their p50/p99, and RSS and open descriptors every 10 s.
#
#   bench/soak.sh [MINUTES] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=${1:-10}
shift || true
json_args=("$@")

bin=${LOLLIPOP_BIN:-target/release/lollipop}
[ -n "${LOLLIPOP_BIN:-}" ] || cargo build --release --quiet
bin=$(realpath "$bin")

work=$(mktemp -d /tmp/lollipop-soak.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

python3 bench/gen-list.py --domains 100000 --out "$work/blocked.txt"
# Allowed names the upstream answers, none of them listed.
python3 - "$work/allowed.txt" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(5000):
        f.write(f"site{i}.allowed.example\n")
PY
echo "www.example.com" >> "$work/allowed.txt"

upstream_port=5395
python3 bench/upstream.py --port $upstream_port --allowed "$work/allowed.txt" --silent silent.test &
pids+=($!)

port=5396
cat > "$work/lollipop.toml" <<TOML
[server]
data_dir = "$work/data"
default_profile = "school"
[[listen]]
address = "127.0.0.1:$port"
[[upstream]]
address = "127.0.0.1:$upstream_port"
protocol = "udp"
[resolver]
timeout_ms = 1000
attempts = 1
[[lists]]
name = "soak"
path = "$work/blocked.txt"
category = "malware"
[web]
enabled = false
[profiles.school]
mode = "blocklist"
block_categories = ["malware"]
TOML

LOLLIPOP_LOG=warn "$bin" --config "$work/lollipop.toml" run 2> "$work/lollipop.log" &
pid=$!
pids+=($pid)
for _ in $(seq 100); do
  if dig +time=1 +tries=1 -p $port @127.0.0.1 www.example.com >/dev/null 2>&1; then break; fi
  sleep 0.2
done

python3 bench/soak.py --server 127.0.0.1:$port --pid $pid \
  --allowed "$work/allowed.txt" --blocked "$work/blocked.txt" \
  --minutes "$minutes" "${json_args[@]}"
echo "log lines written by the resolver during the soak: $(wc -l < "$work/lollipop.log")"
