#!/usr/bin/env bash
# Lollipop side by side with the resolvers a school would otherwise run
# (Unbound, dnsmasq, Knot Resolver, PowerDNS Recursor, dnsdist), on this
# machine, all on loopback: the same blocklist, the same upstream (NSD, an
# authoritative server compiled in C, serving the allowed names and NXDOMAIN
# with an SOA for the rest), the same query mix (one third allowed, one
# third blocked, one third non-existent names). Each peer is configured the
# way its own documentation recommends for a large blocklist and for
# forwarding to one upstream (docs/bench/peers.md). Every server is first
# checked to block a listed name, answer an allowed one and give NXDOMAIN
# for a missing one; one that does not is reported and left out. Then,
# warmed, dnsperf against each in turn, A B C A B C, for several rounds, at
# each client shape. Then, at each shape, a run at half of Lollipop's peak
# rate for the latency a client sees in normal use. Two references are
# measured beside the servers, never as peers: the floor (examples/
# udp_floor.rs: Lollipop's batched UDP receive and send with no DNS work)
# and NSD asked directly. The machine's own pauses are counted first, idle
# (bench/pauses.py).
#
#   bench/compare.sh [--list FILE] [--queries FILE] [--rounds N] [--seconds S]
#                    [--shapes "-c 4 -q 256;-c 8 -q 200"]
#                    [--servers "lollipop unbound dnsmasq kresd pdns-recursor dnsdist"]
#                    [--out DIR] [--keep]
#
# Defaults: 1,000,000 generated domains (bench/gen-list.py, fixed seed), a
# generated query file, 3 rounds of 10 s at each of the two shapes, every
# server installed, results in docs/bench/ (results.md, runs.tsv, qps.svg).
# --list takes one domain a line, a hosts file or ||domain^ lines; --queries
# a dnsperf file (`name TYPE` a line). --keep leaves the working directory
# (configs, logs) in place. Every step is bounded: the whole comparison
# takes about 15 minutes on 2 cores, and about an hour if every step ran
# into its time limit.
# BENCH_PORT moves the ports (25390 and up); BENCH_UPSTREAM=python,
# DNSMASQ_BLOCK, DNSMASQ_CACHE and UNBOUND_TUNING=no bring back the previous
# harness's settings for the comparison in docs/bench/peers.md.
# Needs: dnsperf, nsd, python3; and the peers (apt-get install -y dnsperf nsd
# unbound dnsmasq-base knot-resolver pdns-recursor dnsdist).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

command_line="bench/compare.sh"
[ $# -eq 0 ] || command_line+=$(printf ' %q' "$@")
list="" queries="" rounds=3 seconds=10 out=docs/bench keep=no
servers="lollipop unbound dnsmasq kresd pdns-recursor dnsdist"
shapes="-c 4 -q 256;-c 8 -q 200"
while [ $# -gt 0 ]; do
  case $1 in
    --list) list=$2; shift 2 ;;
    --queries) queries=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --shapes) shapes=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=yes; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$seconds" -le 60 ] && [ "$rounds" -le 10 ] || { echo "at most 10 rounds of 60 s, to keep the run bounded" >&2; exit 2; }
IFS=';' read -r -a shape_list <<< "$shapes"
[ "${#shape_list[@]}" -ge 1 ] && [ "${#shape_list[@]}" -le 4 ] || { echo "--shapes: one to four dnsperf shapes separated by ';'" >&2; exit 2; }
for tool in dnsperf nsd python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "$tool is missing: apt-get install -y dnsperf nsd python3" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"
cores=$(nproc)

if [ -z "$list" ]; then
  list=target/bench/list-1m.txt
  if [ ! -s "$list" ]; then
    mkdir -p target/bench
    python3 bench/gen-list.py --domains 1000000 --out "$list"
  fi
fi
list=$(realpath "$list")
[ -z "$queries" ] || queries=$(realpath "$queries")

declare -A binary=([unbound]=unbound [dnsmasq]=dnsmasq [kresd]=kresd [pdns-recursor]=pdns_recursor [dnsdist]=dnsdist)
available=""
for s in $servers; do
  case $s in
    lollipop) available+=" lollipop" ;;
    unbound|dnsmasq|kresd|pdns-recursor|dnsdist)
      if command -v "${binary[$s]}" >/dev/null; then available+=" $s"; else echo "$s not installed: skipped" >&2; fi ;;
    *) echo "unknown server $s" >&2; exit 2 ;;
  esac
