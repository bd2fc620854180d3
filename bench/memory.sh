#!/usr/bin/env bash
# Where `lollipop run`'s memory goes with a big list, through the compare
# bench's traffic: NSD as the upstream, the bench's lollipop.toml (status
# page and per-client limits off, everything else as shipped), the bench's
# query mix (one third allowed, one third blocked, one third missing) sent
# once slowly (every answer goes into the response cache, every block into
# the block log) and then at peak (dnsperf -c 4 -q 256 -l 8: the block log
# takes tens of thousands of blocked lookups a second). Prints the resident
# set after start, after the warm-up, after the peak and 15 s later, split
# into the process's own memory (RssAnon: heap, stacks) and mapped files
# (RssFile: the compiled list index, the program's code).
#
#   bench/memory.sh [LIST]      (default: target/bench/list-2m.txt, 2,000,000
#                                generated domains, made if missing)
#
# MEMORY_PROFILE=heaptrack runs Lollipop under heaptrack, built with the C
# library's malloc (feature `system-allocator`: heaptrack cannot see
# mimalloc's), and prints the allocations still held after the peak, by
# where they were made. Slower, and glibc's malloc keeps memory differently:
# read it for what holds memory, not for the RSS figures.
# LOLLIPOP_BIN=path measures an already built binary (e.g. one kept from
# before a change); LOLLIPOP_EXTRA="[resolver]\ncache_mb = 1" adds config
# lines; BENCH_PORT moves the ports (26390 and up). Takes about 2 minutes.
# Needs: dnsperf, nsd, dig, python3 (and heaptrack for MEMORY_PROFILE).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin"

list=${1:-target/bench/list-2m.txt}
if [ ! -s "$list" ]; then
  mkdir -p "$(dirname "$list")"
  python3 bench/gen-list.py --domains 2000000 --out "$list"
fi
list=$(realpath "$list")
for tool in dnsperf nsd dig python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y dnsperf nsd bind9-dnsutils python3" >&2; exit 1; }
done
profile=${MEMORY_PROFILE:-none}
case $profile in
  none) ;;
  heaptrack)
    command -v heaptrack >/dev/null || { echo "heaptrack is missing: apt-get install -y heaptrack" >&2; exit 1; } ;;
  *) echo "MEMORY_PROFILE is none or heaptrack, not $profile" >&2; exit 2 ;;
esac

bin=${LOLLIPOP_BIN:-}
if [ -z "$bin" ]; then
  features=()
  [ "$profile" = none ] || features=(--features system-allocator)
  cargo build --release --quiet "${features[@]}"
  bin=target/release/lollipop
fi
bin=$(realpath "$bin")

