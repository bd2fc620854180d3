#!/usr/bin/env bash
# Cold-cache recursion, Lollipop (release build) beside Debian's Unbound in
# one run, through a local signed hierarchy served by NSD on loopback
# (127.0.60.91 root, .92 the `bench.` TLD, .93 four leaf zones), both given
# the same root hints, trust anchor (DNSSEC validated) and 16 MiB of cache.
#
#   bench/recursion.sh [--names N] [--outstanding Q] [--bin LOLLIPOP]
#
# Per server: a warm-up over other names (delegations and DNSKEYs cached,
# answers not), then N new names one at a time (median and p99 time to a
# full answer, from dnsperf -v), then N more new names with Q outstanding
# (queries/s). Every name is asked once: the answer cache is always cold.
# "upstream/name" estimates the queries each server sent to NSD per name in
# the one-at-a-time pass, from the UDP datagrams received on this machine
# (/proc/net/snmp; other UDP traffic on the machine inflates it slightly).
# --bin: time that Lollipop binary instead of building the release one.
# Defaults: N = 2000 (spread over the four zones), Q = 50. Bounded: each
# dnsperf run stops after 60 s (one at a time, dnsperf itself sends only
# ~30 a second, so the first pass times the ~1,800 names it reaches); the
# whole run takes about 3 minutes.
# Needs root (NSD binds :53 on 127.0.60.x, since hickory's recursor only
# asks port 53), nsd, unbound, ldnsutils, dnsperf, python3.
set -euo pipefail
cd "$(dirname "$0")/.."

names=2000 outstanding=50 bin=""
while [ $# -gt 0 ]; do
  case $1 in
    --names) names=$2; shift 2 ;;
    --outstanding) outstanding=$2; shift 2 ;;
    --bin) bin=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ "$names" -le 20000 ] || { echo "at most 20000 names, to keep the run bounded" >&2; exit 2; }
for tool in nsd unbound ldns-signzone ldns-keygen dnsperf python3; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] ||
    { echo "$tool is missing: apt-get install -y nsd unbound ldnsutils dnsperf python3" >&2; exit 1; }
done

if [ -z "$bin" ]; then
  cargo build --release --quiet --bin lollipop
  bin=$(pwd)/target/release/lollipop
fi

net=127.0.60
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  sleep 0.5
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -n "${KEEP:-}" ]; then echo "kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
cd "$work"

zones="z1 z2 z3 z4"
per_zone=$(( (names * 2 + 200) / 4 + 1 ))
soa() { echo "$1 3600 IN SOA ns.$1 hostmaster.$1 1 3600 900 604800 300"; }
keys() { # zone -> "KSK ZSK" base names
  local ksk zsk
  ksk=$(ldns-keygen -a ECDSAP256SHA256 -k "$1")
  zsk=$(ldns-keygen -a ECDSAP256SHA256 "$1")
  echo "$ksk $zsk"
}
sign() { # zone file -> file.signed
  local zone=$1 file=$2
  read -r ksk zsk < <(keys "$zone")
  ldns-signzone -o "$zone" "$file" "$ksk" "$zsk"
  cat "$ksk.ds" >> "$work/ds.$zone"
}

# Leaves: h0..hN in each zone, signed (NSEC).
tld_extra=""
for z in $zones; do
  {
    soa "$z.bench."
    echo "$z.bench. 3600 IN NS ns.$z.bench."
    echo "ns.$z.bench. 3600 IN A $net.93"
    awk -v n="$per_zone" -v z="$z" 'BEGIN { for (i = 0; i < n; i++) printf "h%d.%s.bench. 300 IN A 192.0.2.%d\n", i, z, i % 250 + 1 }'
  } > "$z.zone"
  sign "$z.bench." "$z.zone" > /dev/null
  tld_extra+="$z.bench. 3600 IN NS ns.$z.bench.