done

bin=${LOLLIPOP_BIN:-target/release/lollipop}
if [[ $available == *lollipop* ]]; then
  [ -n "${LOLLIPOP_BIN:-}" ] || cargo build --release --quiet
  bin=$(realpath "$bin")
fi
# The floor beside the servers: Lollipop's own batched UDP receive and send
# with no DNS work (examples/udp_floor.rs).
cargo build --release --quiet --example udp_floor
floor_bin=$(realpath target/release/examples/udp_floor)

work=$(mktemp -d /tmp/lollipop-compare.XXXXXX)
all_pids=()
cleanup() {
  for p in "${all_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$keep" = yes ]; then echo "working directory kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

echo "== inputs ($work)"
args=(--list "$list" --out "$work")
[ -z "$queries" ] || args+=(--queries "$queries")
python3 bench/make-queries.py "${args[@]}"
probe_name=$(cat "$work/probe.txt")
domains=$(wc -l < "$work/domains.txt")

# Ports: one base, away from the usual ones; BENCH_PORT moves them all.
base=${BENCH_PORT:-25390}
upstream_port=$base
declare -A port pids startup rss_start
port[lollipop]=$((base + 1)) port[unbound]=$((base + 2)) port[dnsmasq]=$((base + 3))
port[kresd]=$((base + 4)) port[pdns-recursor]=$((base + 5)) port[dnsdist]=$((base + 6))
port[udp-floor]=$((base + 7)) port[nsd]=$upstream_port

echo "== upstream: NSD on 127.0.0.1:$upstream_port"
# A server left on the port by an earlier run would answer in place of the
# upstream started here (with another list's zones): refuse to start.
if dig +time=1 +tries=1 -p "$upstream_port" @127.0.0.1 . SOA >/dev/null 2>&1; then
  echo "something already answers on 127.0.0.1:$upstream_port (a server left from an earlier run?): stop it or set BENCH_PORT" >&2
  exit 1
fi
if [ "${BENCH_UPSTREAM:-nsd}" = python ]; then
  # The previous harness's upstream, kept for the comparison in
  # docs/bench/peers.md: one Python thread answering every cache miss.
  cat "$work/canaries.txt" "$work/probe.txt" >> "$work/allowed.txt"
  python3 bench/upstream.py --port "$upstream_port" --allowed "$work/allowed.txt" &
else
  bench/nsd-upstream.sh "$work" "$upstream_port" &
fi
upstream_pid=$!
all_pids+=("$upstream_pid")
"$floor_bin" "127.0.0.1:${port[udp-floor]}" > "$work/udp-floor.log" 2>&1 &
pids[udp-floor]=$!
all_pids+=($!)
# Measured beside the servers, never compared as peers: the floor (the UDP
# path alone) and NSD asked directly (a DNS server with no cache and no
# policy, answering from memory).
references="udp-floor nsd"
first_allowed=$(head -1 "$work/allowed.txt")
for _ in $(seq 100); do
  if dig +short +time=1 +tries=1 -p "$upstream_port" @127.0.0.1 "$first_allowed" A 2>/dev/null | grep -q '^198\.51\.'; then break; fi
  sleep 0.1
done
dig +short +time=1 +tries=1 -p "$upstream_port" @127.0.0.1 "$first_allowed" A 2>/dev/null | grep -q '^198\.51\.' || {
  echo "the upstream did not answer $first_allowed within 10 s; its log:" >&2
  cat "$work/nsd/nsd.log" "$work/nsd/stdout.log" >&2 2>/dev/null || true
  exit 1
}
# NSD serves from a grandchild (main, then its server) it has started by
# now: every process running this working directory's nsd.conf.
pids[nsd]=$(pgrep -f "nsd -d -c $work/nsd/nsd.conf" | tr '\n' ' ')
# Names the mix asks that a cache must hold (the allowed and missing ones;
# at most all of them), for the peers whose cache is sized in names.
distinct_names=$(awk '{print $1}' "$work/queries.txt" | sort -u | wc -l)

