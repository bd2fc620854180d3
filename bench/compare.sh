#!/usr/bin/env bash
# Lollipop side by side with the resolvers a school would otherwise run
# (Unbound, dnsmasq, Knot Resolver), on this machine, all on loopback:
# the same blocklist, the same upstream, the same query mix (one third
# allowed, one third blocked, one third non-existent names), warmed, then
# dnsperf against each in turn, A B A B, for several rounds. Then a run at
# half of Lollipop's peak rate for the latency a client sees in normal use.
#
#   bench/compare.sh [--list FILE] [--queries FILE] [--rounds N] [--seconds S]
#                    [--servers "lollipop unbound dnsmasq kresd"] [--out DIR]
#
# Defaults: 1,000,000 generated domains (bench/gen-list.py, fixed seed), a
# generated query file, 3 rounds of 10 s, every server installed, results in
# docs/bench/ (results.md, results.tsv, qps.svg). Every run is bounded: the
# whole comparison takes about 5 minutes on 2 cores, never more than 15.
# Needs: dnsperf, python3; and unbound, dnsmasq, kresd for those peers
# (apt-get install -y dnsperf unbound dnsmasq-base knot-resolver).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

command_line="bench/compare.sh"
[ $# -eq 0 ] || command_line+=$(printf ' %q' "$@")
list="" queries="" rounds=3 seconds=10 out=docs/bench
servers="lollipop unbound dnsmasq kresd"
dnsperf_args=${DNSPERF_ARGS:-"-c 4 -T 1 -q 256"}
while [ $# -gt 0 ]; do
  case $1 in
    --list) list=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$seconds" -le 60 ] && [ "$rounds" -le 10 ] || { echo "at most 10 rounds of 60 s, to keep the run bounded" >&2; exit 2; }
command -v dnsperf >/dev/null || { echo "dnsperf is missing: apt-get install -y dnsperf" >&2; exit 1; }

if [ -z "$list" ]; then
  list=target/bench/list-1m.txt
  if [ ! -s "$list" ]; then
    mkdir -p target/bench
    python3 bench/gen-list.py --domains 1000000 --out "$list"
  fi
fi
list=$(realpath "$list")
[ -z "$queries" ] || queries=$(realpath "$queries")

available=""
for s in $servers; do
  case $s in
    lollipop) available+=" lollipop" ;;
    unbound) command -v unbound >/dev/null && available+=" unbound" || echo "unbound not installed: skipped" >&2 ;;
    dnsmasq) command -v dnsmasq >/dev/null && available+=" dnsmasq" || echo "dnsmasq not installed: skipped" >&2 ;;
    kresd) command -v kresd >/dev/null && available+=" kresd" || echo "kresd not installed: skipped" >&2 ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
done

bin=${LOLLIPOP_BIN:-target/release/lollipop}
if [[ $available == *lollipop* ]]; then
  [ -n "${LOLLIPOP_BIN:-}" ] || cargo build --release --quiet
  bin=$(realpath "$bin")
fi

work=$(mktemp -d /tmp/lollipop-compare.XXXXXX)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== inputs ($work)"
args=(--list "$list" --out "$work")
[ -z "$queries" ] || args+=(--queries "$queries")
python3 bench/make-queries.py "${args[@]}"
probe_name=$(cat "$work/probe.txt")
# The probe name resolves upstream, so only a block answers it with 0.0.0.0 or NXDOMAIN.
echo "$probe_name" >> "$work/allowed.txt"
domains=$(wc -l < "$work/domains.txt")

upstream_port=5390
python3 bench/upstream.py --port $upstream_port --allowed "$work/allowed.txt" &
pids+=($!)

declare -A port pid startup rss_start
port[lollipop]=5391 port[unbound]=5392 port[dnsmasq]=5393 port[kresd]=5394