ns.$z.bench. 3600 IN A $net.93
$(cat "ds.$z.bench.")
"
done
{
  soa "bench."
  echo "bench. 3600 IN NS ns.bench."
  echo "ns.bench. 3600 IN A $net.92"
  echo "$tld_extra"
} > bench.zone
sign "bench." bench.zone > /dev/null
{
  echo ". 3600 IN SOA ns.root. hostmaster.root. 1 3600 900 604800 300"
  echo ". 3600 IN NS ns.root."
  echo "ns.root. 3600 IN A $net.91"
  echo "bench. 3600 IN NS ns.bench."
  echo "ns.bench. 3600 IN A $net.92"
  cat ds.bench.
} > root.zone
read -r root_ksk root_zsk < <(keys ".")
ldns-signzone -o . root.zone "$root_ksk" "$root_zsk"
cp "$root_ksk.key" root.key
printf '. 3600000 NS ns.root.\nns.root. 3600000 A %s.91\n' "$net" > root.hints

nsd_at() { # ip zone file...
  local ip=$1; shift
  mkdir -p "nsd-$ip"
  {
    printf 'server:\n  ip-address: %s\n  port: 53\n  server-count: 1\n  username: ""\n  chroot: ""\n' "$ip"
    printf '  database: ""\n  zonelistfile: "%s/zone.list"\n  xfrdfile: "%s/xfrd.state"\n' "$work/nsd-$ip" "$work/nsd-$ip"
    printf '  xfrdir: "%s"\n  pidfile: "%s/nsd.pid"\n  logfile: "%s/nsd.log"\n  do-ip6: no\n  verbosity: 0\n' \
      "$work/nsd-$ip" "$work/nsd-$ip" "$work/nsd-$ip"
    printf 'remote-control:\n  control-enable: no\n'
    while [ $# -gt 0 ]; do printf 'zone:\n  name: "%s"\n  zonefile: "%s"\n' "$1" "$work/$2"; shift 2; done
  } > "nsd-$ip/nsd.conf"
  /usr/sbin/nsd -d -c "nsd-$ip/nsd.conf" > /dev/null 2>&1 &
  pids+=($!)
}
nsd_at "$net.91" . root.zone.signed
nsd_at "$net.92" bench. bench.zone.signed
leaf_args=()
for z in $zones; do leaf_args+=("$z.bench." "$z.zone.signed"); done
nsd_at "$net.93" "${leaf_args[@]}"
for ip in 91 92 93; do
  for _ in $(seq 100); do dig +short +time=1 +tries=1 @"$net.$ip" . SOA > /dev/null 2>&1 && break; sleep 0.05; done
done

# Name sets, disjoint: warm-up (50 a zone), one-at-a-time, concurrent.
awk -v n="$per_zone" -v total="$names" -v zones="$zones" 'BEGIN {
  split(zones, z, " ")
  for (i = 0; i < 50; i++) for (k = 1; k <= 4; k++) printf "h%d.%s.bench A\n", i, z[k] > "warm.txt"
  for (j = 0; j < total; j++) printf "h%d.%s.bench A\n", 50 + int(j / 4), z[j % 4 + 1] > "serial.txt"
  for (j = 0; j < total; j++) printf "h%d.%s.bench A\n", 50 + int(total / 4) + 1 + int(j / 4), z[j % 4 + 1] > "parallel.txt"
}'