write_configs() {
  bench/lollipop-config.sh "$work" "${port[lollipop]}" "$upstream_port" > "$work/lollipop.toml"
  local slabs=1
  while [ $((slabs * 2)) -le "$cores" ]; do slabs=$((slabs * 2)); done
  if [[ $available == *unbound* ]]; then
    {
      # https://nlnetlabs.nl/documentation/unbound/howto-optimise/ : a
      # thread per core, so-reuseport, *-slabs a power of 2 close to the
      # threads, rrset cache twice the msg cache, outgoing-range 450 with
      # 2 cores (950 with 1, 200 with 4+) and num-queries-per-thread half
      # of it, 4 MB socket buffers. Blocking: local-zone always_null per
      # listed domain (unbound.conf(5), local-zone; answers 0.0.0.0 for the
      # domain and every name under it). Validation off, as for every
      # forwarder here: the bench upstream's root is unsigned.
      local range=450
      [ "$cores" -ne 1 ] || range=950
      [ "$cores" -lt 4 ] || range=200
      local tuning
      tuning=$(printf '  msg-cache-slabs: %s\n  rrset-cache-slabs: %s\n  infra-cache-slabs: %s\n  key-cache-slabs: %s\n  outgoing-range: %s\n  num-queries-per-thread: %s\n  so-rcvbuf: 4m\n  so-sndbuf: 4m' \
        "$slabs" "$slabs" "$slabs" "$slabs" "$range" $((range / 2)))
      # UNBOUND_TUNING=no leaves out what the howto adds to the previous
      # harness's settings, for the comparison in docs/bench/peers.md.
      [ "${UNBOUND_TUNING:-yes}" = yes ] || tuning=""
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
  num-threads: $cores
  so-reuseport: yes
  msg-cache-size: 64m
  rrset-cache-size: 128m
$tuning
  module-config: "iterator"
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
    # dnsmasq(8) and its 2.86 changelog: a listed domain as local=/d/
    # (lookups grow as log2 of the number of domains; NXDOMAIN for the
    # domain and its subdomains; --address=/d/ is the same thing). The
    # cache (cache-size, in names; the man page warns that a huge one costs
    # speed): one and a half times the names the mix asks, so that the
    # allowed and missing names stay in it, as a school's daily names would;
    # with fewer, the cache turns over and every query goes upstream.
    # Negative answers are cached from the upstream's SOA. One process:
    # dnsmasq has no threads. DNSMASQ_BLOCK and DNSMASQ_CACHE change these
    # for the comparison in docs/bench/peers.md.
    awk -v form="${DNSMASQ_BLOCK:-local=/%s/}" '{printf form "\n", $0}' "$work/domains.txt" > "$work/dnsmasq-block.conf"
    cat > "$work/dnsmasq.conf" <<CONF
port=${port[dnsmasq]}
listen-address=127.0.0.1
bind-interfaces
no-resolv
no-hosts
server=127.0.0.1#$upstream_port
cache-size=${DNSMASQ_CACHE:-$((distinct_names * 3 / 2))}
conf-file=$work/dnsmasq-block.conf
CONF
  fi
  if [[ $available == *kresd* ]]; then
    # https://knot-resolver.readthedocs.io/en/v5.6.0/modules-policy.html :
    # the list as a response policy zone (policy.rpz, DENY: NXDOMAIN for the
    # domain, `*.d` for its subdomains), STUB to an authoritative upstream;
    # kresd.systemd(7): one kresd process per core sharing the socket and
    # the cache; the cache 128 MB (cache.size; the LMDB file under /tmp).
    awk '{print $0 " CNAME ."; print "*." $0 " CNAME ."}' "$work/domains.txt" > "$work/block.rpz"
    cat > "$work/kresd.conf" <<CONF
net.listen('127.0.0.1', ${port[kresd]}, { kind = 'dns' })
cache.open(128 * MB, 'lmdb://$work/kresd-cache')
modules.unload('ta_update')
modules.unload('detect_time_jump')
trust_anchors.remove('.')
policy.add(policy.rpz(policy.DENY, '$work/block.rpz', false))
policy.add(policy.all(policy.STUB('127.0.0.1@$upstream_port')))
CONF
  fi
  if [[ $available == *pdns-recursor* ]]; then
    # https://doc.powerdns.com/recursor/lua-config/rpz.html : the list as
    # an RPZ file (rpzFile in the lua-config-file; `d CNAME .` = NXDOMAIN);
    # https://doc.powerdns.com/recursor/performance.html : threads = cores,
    # reuseport with pdns-distributes-queries off;
    # https://doc.powerdns.com/recursor/settings.html : forward-zones-recurse,
    # the upstream taken as a resolver, as a school's is (with forward-zones
    # it is taken as authoritative, and the recursor follows the top-level
    # zones' NS records to port 53); validation off.
    mkdir -p "$work/pdns"
    {
      printf '$TTL 3600\nrpz.bench. IN SOA localhost. admin.bench. 1 3600 600 86400 3600\nrpz.bench. IN NS localhost.\n'
      awk '{print $0 ".rpz.bench. CNAME ."; print "*." $0 ".rpz.bench. CNAME ."}' "$work/domains.txt"
    } > "$work/pdns/block.rpz"
    cat > "$work/pdns/recursor.lua" <<CONF
rpzFile("$work/pdns/block.rpz", { policyName = "bench" })
CONF
    cat > "$work/pdns/recursor.conf" <<CONF
local-address=127.0.0.1
local-port=${port[pdns-recursor]}
allow-from=127.0.0.0/8
threads=$cores
reuseport=yes
pdns-distributes-queries=no
forward-zones-recurse=.=127.0.0.1:$upstream_port
dont-query=
lua-config-file=$work/pdns/recursor.lua
dnssec=off
socket-dir=$work/pdns
daemon=no
write-pid=no
disable-syslog=yes
loglevel=3
quiet=yes
security-poll-suffix=
CONF
  fi
  if [[ $available == *dnsdist* ]]; then
    # https://dnsdist.org/reference/selectors.html (SuffixMatchNodeRule: a
    # suffix tree of the listed domains, the domain and its subdomains),
    # https://dnsdist.org/guides/cache.html (a packet cache on the pool),
    # https://dnsdist.org/advanced/tuning.html (one UDP thread per addLocal:
    # one listener per core with reusePort).
    {
      echo "setSecurityPollSuffix('')"
      echo "setLocal('127.0.0.1:${port[dnsdist]}', { reusePort = true })"
      for _ in $(seq 2 "$cores"); do echo "addLocal('127.0.0.1:${port[dnsdist]}', { reusePort = true })"; done
      cat <<CONF
newServer({ address = '127.0.0.1:$upstream_port' })
getPool(''):setCache(newPacketCache(100000, { maxTTL = 86400 }))
local blocked = newSuffixMatchNode()
for name in io.lines('$work/domains.txt') do blocked:add(name) end
addAction(SuffixMatchNodeRule(blocked, true), RCodeAction(DNSRCode.NXDOMAIN))
CONF
    } > "$work/dnsdist.conf"
  fi
}

start_server() {
  local s=$1 t0 t1 n
  # The list compile is not part of start-up: it runs off the hot path, ahead of time.
  [ "$s" != lollipop ] || "$bin" --config "$work/lollipop.toml" lists compile > "$work/compile.txt"
  pids[$s]=""
  t0=$(date +%s%N)
  case $s in
    lollipop)
      LOLLIPOP_LOG=warn "$bin" --config "$work/lollipop.toml" run > "$work/lollipop.log" 2>&1 &
      pids[$s]=$! ;;
    unbound)
      unbound -d -c "$work/unbound.conf" > "$work/unbound.log" 2>&1 &
      pids[$s]=$! ;;
    dnsmasq)
      dnsmasq -k -C "$work/dnsmasq.conf" > "$work/dnsmasq.log" 2>&1 &
      pids[$s]=$! ;;
    kresd)
      for n in $(seq "$cores"); do
        mkdir -p "$work/kresd-$n"
        (cd "$work/kresd-$n" && exec kresd -n -q -c "$work/kresd.conf" "$work/kresd-$n") >> "$work/kresd.log" 2>&1 &
        pids[$s]+=" $!"
      done ;;
    pdns-recursor)
      pdns_recursor --config-dir="$work/pdns" > "$work/pdns-recursor.log" 2>&1 &
      pids[$s]=$! ;;
    dnsdist)
      dnsdist --supervised --disable-syslog -C "$work/dnsdist.conf" > "$work/dnsdist.log" 2>&1 &
      pids[$s]=$! ;;
  esac
  for n in ${pids[$s]}; do all_pids+=("$n"); done
  if ! t1=$(python3 bench/probe.py --port "${port[$s]}" --name "$probe_name" --timeout 180); then
    echo "$s did not start; its log:" >&2
    tail -20 "$work/$s.log" >&2
    return 1
  fi
  startup[$s]=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')
  rss_start[$s]=$(rss "${pids[$s]}")
  echo "$s: first blocked answer after ${startup[$s]} s, RSS ${rss_start[$s]} MB"
}

