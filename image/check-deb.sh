#!/bin/sh
# Installs the .deb into a fresh Debian bookworm root of its architecture and
# checks what it put there. An arm64 package on an amd64 machine runs under
# qemu-user-static with binfmt_misc, and takes a few minutes more. Needs root (chroot, unshare), mmdebstrap and the Debian mirror;
# takes about a minute, so it is not part of `cargo test`.
#
#   image/check-deb.sh [PACKAGE.deb] [ROOT]
#
# PACKAGE defaults to the newest amd64 .deb cargo deb left in the target dir;
# ROOT to a new temporary directory, removed afterwards unless KEEP_ROOT=1.
set -u

# The service as its unit starts it, short of systemd: as lollipop with
# CAP_NET_BIND_SERVICE alone, on 0.0.0.0:53 in a network namespace of its own
# (the build machine's port 53 is left alone, and no upstream is reachable), so
# the query is for a sample-listed name, answered 0.0.0.0 without an upstream.
serve() {
    ip link set lo up || return 1
    chroot "$root" setpriv --reuid=lollipop --regid=lollipop --init-groups \
        --inh-caps=-all,+net_bind_service --ambient-caps=-all,+net_bind_service \
        --bounding-set=-all,+net_bind_service \
        env NO_COLOR=1 lollipop --config /etc/lollipop/lollipop.toml run &
    server=$!
    # pornhub.com A, recursion desired.
    query='\022\064\001\000\000\001\000\000\000\000\000\000\007pornhub\003com\000\000\001\000\001'
    answer=
    tries=0
    while [ -z "$answer" ] && [ "$tries" -lt $((20 * ${SLOW:-1})) ] && kill -0 "$server" 2>/dev/null; do
        sleep 0.5
        tries=$((tries + 1))
        answer=$(bash -c "exec 3<>/dev/udp/127.0.0.1/53 && printf '$query' >&3 && timeout 1 dd bs=512 count=1 status=none <&3" \
            2>/dev/null | od -An -v -tx1 | tr -s ' \n' ' ')
    done
    kill "$server" 2>/dev/null
    wait "$server"
    echo "answer:$answer"
    # Same id, NOERROR, one answer, and 0.0.0.0 as its address.
    case "$answer" in
        " 12 34 8"?" "?"0 00 01 00 01 "*" 00 04 00 00 00 00 ") return 0 ;;
        *) return 1 ;;
    esac
}
if [ "${1:-}" = --serve ]; then
    root=$2
    serve
    exit
fi

LIMIT=${CHECK_DEB_TIMEOUT:-900}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
here=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$here/target}

