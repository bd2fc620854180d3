#!/usr/bin/env bash
# Lollipop's configuration for the benches (compare.sh, memory.sh), as
# shipped: only what a bench must set (where it listens, its upstream, the
# list, its data directory), the status page off (no browser here), and
# the per-client limits off because dnsperf asks from one address far
# faster than any school device. Name rules, time rules, DNSSEC, the
# response cache and the block log stay at their defaults.
#
#   bench/lollipop-config.sh WORK PORT UPSTREAM_PORT > WORK/lollipop.toml
#
# WORK is a bench working directory with domains.txt (bench/make-queries.py).
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: bench/lollipop-config.sh WORK PORT UPSTREAM_PORT" >&2; exit 2; }
work=$1 port=$2 upstream_port=$3
cat <<TOML
[server]
data_dir = "$work/lollipop"
default_profile = "school"
[[listen]]
address = "127.0.0.1:$port"
[[upstream]]
address = "127.0.0.1:$upstream_port"
protocol = "udp"
[limits]
per_address_qps = 0
per_network_qps = 0
[web]
enabled = false
[[lists]]
name = "bench"
path = "$work/domains.txt"
category = "pornography"
[profiles.school]
mode = "blocklist"
block_categories = ["pornography"]
TOML
