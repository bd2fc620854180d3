#!/usr/bin/env bash
# Instructions per decision for the name-rule rows of the decision bench
# (benches/decision.rs), rules off, on for a name read afresh, and on for a
# name asked again (the rules' remembered answer), counted by callgrind: unlike a
# time, a count repeats on a shared, busy machine.
#
#   bench/count.sh [ITERATIONS]       (default 2000)
#
# BIN=path runs an already built benches/decision_count.rs (e.g. one kept
# from before a change). Needs valgrind. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
iterations=${1:-2000}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install -y valgrind" >&2; exit 1; }
bin=${BIN:-}
if [ -z "$bin" ]; then
  bin=$(cargo bench --bench decision_count --no-run 2>&1 \
    | grep -o 'target/release/deps/decision_count-[0-9a-f]*' | tail -1)
fi
# Compiles the list natively once (too slow under valgrind).
"$bin" --bench assets.school-website.sch.uk. on 1 >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-52s %10s %14s %8s %10s %8s\n' "name" "rules off" "first reading" "cost" "again" "cost"
for domain in assets.school-website.sch.uk. \
  cdn-07.assets-2024.static.school-website-1.sch.uk. \
  www.su1c1de-methods.example.; do
  declare -A ir=()
  for switch in off first on; do
    valgrind --tool=callgrind --toggle-collect='*measured_decisions*' \
      --callgrind-out-file="$out/cg" "$bin" --bench "$domain" "$switch" "$iterations" \
      >/dev/null 2>&1
    total=$(grep -m1 '^totals:' "$out/cg" | awk '{print $2}')
    ir[$switch]=$((total / iterations))
  done
  printf '%-52s %10s %14s %7s%% %10s %7s%%\n' "$domain" "${ir[off]}" "${ir[first]}" \
    "$(( (ir[first] - ir[off]) * 100 / ir[off] ))" "${ir[on]}" \
    "$(( (ir[on] - ir[off]) * 100 / ir[off] ))"
done