deb=${1:-$(ls -t "$target"/debian/lollipop_*_amd64.deb 2>/dev/null | head -n 1)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then
    echo "FAIL: no amd64 .deb (run cargo deb first, or name one)"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "FAIL: needs root for chroot"
    exit 1
fi
for tool in mmdebstrap dpkg-deb unshare timeout; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing"; exit 1; }
done

if [ -n "${2:-}" ]; then
    root=$2
    mkdir -p "$root"
else
    root=$(mktemp -d /tmp/lollipop-root.XXXXXX)
fi
cleanup() {
    if [ "${KEEP_ROOT:-0}" != 1 ]; then rm -rf "$root"; fi
}
trap cleanup EXIT

failures=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# One check: PASS, or FAIL with what the command printed (always printed
# with SHOW=1).
check() {
    what=$1
    shift
    if "$@" >"$root.log" 2>&1; then
        pass "$what"
        if [ "${SHOW:-0}" = 1 ]; then sed 's/^/    /' "$root.log"; fi
    else
        fail "$what"
        sed 's/^/    /' "$root.log"
    fi
    SHOW=0
}

started=$(date +%s)
arch=$(dpkg-deb -f "$deb" Architecture)
# Emulated, every step is several times slower.
slow=1
if [ "$arch" != "$(dpkg --print-architecture)" ]; then slow=5; fi
echo "package: $deb"
echo "root:    $root"

# The package's dependencies beyond libc (adduser; procps for the unit's
# /bin/kill), so dpkg -i finds them, and systemd for systemd-analyze.
if timeout "$LIMIT" mmdebstrap --quiet --variant=minbase --architectures="$arch" \
    --include=adduser,procps,systemd bookworm "$root" "$MIRROR" >"$root.log" 2>&1; then
    pass "bookworm minbase $arch root ($(($(date +%s) - started)) s)"
else
    fail "bookworm minbase $arch root"
    tail -n 20 "$root.log"
    exit 1
fi

cp "$deb" "$root/tmp/lollipop.deb"
check "dpkg -i" timeout $((120 * slow)) chroot "$root" dpkg -i /tmp/lollipop.deb
check "dpkg reports it installed" sh -c \
    "chroot '$root' dpkg-query -W -f='\${Status}' lollipop | grep -qx 'install ok installed'"

check "binary /usr/bin/lollipop" test -x "$root/usr/bin/lollipop"
check "config /etc/lollipop/lollipop.toml" test -f "$root/etc/lollipop/lollipop.toml"
check "config is a conffile" sh -c \
    "grep -qx '/etc/lollipop/lollipop.toml' '$root/var/lib/dpkg/info/lollipop.conffiles'"
for list in bypass.txt under5-allow.txt catalogue.toml services.toml sample/child-safe.txt services/youtube.txt; do
    check "list /usr/share/lollipop/lists/$list" test -s "$root/usr/share/lollipop/lists/$list"
done
unit=$(ls "$root"/lib/systemd/system/lollipop.service "$root"/usr/lib/systemd/system/lollipop.service 2>/dev/null | head -n 1)
check "unit installed" test -n "$unit"
check "unit enabled (multi-user.target.wants)" \
    test -L "$root/etc/systemd/system/multi-user.target.wants/lollipop.service"
check "system user lollipop" sh -c \
    "chroot '$root' getent passwd lollipop | grep -q ':/var/lib/lollipop:'"
check "group lollipop" chroot "$root" getent group lollipop
check "state dir owned by lollipop" sh -c \
    "[ \"\$(chroot '$root' stat -c %U /var/lib/lollipop)\" = lollipop ]"

# Verified inside the root, where /usr/bin/lollipop and the unit's other
# paths exist as on the appliance. Warnings count as failures.
check "systemd-analyze verify" sh -c \
    "out=\$(timeout $((60 * slow)) chroot '$root' systemd-analyze verify lollipop.service 2>&1); status=\$?; echo \"\$out\"; [ \$status = 0 ] && [ -z \"\$out\" ]"
# systemd's exposure score, 0 (locked down) to 10; 2.1 when this was written.
check "systemd-analyze security: exposure at most 3.0" timeout $((60 * slow)) chroot "$root" \
    systemd-analyze security --offline=true --threshold=30 --no-pager lollipop.service
SHOW=1 check "lollipop config check" timeout $((60 * slow)) chroot "$root" \
    lollipop --config /etc/lollipop/lollipop.toml config check
SHOW=1 check "lists compile as the lollipop user" timeout $((120 * slow)) chroot --userspec=lollipop:lollipop "$root" \
    env HOME=/var/lib/lollipop NO_COLOR=1 lollipop --config /etc/lollipop/lollipop.toml lists compile
check "serves DNS on 0.0.0.0:53 as lollipop, blocking a listed name" \
    timeout $((60 * slow)) env SLOW="$slow" unshare --net "$0" --serve "$root"
check "dpkg -r keeps the conffile" sh -c \
    "timeout $((120 * slow)) chroot '$root' dpkg -r lollipop && test -f '$root/etc/lollipop/lollipop.toml' && test ! -e '$root/usr/bin/lollipop'"

rm -f "$root.log"
echo "time: $(($(date +%s) - started)) s"
if [ "$failures" = 0 ]; then
    echo "PASS: all checks"
else
    echo "FAIL: $failures check(s)"
    exit 1
fi