lollipop_port=53561 unbound_port=53562
cat > lollipop.toml <<TOML
[server]
data_dir = "$work/lollipop-data"
default_profile = "ks2"
[[listen]]
address = "127.0.0.1:$lollipop_port"
[resolver]
mode = "recursive"
root_hints = "$work/root.hints"
trust_anchor = "$work/root.key"
allow_servers = ["$net.0/24"]
cache_mb = 16
share_exempt_networks = ["127.0.0.0/8"]
max_in_flight = 1024
[limits]
per_address_qps = 0
per_network_qps = 0
[[lists]]
name = "bench"
path = "$work/blocked.txt"
category = "malware"
[profiles.ks2]
mode = "blocklist"
block_categories = ["malware"]
TOML
echo "blocked.example" > blocked.txt
cat > unbound.conf <<CONF
server:
  interface: 127.0.0.1
  port: $unbound_port
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: "$work/unbound.pid"
  use-syslog: no
  logfile: "$work/unbound.log"
  verbosity: 0
  do-ip6: no
  num-threads: 2
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  root-hints: "$work/root.hints"
  trust-anchor-file: "$work/root.key"
  module-config: "validator iterator"
  qname-minimisation: yes
  msg-cache-size: 8m
  rrset-cache-size: 8m
  local-zone: "bench." nodefault
remote-control:
  control-enable: no
CONF

"$bin" --config lollipop.toml lists compile > /dev/null
# The default log filter, as installed (it hides the recursor's per-probe warnings).
"$bin" --config lollipop.toml run > lollipop.log 2>&1 &
pids+=($!)
/usr/sbin/unbound -d -c unbound.conf > /dev/null 2>&1 &
pids+=($!)
for port in $lollipop_port $unbound_port; do
  for _ in $(seq 200); do dig +short +time=1 +tries=1 @127.0.0.1 -p "$port" localhost A > /dev/null 2>&1 && break; sleep 0.05; done
done

measure() { # name port
  local name=$1 port=$2
  dnsperf -s 127.0.0.1 -p "$port" -d warm.txt -n 1 -l 60 -q 10 > "$name-warm.txt" 2>&1 || true
  local before after
  before=$(awk '/^Udp: [0-9]/ {print $2}' /proc/net/snmp)
  dnsperf -s 127.0.0.1 -p "$port" -d serial.txt -n 1 -l 60 -q 1 -v > "$name-serial.txt" 2>&1 || true
  after=$(awk '/^Udp: [0-9]/ {print $2}' /proc/net/snmp)
  # Each exchange is two datagrams received: the client's and NSD's.
  echo $(( after - before )) > "$name-datagrams.txt"
  dnsperf -s 127.0.0.1 -p "$port" -d parallel.txt -n 1 -l 60 -q "$outstanding" > "$name-parallel.txt" 2>&1 || true
}
measure lollipop $lollipop_port
measure unbound $unbound_port

python3 - "$names" "$outstanding" <<'PY'
import re, statistics, sys
names, outstanding = sys.argv[1], sys.argv[2]
print(f"cold-cache recursion, {names} new names each way, DNSSEC validated, 16 MiB cache each")
print(f"{'server':10} {'ok/asked':>10} {'median ms':>10} {'p99 ms':>8} {'upstream/name':>14} {'q/s (' + outstanding + ' outstanding)':>26} {'answered':>9}")
for server in ("lollipop", "unbound"):
    serial = open(f"{server}-serial.txt").read()
    # dnsperf -v: "> NOERROR h50.z1.bench A 0.001234"
    rows = re.findall(r"^> (\S+) \S+ \S+ ([0-9.]+)$", serial, re.M)
    asked = len(rows)
    times = sorted(float(t) * 1000 for code, t in rows if code == "NOERROR")
    ok = len(times)
    median = statistics.median(times) if times else float("nan")
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))] if times else float("nan")
    parallel = open(f"{server}-parallel.txt").read()
    qps = re.search(r"Queries per second:\s+([0-9.]+)", parallel)
    noerror = re.search(r"NOERROR (\d+)", parallel)
    datagrams = int(open(f"{server}-datagrams.txt").read())
    upstream = (datagrams / max(asked, 1) - 2) / 2
    print(f"{server:10} {f'{ok}/{asked}':>10} {median:>10.2f} {p99:>8.2f} {upstream:>14.1f} {float(qps.group(1)) if qps else float('nan'):>26.0f} {noerror.group(1) if noerror else '?':>9}")
PY
