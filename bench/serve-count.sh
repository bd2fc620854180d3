#!/usr/bin/env bash
# Instructions per answered query for Lollipop serving the compare mix
# (bench/compare.sh: the 1M-domain list, the NSD upstream, one third
# allowed, one third blocked, one third NXDOMAIN, 30,000 distinct names),
# every name already cached: Lollipop runs under callgrind, is warmed with
# one pass of the queries, then counted over a second pass, every thread
# (the UDP readers, the block log's writer, the runtime) together, as the
# CPU time per query in docs/bench/results.md counts them. Unlike a time, the
# count repeats on a shared, busy machine (within about 1 %), so it is the
# figure to judge a change to the serving path by.
#
#   bench/serve-count.sh [--top N] [--keep] [--repeats] [--warm N]
#
# --warm N warms up with N passes instead of one. After one pass every
# answer is in the response cache, but an answer that waited for the
# upstream is not yet kept by the stage that gives a repeated question the
# bytes of its last answer (it keeps answers ready at once); after two,
# every question of the counted pass is a repeat of one it keeps, as in
# compare.sh's runs, where each name is asked many times.
#
# By default every blocked lookup of the counted pass is a new row of the
# block log (the counted pass comes past the 10 s window for collapsing
# repeats), the cost a name blocked for the first time has. With --repeats
# every blocked lookup of the counted pass is a repeat of a row already
# written, as in the timed runs of compare.sh, where each blocked name
# comes back about every 0.3 s: the queries are taken in chunks of
# REPEAT_CHUNK (default 1,000), each sent once uncounted (making the rows)
# and at once REPEAT_SENDS times (default 2) counted, within the 10 s
# window; counting goes on until the rows' windows have ended and their
# repeats are written. The script says how many rows the counted chunks
# made (none, if every lookup was a repeat). Under callgrind the sends of
# a chunk are seconds apart, so a row takes 2 repeats in its window, not
# the 30 or so of compare.sh: the count per blocked lookup is the steady
# state's dearest case.
#
# Builds the release binary with line tables for Lollipop's own code (into
# target/release; BIN=path counts an already built binary instead, e.g. one
# kept from before a change). The inputs (list, queries, NSD's zones,
# lollipop.toml, the compiled list) come from one run of
# `bench/compare.sh --servers lollipop --keep`, made once and kept in
# target/bench/serve-count/; delete that directory to make them afresh.
# Prints the instructions per query, then the top functions exclusive and
# inclusive (callgrind_annotate), and leaves the callgrind file in
# target/bench/serve-count/callgrind.out for a closer look. Takes about five
# minutes on 2 busy cores. BENCH_PORT moves the ports (default 31740 and up).
# Needs valgrind, dnsperf, nsd, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
top=30 keep=no repeats=no warm=1
while [ $# -gt 0 ]; do
  case $1 in
    --top) top=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    --repeats) repeats=yes; shift ;;
    --warm) warm=$2; shift 2 ;;
    -h|--help) sed -n '2,48p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/usr/sbin"
for tool in valgrind callgrind_control callgrind_annotate dnsperf nsd python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y valgrind dnsperf nsd python3" >&2; exit 1; }
done

