#!/usr/bin/env bash
# The bench's upstream: NSD, an authoritative server compiled in C, serving
# the allowed names of a bench working directory (bench/make-queries.py's
# allowed.txt, canaries.txt and probe.txt) and NXDOMAIN with an SOA for the
# rest. Writes the zones and nsd.conf under WORK/nsd, then becomes NSD in
# the foreground (so `$!` of `bench/nsd-upstream.sh ... &` is NSD itself).
#
#   bench/nsd-upstream.sh WORK PORT
#
# A zone per top-level domain, as on the Internet: each with an SOA (its
# minimum, 3600 s, is the negative TTL every cache uses for NXDOMAIN) and
# the names under it: the allowed names at 198.51.x.y, the canaries (listed
# names the check asks) and the probe name at 192.0.2.1, so that only a
# block answers those with NXDOMAIN or 0.0.0.0. The root zone answers
# NXDOMAIN for the other top-level domains; a resolver may take that for
# the whole domain (PowerDNS Recursor's root-nx-trust), as it may from the
# real root.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: bench/nsd-upstream.sh WORK PORT" >&2; exit 2; }
work=$1 upstream_port=$2
export PATH="$PATH:/usr/sbin"
command -v nsd >/dev/null || { echo "nsd is missing: apt-get install -y nsd" >&2; exit 1; }

mkdir -p "$work/nsd/zones"
{
  awk '{printf "%s 198.51.%d.%d\n", $1, int(NR / 250) % 250, NR % 250 + 1}' "$work/allowed.txt"
  awk '{printf "%s 192.0.2.1\n", $1}' "$work/canaries.txt" "$work/probe.txt" | sort -u
} | awk -v dir="$work/nsd/zones" '
  function header(zone, file) {
    printf "$TTL 3600\n%s IN SOA ns.bench. admin.bench. 1 3600 600 86400 3600\n%s IN NS ns.bench.\n", zone, zone > file
  }
  {
    n = split($1, label, ".")
    zone = label[n] "."
    file = dir "/" label[n] ".zone"
    if (!(zone in seen)) { seen[zone] = 1; header(zone, file) }
    printf "%s. IN A %s\n", $1, $2 > file
  }
  END {
    header(".", dir "/root.zone")
    printf "ns.bench. IN A 127.0.0.1\n" > (dir "/root.zone")
  }'
cat > "$work/nsd/nsd.conf" <<CONF
server:
  ip-address: 127.0.0.1
  port: $upstream_port
  server-count: 1
  username: ""
  chroot: ""
  database: ""
  zonelistfile: "$work/nsd/zone.list"
  xfrdfile: "$work/nsd/xfrd.state"
  xfrdir: "$work/nsd"
  pidfile: "$work/nsd/nsd.pid"
  logfile: "$work/nsd/nsd.log"
  verbosity: 0
  hide-version: yes
  # NSD limits answers to one client network to 200 a second by default
  # (response rate limiting, against reflection attacks): every resolver
  # here asks from 127.0.0.1, so that limit would drop their cache misses.
  rrl-ratelimit: 0
  rrl-whitelist-ratelimit: 0
remote-control:
  control-enable: no
CONF
for zone_file in "$work"/nsd/zones/*.zone; do
  zone=$(basename "$zone_file" .zone)
  [ "$zone" != root ] || zone=""
  printf 'zone:\n  name: "%s."\n  zonefile: "%s"\n' "$zone" "$zone_file" >> "$work/nsd/nsd.conf"
done
exec nsd -d -c "$work/nsd/nsd.conf" > "$work/nsd/stdout.log" 2>&1