write_configs() {
  cat > "$work/lollipop.toml" <<TOML
[server]
data_dir = "$work/lollipop"
default_profile = "school"
[[listen]]
address = "127.0.0.1:${port[lollipop]}"
[[upstream]]
address = "127.0.0.1:$upstream_port"
protocol = "udp"
[resolver]
timeout_ms = 1000
attempts = 1
cache_mb = 128
# dnsperf asks from one address far faster than any school device: the
# per-client rate limits would measure themselves, not the resolver.
[limits]
per_address_qps = 0
per_network_qps = 0
[web]
enabled = false
[[lists]]
name = "bench"
path = "$work/domains.txt"
category = "malware"
[profiles.school]
mode = "blocklist"
block_categories = ["malware"]
TOML
  if [[ $available == *unbound* ]]; then
    {
      cat <<CONF
server:
  interface: 127.0.0.1@${port[unbound]}
  do-ip6: no
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  num-threads: $(nproc)
  so-reuseport: yes
  module-config: "iterator"
  msg-cache-size: 64m
  rrset-cache-size: 128m
CONF
      awk '{print "  local-zone: \"" $0 ".\" always_null"}' "$work/domains.txt"
      cat <<CONF
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@$upstream_port
CONF
    } > "$work/unbound.conf"
  fi
  if [[ $available == *dnsmasq* ]]; then
    awk '{print "address=/" $0 "/#"}' "$work/domains.txt" > "$work/dnsmasq-block.conf"
    cat > "$work/dnsmasq.conf" <<CONF
port=${port[dnsmasq]}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
server=127.0.0.1#$upstream_port
cache-size=65536
conf-file=$work/dnsmasq-block.conf
CONF
  fi
  if [[ $available == *kresd* ]]; then
    awk '{print $0 " CNAME ."; print "*." $0 " CNAME ."}' "$work/domains.txt" > "$work/block.rpz"
    mkdir -p "$work/kresd"
    cat > "$work/kresd.conf" <<CONF
net.listen('127.0.0.1', ${port[kresd]}, { kind = 'dns' })
cache.size = 128 * MB
modules.unload('ta_update')
modules.unload('detect_time_jump')
trust_anchors.remove('.')
policy.add(policy.rpz(policy.DENY, '$work/block.rpz', false))
policy.add(policy.all(policy.STUB('127.0.0.1@$upstream_port')))
CONF
  fi
}

start_server() {
  local s=$1 t0 t1
  # The list compile is not part of start-up: it runs off the hot path, ahead of time.
  [ "$s" != lollipop ] || "$bin" --config "$work/lollipop.toml" lists compile > "$work/compile.txt"
  t0=$(date +%s%N)
  case $s in
    lollipop)
      LOLLIPOP_LOG=warn "$bin" --config "$work/lollipop.toml" run > "$work/lollipop.log" 2>&1 &
      ;;
    unbound)
      unbound -d -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
      ;;
    dnsmasq)
      dnsmasq -k -C "$work/dnsmasq.conf" > "$work/dnsmasq.log" 2>&1 &
      ;;
    kresd)
      (cd "$work/kresd" && exec kresd -n -q -c "$work/kresd.conf" "$work/kresd") > "$work/kresd.log" 2>&1 &
      ;;
  esac
  pid[$s]=$!
  pids+=("${pid[$s]}")
  if ! t1=$(python3 bench/probe.py --port "${port[$s]}" --name "$probe_name" --timeout 120); then
    echo "$s did not start; its log:" >&2
    tail -20 "$work/$s.log" >&2
    return 1
  fi
  startup[$s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  rss_start[$s]=$(rss "${pid[$s]}")
  echo "$s: first blocked answer after ${startup[$s]} s, RSS ${rss_start[$s]} MB"
}

# Waits until process $1 uses under 5% of a core over a second, for 30 s at most.
settle() {
  local before after
  for _ in $(seq 30); do
    before=$(cpu_ticks "$1"); sleep 1; after=$(cpu_ticks "$1")
    [ $(( (after - before) * 100 )) -ge $(( ticks_per_second * 5 )) ] || return 0
  done
}
rss() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
# User plus system CPU of the process and all its threads, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ticks_per_second=$(getconf CLK_TCK)

write_configs
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== start-up (load average $load_before)"
started=""
for s in $available; do
  if start_server "$s"; then started+=" $s"; fi
