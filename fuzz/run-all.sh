#!/bin/sh
# Runs every fuzz target in turn for SECONDS each (default 300), one
# process at a time, growing fuzz/corpus-grown/<target> from the seeds in
# fuzz/corpus/<target>. A crash stops that target and the next one starts;
# its input is in fuzz/artifacts/<target>/. Logs go to fuzz/logs/.
set -u
cd "$(dirname "$0")"
SECONDS_EACH=${1:-300}
TARGETS=${TARGETS:-"udp_fast_path request_to_response list_domains list_hosts list_adblock list_rpz list_dnsmasq config_loader web_forms"}
mkdir -p logs
# cargo-fuzz needs nightly flags: a nightly toolchain if there is one,
# otherwise the stable compiler with RUSTC_BOOTSTRAP.
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz() { cargo +nightly fuzz "$@"; }
else
    fuzz() { RUSTC_BOOTSTRAP=1 cargo fuzz "$@"; }
fi
for target in $TARGETS; do
    mkdir -p "corpus-grown/$target"
    fuzz run --sanitizer none "$target" \
        "corpus-grown/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -print_final_stats=1 \
        -timeout=10 -rss_limit_mb=2048 >"logs/$target.log" 2>&1
    echo "$target: exit $? $(grep -E '^stat::number_of_executed_units|^stat::average_exec_per_sec' "logs/$target.log" | tr '\n' ' ')"
done
