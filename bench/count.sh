#!/usr/bin/env bash
# Instructions per decision for the name-rule rows of the decision bench
# (benches/decision.rs), counted by callgrind: unlike a time, a count
# repeats on a shared, busy machine. Per name: rules off; on, for a name read
# afresh whose labels are new too ("labels new"); on, for a name read afresh
# made of labels the thread has seen in other names ("first reading": "www",
# "sch", "uk" and a school's own name recur across names far more than whole
# names do); on, for a name asked again (the rules' remembered answer).
# Then a stream: 10,000 distinct names of the query mix bench/make-queries.py
# makes (a third not listed, a third listed, a third that exist nowhere),
# each decided once, rules off and on.
#
#   bench/count.sh [ITERATIONS]       (default 2000)
#
# BIN=path runs an already built benches/decision_count.rs (e.g. one kept
# from before a change). Needs valgrind. Takes about two minutes.
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
count() { # ITERATIONS ARGS...: instructions per decision
  local n=$1
  shift
  valgrind --tool=callgrind --toggle-collect='*measured_decisions*' \
    --toggle-collect='*measured_stream*' \
    --callgrind-out-file="$out/cg" "$bin" --bench "$@" >/dev/null 2>&1
  echo $(($(grep -m1 '^totals:' "$out/cg" | awk '{print $2}') / n))
}
cost() { echo "$(( ($1 - $2) * 100 / $2 ))%"; }
printf '%-52s %9s %11s %6s %9s %6s %9s %6s\n' "name" "rules off" "labels new" "cost" \
  "first" "cost" "again" "cost"
for domain in assets.school-website.sch.uk. \
  cdn-07.assets-2024.static.school-website-1.sch.uk. \
  www.su1c1de-methods.example.; do
  declare -A ir=()
  for switch in off fresh first on; do
    ir[$switch]=$(count "$iterations" "$domain" "$switch" "$iterations")
  done
  printf '%-52s %9s %11s %6s %9s %6s %9s %6s\n' "$domain" "${ir[off]}" \
    "${ir[fresh]}" "$(cost "${ir[fresh]}" "${ir[off]}")" \
    "${ir[first]}" "$(cost "${ir[first]}" "${ir[off]}")" \
    "${ir[on]}" "$(cost "${ir[on]}" "${ir[off]}")"
done
# The stream: the query mix for the bench list (made once, fixed seed).
queries=target/bench/queries/queries.txt
if [ ! -f "$queries" ]; then
  python3 bench/make-queries.py --list target/bench/list-1m.txt \
    --out target/bench/queries --per-kind 3334 >/dev/null
fi
names=10000
off=$(count "$names" stream "$queries" off "$names")
on=$(count "$names" stream "$queries" on "$names")
printf '%-52s %9s %11s %6s\n' "stream of $names distinct names, each once" "$off" "$on" \
  "$(cost "$on" "$off")"