work=$(mktemp -d /tmp/lollipop-memory.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

base=${BENCH_PORT:-26390}
upstream_port=$base port=$((base + 1))
python3 bench/make-queries.py --list "$list" --out "$work" > /dev/null
bench/nsd-upstream.sh "$work" "$upstream_port" &
pids+=($!)
first_allowed=$(head -1 "$work/allowed.txt")
for _ in $(seq 100); do
  dig +short +time=1 +tries=1 -p "$upstream_port" @127.0.0.1 "$first_allowed" A 2>/dev/null | grep -q '^198\.51\.' && break
  sleep 0.1
done

bench/lollipop-config.sh "$work" "$port" "$upstream_port" > "$work/lollipop.toml"
[ -z "${LOLLIPOP_EXTRA:-}" ] || printf '%b\n' "$LOLLIPOP_EXTRA" >> "$work/lollipop.toml"
"$bin" --config "$work/lollipop.toml" lists compile > "$work/compile.txt"

if [ "$profile" = heaptrack ]; then
  LOLLIPOP_LOG=warn heaptrack -o "$work/heap" "$bin" --config "$work/lollipop.toml" run > "$work/lollipop.log" 2>&1 &
  launcher=$!
  pids+=("$launcher")
  pid=""
  for _ in $(seq 100); do
    for child in $(ps --ppid "$launcher" -o pid=); do
      [ "$(readlink "/proc/$child/exe" 2>/dev/null)" != "$bin" ] || pid=$child
    done
    [ -z "$pid" ] || break
    sleep 0.1
  done
  [ -n "$pid" ] || { echo "heaptrack did not start lollipop; its log:" >&2; cat "$work/lollipop.log" >&2; exit 1; }
  pids+=("$pid")
else
  LOLLIPOP_LOG=warn "$bin" --config "$work/lollipop.toml" run > "$work/lollipop.log" 2>&1 &
  pid=$!
  pids+=("$pid")
fi
python3 bench/probe.py --port "$port" --name "$(cat "$work/probe.txt")" --timeout 180 > /dev/null || {
  echo "lollipop did not start; its log:" >&2
  tail -20 "$work/lollipop.log" >&2
  exit 1
}
# A probe answered by another server on the port is not this one's start.
kill -0 "$pid" 2>/dev/null || { echo "lollipop stopped (port $port taken?); its log:" >&2; tail -20 "$work/lollipop.log" >&2; exit 1; }

# One line of the resident set, from /proc/PID/smaps: the process's own
# memory, the compiled list index, the program's code and data, and any
# other mapped file (SQLite's shared memory, libraries).
memory() {
  awk -v label="$1" -v bin="$bin" '
    /^[0-9a-f]+-[0-9a-f]+ / { path = (NF >= 6) ? $6 : ""; next }
    /^Rss:/ { rss = $2 }
    /^Anonymous:/ {
      anon += $2
      file = rss - $2
      if (path == bin) code += file
      else if (path ~ /lists\.lollipop$/) index_kb += file
      else other += file
    }
    END {
      printf "%-28s own %6.1f MB | mapped: list index %5.1f MB, program %5.1f MB, other %4.1f MB | total %6.1f MB\n",
        label, anon / 1024, index_kb / 1024, code / 1024, other / 1024, (anon + index_kb + code + other) / 1024
    }' "/proc/$pid/smaps"
}
queries=$(wc -l < "$work/queries.txt")
echo "list $(basename "$list") ($(wc -l < "$work/domains.txt") domains), query mix $queries names, $(nproc) cores"
memory "after start"
dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -n 1 -l 120 -q 100 > "$work/warm.txt" 2>&1 || true
memory "after the mix once"
# CPU time the server spends per query at peak (user and system, all
# threads): what purging freed memory back to the system costs shows here,
# more steadily than in the rate on a shared machine.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
ticks_before=$(cpu_ticks)
dnsperf -s 127.0.0.1 -p "$port" -d "$work/queries.txt" -l 8 -c 4 -q 256 > "$work/peak.txt" 2>&1 || true
ticks_after=$(cpu_ticks)
memory "after 8 s at peak"
sleep 15
memory "15 s later"
awk -v ticks=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" '
  /Queries per second/ {qps = $4} /Queries completed/ {done = $3} /Queries lost/ {lost = $3}
  END {printf "peak: %d q/s, %s lost, %.1f us of CPU per query\n", qps, lost, done ? ticks / hz / done * 1e6 : 0}' "$work/peak.txt"
awk '/VmHWM/ {printf "highest resident set: %.1f MB\n", $2 / 1024}' "/proc/$pid/status"

if [ "$profile" = heaptrack ]; then
  # Killed, not stopped: a graceful stop frees the caches, and what is
  # still allocated at the kill is what the process held.
  kill -KILL "$pid"
  wait "$launcher" 2>/dev/null || true
  data=$(find "$work" -maxdepth 1 -name 'heap*' | head -1)
  [ -n "$data" ] || { echo "heaptrack wrote no data; its log:" >&2; tail -20 "$work/lollipop.log" >&2; exit 1; }
  mkdir -p target/bench
  cp "$data" "target/bench/memory-heaptrack.${data##*.}"
  echo "heaptrack data kept: target/bench/memory-heaptrack.${data##*.} (heaptrack_print -f ... or heaptrack_gui)"
  echo "== held after the peak, by where it was allocated (heaptrack, glibc malloc)"
  heaptrack_print -f "$data" --print-leaks 1 --print-peaks 0 --print-allocators 0 \
    --print-temporary 0 -n 15 -s 3 2>/dev/null | sed -n '/MEMORY LEAKS/,$p' | head -200
fi