# Waits until the processes $1 use under 5% of a core over a second, for 30 s at most.
settle() {
  local before after
  for _ in $(seq 30); do
    before=$(cpu_ticks "$1"); sleep 1; after=$(cpu_ticks "$1")
    [ $(( (after - before) * 100 )) -ge $(( ticks_per_second * 5 )) ] || return 0
  done
}
# Resident memory of the processes in $1 (their sum: kresd's shared cache counts once per process).
rss() { local p; for p in $1; do cat "/proc/$p/status"; done | awk '/VmRSS/ {kb += $2} END {printf "%.1f", kb / 1024}'; }
# User plus system CPU of the processes in $1 and all their threads, in clock ticks.
# A process that has ended since (one of NSD's short-lived children) counts
# as nothing rather than stopping the run.
cpu_ticks() { local p; for p in $1; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done | awk '{t += $12 + $13} END {print t + 0}'; }
# Of which system CPU (the kernel working for the processes), in clock ticks.
system_ticks() { local p; for p in $1; do sed 's/.*) //' "/proc/$p/stat" 2>/dev/null || true; done | awk '{t += $13} END {print t + 0}'; }
ticks_per_second=$(getconf CLK_TCK)

write_configs
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The machine's own pauses, measured before any server runs: no server can
# answer a query inside one, so they bound the tail every server shows.
pauses=$(python3 bench/pauses.py --seconds 10)
echo "== the machine idle: $pauses"
echo "== start-up (load average $load_before)"
started=""
failed=""
for s in $available; do
  if start_server "$s"; then started+=" $s"; else failed+="$s did not start; "; fi
