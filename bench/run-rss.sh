#!/usr/bin/env bash
# Measures `lollipop run` with a big list: compile time, start-up time to the
# first blocked answer, and resident memory after start and after 10,000
# queries. All traffic stays on 127.0.0.1; the run stops by itself.
#
#   bench/run-rss.sh [LIST_FILE]     (default: 1M generated domains)
set -euo pipefail
cd "$(dirname "$0")/.."

list=${1:-target/bench/list-1m.txt}
if [ ! -f "$list" ]; then
  mkdir -p "$(dirname "$list")"
  python3 bench/gen-list.py --domains 1000000 --out "$list"
fi
list=$(realpath "$list")
cargo build --release --quiet
bin=target/release/lollipop

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
port=53535
cat > "$work/lollipop.toml" <<TOML
[server]
data_dir = "$work/data"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:$port"
[[upstream]]
address = "127.0.0.1:9"
protocol = "udp"
[resolver]
timeout_ms = 200
attempts = 1
# One address asking fast: no per-client rate limit.
[limits]
per_address_qps = 0
per_network_qps = 0
[[lists]]
name = "bench"
path = "$list"
category = "malware"
[profiles.ks2]
mode = "blocklist"
block_categories = ["malware"]
TOML

blocked=$(grep -v '^#' "$list" | sed -n '500000p')
compile_start=$(date +%s.%N)
"$bin" --config "$work/lollipop.toml" lists compile > "$work/compile.txt"
compiled=$(date +%s.%N)
# The compile's peak memory, from a second compile (the kernel keeps the
# largest resident size of a finished child).
compile_peak=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' \
  "$bin" --config "$work/lollipop.toml" lists compile)
fst_bytes=$(stat -c %s "$work/data/lists.lollipop")

start=$(date +%s.%N)
LOLLIPOP_LOG=warn "$bin" --config "$work/lollipop.toml" run &
pid=$!
until dig @127.0.0.1 -p $port +short +time=1 +tries=1 "$blocked" 2>/dev/null | grep -q '^0\.0\.0\.0$'; do
  sleep 0.01
done
ready=$(date +%s.%N)
rss_start=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)

# 10,000 blocked lookups of different names, to touch the mapped list.
grep -v '^#' "$list" | awk 'NR % 100 == 0 && ++n <= 10000 {print $0 " A"}' > "$work/queries.txt"
if command -v dnsperf >/dev/null; then
  dnsperf -s 127.0.0.1 -p $port -d "$work/queries.txt" -n 1 -l 30 -q 100 > "$work/dnsperf.txt" 2>&1 || true
fi
rss_after=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
# Anonymous memory is the process's own; file pages are the mapped lists,
# which the kernel can drop and read again under memory pressure.
anon_after=$(awk '/RssAnon/ {print $2}' /proc/$pid/status)
file_after=$(awk '/RssFile/ {print $2}' /proc/$pid/status)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)

domains=$(grep -c -v '^#' "$list")
awk -v list="$list" -v domains="$domains" -v c0="$compile_start" -v c1="$compiled" \
    -v bytes="$fst_bytes" -v s0="$start" -v s1="$ready" \
    -v rss0="$rss_start" -v rss1="$rss_after" -v hwm="$hwm" \
    -v anon="$anon_after" -v file="$file_after" -v cpeak="$compile_peak" 'BEGIN {
  printf "list: %s (%d domains)\n", list, domains
  printf "compile: %.2f s, file %d bytes (%.2f bytes/domain)\n", c1 - c0, bytes, bytes / domains
  printf "start-up to first blocked answer: %.3f s\n", s1 - s0
  printf "compile peak RSS: %.1f MB\n", cpeak / 1024
  printf "RSS after start: %.1f MB; after 10,000 queries: %.1f MB (%.1f MB own, %.1f MB mapped lists); peak: %.1f MB\n", rss0 / 1024, rss1 / 1024, anon / 1024, file / 1024, hwm / 1024
}'
grep -E "Queries per second|Average Latency" "$work/dnsperf.txt" 2>/dev/null || true
