#!/bin/sh
# Instructions per filtering decision, counted by callgrind: repeatable on
# a busy machine where criterion's times are not. Runs cases of the
# decision bench (benches/decision.rs) under valgrind, counting only inside
# lollipop::policy::Policy::decide, and prints Ir per call.
#   bench/decision-callgrind.sh ['time_rules_1m/blocked hit / time rules none' ...]
# LOLLIPOP_BENCH_LIST picks the list (default: 100,000 generated domains,
# as compiling a million under valgrind takes many minutes).
set -eu
cd "$(dirname "$0")/.."
if [ -z "${LOLLIPOP_BENCH_LIST:-}" ]; then
    LOLLIPOP_BENCH_LIST=target/bench/list-100k.txt
    [ -f "$LOLLIPOP_BENCH_LIST" ] ||
        python3 bench/gen-list.py --domains 100000 --out "$LOLLIPOP_BENCH_LIST"
fi
export LOLLIPOP_BENCH_LIST
binary=$(cargo bench --bench decision --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == "decision":
        print(m["executable"])')
[ $# -gt 0 ] || set -- \
    "time_rules_1m/blocked hit / time rules none" \
    "time_rules_1m/blocked hit / time rules lunch in force" \
    "time_rules_1m/allowed at lunch / time rules none" \
    "time_rules_1m/allowed at lunch / time rules lunch in force" \
    "time_rules_1m/miss (not listed) / time rules none" \
    "time_rules_1m/miss (not listed) / time rules lunch in force"
out=$(mktemp -d)
for case in "$@"; do
    # criterion takes a regex: "(not listed)" must match itself.
    pattern=$(printf '%s' "$case" | sed 's/[][()^$.*+?|\\]/\\&/g')
    valgrind --tool=callgrind --collect-atstart=no \
        --toggle-collect='lollipop::policy::Policy::decide' \
        --callgrind-out-file="$out/cg.out" \
        "$binary" --bench "^$pattern\$" --profile-time 2 >/dev/null 2>&1
    python3 - "$out/cg.out" "$case" <<'PY'
import re, sys
names, calls, cost = {}, 0, 0
lines = open(sys.argv[1]).read().splitlines()
for i, line in enumerate(lines):
    m = re.match(r'c?fn=\((\d+)\)(?: (.*))?', line)
    if not m:
        continue
    if m.group(2):
        names[m.group(1)] = m.group(2)
    if line.startswith('cfn=') and names.get(m.group(1)) == 'lollipop::policy::Policy::decide':
        calls += int(lines[i + 1].split()[0].split('=')[1])
        cost += int(lines[i + 2].split()[1])
# The bench's own check (two decisions) is counted too: negligible.
print(f"{sys.argv[2]}: {cost / max(calls, 1):.0f} instructions per decision ({calls} calls)")
PY
done
rm -r "$out"