bin=${BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --config 'profile.release.package.lollipop.debug="line-tables-only"'
  bin=target/release/lollipop
fi
bin=$(realpath "$bin")

port=${BENCH_PORT:-31740}
inputs=$root/target/bench/serve-count
if [ ! -f "$inputs/ready" ]; then
  echo "== inputs: one run of bench/compare.sh (kept in $inputs)"
  rm -rf "$inputs"
  mkdir -p "$inputs"
  LOLLIPOP_BIN=$bin BENCH_PORT=$port bench/compare.sh --servers lollipop --rounds 1 \
    --seconds 2 --keep --out "$inputs/compare" > "$inputs/compare.log" 2>&1 || {
    tail -20 "$inputs/compare.log" >&2
    exit 1
  }
  kept=$(sed -n 's/^working directory kept: //p' "$inputs/compare.log")
  [ -d "$kept" ] || { echo "compare.sh kept no directory; see $inputs/compare.log" >&2; exit 1; }
  cp -a "$kept/nsd" "$kept/lollipop" "$kept/lollipop.toml" "$kept/queries.txt" \
    "$kept/domains.txt" "$inputs/"
  # The configs name the kept directory: from here on, $inputs.
  sed -i "s|$kept|$inputs|g" "$inputs/lollipop.toml" "$inputs/nsd/nsd.conf"
  rm -rf "$kept"
  touch "$inputs/ready"
fi

work=$(mktemp -d /tmp/lollipop-serve-count.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$keep" = yes ]; then echo "working directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A fresh data directory each run (the block log starts empty), on the
# same compiled list.
cp -a "$inputs/lollipop" "$work/lollipop"
sed "s|$inputs/lollipop\"|$work/lollipop\"|" "$inputs/lollipop.toml" > "$work/lollipop.toml"
lollipop_port=$(sed -n 's/^address = "127.0.0.1:\([0-9]*\)"/\1/p' "$work/lollipop.toml" | head -1)

nsd -d -c "$inputs/nsd/nsd.conf" > "$work/nsd.log" 2>&1 &
pids+=($!)
# Instrumentation off until the measured pass: start-up and the warm-up
# run at valgrind's uninstrumented speed and are not counted.
LOLLIPOP_LOG=warn valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" \
  "$bin" --config "$work/lollipop.toml" run > "$work/lollipop.log" 2>&1 &
lollipop=$!
pids+=("$lollipop")
probe=$(head -1 "$inputs/queries.txt" | awk '{print $1}')
for _ in $(seq 600); do
  dig +short +time=1 +tries=1 -p "$lollipop_port" @127.0.0.1 "$probe" A > /dev/null 2>&1 && break
  kill -0 "$lollipop" 2>/dev/null || { cat "$work/lollipop.log" >&2; exit 1; }
  sleep 0.5
done

run_queries() {
  timeout 600 dnsperf -s 127.0.0.1 -p "$lollipop_port" -d "${3:-$inputs/queries.txt}" -n "$1" \
    -l 300 -q 20 -t 10 > "$2" 2>&1
}
# The block log's writer runs behind the answers (more so under
# valgrind): wait until the rows it has written stop changing.
logged() {
  python3 -c 'import sqlite3, sys
db = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True, timeout=10)
print(db.execute("SELECT count(*), COALESCE(sum(count), 0) FROM blocked").fetchone())' \
    "$work/lollipop/lollipop.db" 2>/dev/null || echo none
}
# $1: how many one-second looks in a row must see no change (the writer
# adds repeats to their rows in rounds a second apart, so two looks are
# needed to see them all written).
settle_log() {
  local before now stable=0
  before=$(logged)
  for _ in $(seq 120); do
    sleep 1
    now=$(logged)
    if [ "$now" != "$before" ] || [ "$now" = none ]; then
      stable=0
    else
      stable=$((stable + 1))
      [ "$stable" -lt "${1:-1}" ] || return 0
    fi
    before=$now
  done
  echo "the block log was still being written after two minutes" >&2
  exit 1
}
rows_logged() { logged | tr -d '(),' | awk '{print $1}'; }
for pass in $(seq "$warm"); do
  echo "== warm-up pass $pass of $warm (every name into the cache)"
  run_queries 1 "$work/warm.txt"
  grep -E 'Queries (completed|lost)' "$work/warm.txt"
done
settle_log
# Past the block log's 10 s window for collapsing repeats: every blocked
# query of the counted pass (or, with --repeats, of each uncounted chunk)
# is a row of its own, as a name blocked for the first time is, and the
# count does not depend on how long the warm-up took.
sleep 11
if [ "$repeats" = no ]; then
  echo "== counted pass"
  callgrind_control -i on "$lollipop" > /dev/null
  run_queries 1 "$work/count.txt"
  settle_log
  callgrind_control --dump=measured "$lollipop" > /dev/null
  callgrind_control -i off "$lollipop" > /dev/null
  echo "block log rows (rows, lookups): $(logged)"
else
  sends=${REPEAT_SENDS:-2}
  echo "== counted pass of repeats: chunks of ${REPEAT_CHUNK:-1000} queries, each sent $sends times"
  split -l "${REPEAT_CHUNK:-1000}" -d -a 3 "$inputs/queries.txt" "$work/chunk."
  new_rows=0
  : > "$work/count.txt"
  for chunk in "$work"/chunk.*; do
    # Uncounted: makes this chunk's rows; the writer commits them within
    # its 200 ms batch time, so the counted sends find them written.
    primed_at=$(date +%s)
    run_queries 1 "$work/prime.txt" "$chunk"
    sleep 1
    before=$(rows_logged)
    callgrind_control -i on "$lollipop" > /dev/null 2>&1
    for _ in $(seq "$sends"); do
      run_queries 1 "$work/chunk-count.txt" "$chunk"
      cat "$work/chunk-count.txt" >> "$work/count.txt"
    done
    # Past the rows' 10 s window, so the writing of their repeats is
    # counted however long the writer holds them.
    while [ $(($(date +%s) - primed_at)) -lt 12 ]; do sleep 0.5; done
    settle_log 2
    callgrind_control -i off "$lollipop" > /dev/null 2>&1
    new_rows=$((new_rows + $(rows_logged) - before))
  done
  callgrind_control --dump=measured "$lollipop" > /dev/null
  echo "block log rows (rows, lookups): $(logged)"
  echo "rows made by the counted chunks: $new_rows (0: every blocked lookup counted was a repeat)"
fi
[ "$repeats" = yes ] || grep -E 'Queries (completed|lost)|Response codes' "$work/count.txt"
answered=$(awk '/Queries completed:/ {n += $3} END {print n + 0}' "$work/count.txt")
lost=$(awk '/Queries lost:/ {n += $3} END {print n + 0}' "$work/count.txt")
[ "${answered:-0}" -gt 0 ] || { echo "no query answered in the counted pass" >&2; exit 1; }
[ "$repeats" = no ] || echo "counted pass: $answered queries answered, $lost lost"

dump=$(ls "$work"/callgrind.out.* 2>/dev/null | head -1)
[ -n "$dump" ] || { echo "callgrind wrote no dump" >&2; exit 1; }
cp "$dump" "$inputs/callgrind.out"
# A dump taken with instrumentation off says "summary: 0"; its totals hold.
total=$(awk '/^(summary|totals):/ && $2 > 0 {print $2; exit}' "$dump")
echo
echo "instructions: $total over $answered answered queries = $((total / answered)) per query"
echo
echo "== top functions, exclusive (instructions per query)"
annotate() {
  callgrind_annotate --threshold=100 "$@" "$dump" 2>/dev/null \
    | awk -v n="$answered" -v top="$top" '
      /^-+$/ { rule++; next }
      rule >= 3 && $1 ~ /^[0-9,]+$/ && shown < top {
        ir = $1; gsub(",", "", ir)
        line = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", line)
        sub(/ \[[^]]*\]$/, "", line)
        printf "%8.0f  %s\n", ir / n, substr(line, 1, 150)
        shown++
      }'
}
annotate --inclusive=no
echo
echo "== top functions, inclusive"
annotate --inclusive=yes
echo
echo "== the block log's writer and the rest (answering, the runtime), per query"
# The readers were inside their loop when counting began, so callgrind has
# no frame above it for them: the rest is the total less the writer.
writer=$(callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null \
  | awk '!found && /journal::store::Store::write( |$)/ { found = 1; ir = $1; gsub(",", "", ir); print ir }')
writer=${writer:-0}
printf '%8d  block log (journal::store::Store::write)\n' "$((writer / answered))"
printf '%8d  the rest\n' "$(((total - writer) / answered))"