done

echo "== warm-up: every query once"
for s in $started; do
  dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -n 1 -l 60 -q 100 > "$work/warm-$s.txt" 2>&1 || true
done

results=$work/runs.tsv
: > "$results"
echo "== $rounds rounds of $seconds s, servers in turn ($dnsperf_args)"
for round in $(seq 1 "$rounds"); do
  for s in $started; do
    c0=$(cpu_ticks "${pid[$s]}")
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -l "$seconds" $dnsperf_args > "$work/run.txt" 2>&1 || true
    c1=$(cpu_ticks "${pid[$s]}")
    awk -v s="$s" -v r="$round" -v c="$(( c1 - c0 ))" -v hz="$ticks_per_second" '
      /Queries per second/ {qps = $4}
      /Queries lost/ {lost = $3}
      /Queries sent/ {sent = $3}
      /Average Latency/ {lat = $4}
      END {printf "%s\t%d\t%.0f\t%.2f\t%d\t%d\t%.6f\n", s, r, qps, c / hz, lost, sent, lat}' "$work/run.txt" | tee -a "$results"
  done
done

declare -A rss_after
for s in $started; do rss_after[$s]=$(rss "${pid[$s]}"); done

peak=$(awk '$1 == "lollipop" {print $3}' "$results" | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print 0}')
half=$(( ${peak%.*} / 2 ))
[ "$half" -gt 0 ] || half=10000
echo "== latency at half of Lollipop's peak: $half queries/s for $seconds s each"
latency=$work/latency.tsv
: > "$latency"
for s in $started; do
  # Background work left from the peak runs (Lollipop's block log catching
  # up, a cache's clean-up) is not part of steady use: wait, at most 30 s,
  # until the server is idle.
  settle "${pid[$s]}"
  # dnsperf's line per query goes to a file, not through a pipe: a filter
  # running alongside would take CPU from the server being measured.
  dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -l "$seconds" -Q "$half" -c 4 -q 256 -v > "$work/latency-raw.txt" 2>/dev/null || true
  awk '/^> / {print $NF}' "$work/latency-raw.txt" | sort -g > "$work/latencies.txt"
  rm -f "$work/latency-raw.txt"
  awk -v s="$s" '{v[NR] = $1; sum += $1}
    END {
      if (!NR) { printf "%s\t0\t0\t0\n", s; exit }
      i = int(NR * 0.99); if (i < 1) i = 1
      printf "%s\t%d\t%.6f\t%.6f\n", s, NR, sum / NR, v[i]
    }' "$work/latencies.txt" | tee -a "$latency"
done

summary=$work/servers.tsv
: > "$summary"
for s in $started; do
  printf "%s\t%s\t%s\t%s\n" "$s" "${startup[$s]}" "${rss_start[$s]}" "${rss_after[$s]}" >> "$summary"
done

mkdir -p "$out"
cpus=$(nproc)
model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
versions="lollipop $("$bin" --version 2>/dev/null | awk '{print $2}'), $(unbound -V 2>/dev/null | awk '/^Version/ {print "unbound " $2}'), $(dnsmasq -v 2>/dev/null | awk 'NR == 1 {print "dnsmasq " $3}'), $(kresd --version 2>/dev/null | awk '{print "kresd " $NF}'), $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}')"
compile=""
[ ! -f "$work/compile.txt" ] || compile=$(tr '\n' ' ' < "$work/compile.txt")
python3 bench/report.py --runs "$results" --latency "$latency" --servers "$summary" --out "$out" \
  --note "$(date -u +%Y-%m-%dT%H:%MZ); $cpus × $model; load average before $load_before, after $load_after; list $(basename "$list") ($domains domains); $rounds rounds of $seconds s; dnsperf $dnsperf_args on the same cores; half-peak rate $half q/s; $versions" \
  --command "$command_line" --compile "$compile"
cp "$results" "$out/runs.tsv"
cp "$latency" "$out/latency.tsv"
cp "$summary" "$out/servers.tsv"
echo "== written: $out/results.md, $out/qps.svg"