done

echo "== check: blocked, allowed and missing names answered as they should be"
measured=""
for s in $started; do
  # A server may still be loading after its first answer (each of Knot
  # Resolver's processes loads the list on its own): wait until it is idle.
  settle "${pids[$s]}"
  if python3 bench/check.py --port "${port[$s]}" --check "$work/check.txt" > "$work/check-$s.txt" 2>&1; then
    measured+=" $s"
    echo "$s: correct"
  else
    echo "$s: WRONG ANSWERS, not measured:" >&2
    cat "$work/check-$s.txt" >&2
    failed+="$s answered wrongly ($(head -3 "$work/check-$s.txt" | tr '\n' ' ')); "
  fi
done
[ -n "$measured" ] || { echo "no server answered correctly: nothing to measure" >&2; exit 1; }

echo "== warm-up: every query once"
for s in $measured; do
  timeout 90 dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -n 1 -l 60 -q 100 > "$work/warm-$s.txt" 2>&1 || true
done

results=$work/runs.tsv
: > "$results"
for shape in "${shape_list[@]}"; do
  echo "== $rounds rounds of $seconds s, servers in turn (dnsperf $shape)"
  for round in $(seq 1 "$rounds"); do
    for s in $measured $references; do
      c0=$(cpu_ticks "${pids[$s]}") k0=$(system_ticks "${pids[$s]}")
      # shellcheck disable=SC2086
      timeout $((seconds + 30)) dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -l "$seconds" $shape > "$work/run.txt" 2>&1 || true
      c1=$(cpu_ticks "${pids[$s]}") k1=$(system_ticks "${pids[$s]}")
      awk -v shape="$shape" -v s="$s" -v r="$round" -v c="$(( c1 - c0 ))" -v k="$(( k1 - k0 ))" -v hz="$ticks_per_second" '
        /Queries per second/ {qps = $4}
        /Queries lost/ {lost = $3}
        /Queries sent/ {sent = $3}
        /Average Latency/ {lat = $4}
        END {printf "%s\t%s\t%d\t%.0f\t%.2f\t%d\t%d\t%.6f\t%.2f\n", shape, s, r, qps, c / hz, lost, sent, lat, k / hz}' "$work/run.txt" | tee -a "$results"
    done
  done
done

declare -A rss_after
for s in $measured; do rss_after[$s]=$(rss "${pids[$s]}"); done

# The same check again: a cache that learnt something wrong from the mix
# (a negative answer taken for a whole domain, say) shows here.
for s in $measured; do
  if ! python3 bench/check.py --port "${port[$s]}" --check "$work/check.txt" > "$work/check-after-$s.txt" 2>&1; then
    echo "$s: WRONG ANSWERS after the runs:" >&2
    cat "$work/check-after-$s.txt" >&2
    failed+="$s answered wrongly after the runs, its figures are not comparable ($(head -3 "$work/check-after-$s.txt" | tr '\n' ' ')); "
  fi
done

latency=$work/latency.tsv
: > "$latency"
half_rates=""
for shape in "${shape_list[@]}"; do
  peak=$(awk -F'\t' -v shape="$shape" '$1 == shape && $2 == "lollipop" {print $4}' "$results" | sort -n | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print 0}')
  half=$(( ${peak%.*} / 2 ))
  [ "$half" -gt 0 ] || half=10000
  half_rates+="$half q/s ($shape); "
  echo "== latency at half of Lollipop's peak: $half queries/s for $seconds s each (dnsperf $shape)"
  # The references at the same rate in the same shape show what dnsperf and
  # this machine's loopback allow.
  for s in $measured $references; do
    # Background work left from the peak runs (Lollipop's block log catching
    # up, a cache's clean-up) is not part of steady use: wait, at most 30 s,
    # until the server is idle.
    settle "${pids[$s]}"
    # dnsperf's line per query goes to a file, not through a pipe: a filter
    # running alongside would take CPU from the server being measured.
    # shellcheck disable=SC2086
    timeout $((seconds + 30)) dnsperf -s 127.0.0.1 -p "${port[$s]}" -d "$work/queries.txt" -l "$seconds" -Q "$half" $shape -v > "$work/latency-raw.txt" 2>/dev/null || true
    awk '/^> / {print $NF}' "$work/latency-raw.txt" | sort -g > "$work/latencies.txt"
    rm -f "$work/latency-raw.txt"
    awk -v shape="$shape" -v s="$s" '{v[NR] = $1; sum += $1}
      function at(q,  i) { i = int(NR * q); if (i < 1) i = 1; return v[i] }
      END {
        if (!NR) { printf "%s\t%s\t0\t0\t0\t0\t0\t0\n", shape, s; exit }
        printf "%s\t%s\t%d\t%.6f\t%.6f\t%.6f\t%.6f\t%.6f\n", shape, s, NR, sum / NR, at(0.5), at(0.9), at(0.99), at(0.999)
      }' "$work/latencies.txt" | tee -a "$latency"
  done
done

summary=$work/servers.tsv
: > "$summary"
for s in $measured; do
  printf "%s\t%s\t%s\t%s\n" "$s" "${startup[$s]}" "${rss_start[$s]}" "${rss_after[$s]}" >> "$summary"
done

mkdir -p "$out"
model=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
versions="lollipop $("$bin" --version 2>/dev/null | awk '{print $2}')"
versions+=", $(unbound -V 2>/dev/null | awk '/^Version/ {print "unbound " $2}')"
versions+=", $(dnsmasq -v 2>/dev/null | awk 'NR == 1 {print "dnsmasq " $3}')"
versions+=", $(kresd --version 2>/dev/null | awk '{print "kresd " $NF}')"
versions+=", $(pdns_recursor --version 2>&1 | awk '/PowerDNS Recursor/ {for (i = 1; i <= NF; i++) if ($i == "Recursor") {print "pdns-recursor " $(i + 1); exit}}')"
versions+=", $(dnsdist --version 2>/dev/null | awk 'NR == 1 {print "dnsdist " $2}')"
versions+=", $(nsd -v 2>&1 | awk 'NR == 1 {print "nsd " $3}')"
versions+=", $(dnsperf -h 2>&1 | awk '/^Version/ {print "dnsperf " $2}')"
compile=""
[ ! -f "$work/compile.txt" ] || compile=$(tr '\n' ' ' < "$work/compile.txt")
python3 bench/report.py --runs "$results" --latency "$latency" --servers "$summary" --out "$out" \
  --note "$(date -u +%Y-%m-%dT%H:%MZ); $cores × $model; load average before $load_before, after $load_after; list $(basename "$list") ($domains domains); upstream NSD; $rounds rounds of $seconds s per shape; dnsperf on the same cores; half-peak rates $half_rates$versions; the machine idle before the runs: $pauses" \
  --failed "$failed" --command "$command_line" --compile "$compile"
cp "$results" "$out/runs.tsv"
cp "$latency" "$out/latency.tsv"
cp "$summary" "$out/servers.tsv"
echo "== written: $out/results.md, $out/qps.svg"
