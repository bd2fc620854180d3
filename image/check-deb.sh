#!/bin/sh
# Installs the amd64 .deb into a fresh Debian bookworm root and checks what it
# put there. Needs root (chroot), mmdebstrap and the Debian mirror; takes a few
# minutes, so it is not part of `cargo test`.
#
#   image/check-deb.sh [PACKAGE.deb] [ROOT]
#
# PACKAGE defaults to the newest amd64 .deb cargo deb left in the target dir;
# ROOT to a new temporary directory, removed afterwards unless KEEP_ROOT=1.
set -u

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
for tool in mmdebstrap systemd-analyze timeout; do
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
echo "package: $deb"
echo "root:    $root"

# The package's dependencies beyond libc (adduser; procps for the unit's
# /bin/kill), so dpkg -i finds them, and systemd for systemd-analyze.
if timeout "$LIMIT" mmdebstrap --quiet --variant=minbase --include=adduser,procps,systemd \
    bookworm "$root" "$MIRROR" >"$root.log" 2>&1; then
    pass "bookworm minbase root ($(($(date +%s) - started)) s)"
else
    fail "bookworm minbase root"
    tail -n 20 "$root.log"
    exit 1
fi

cp "$deb" "$root/tmp/lollipop.deb"
check "dpkg -i" timeout 120 chroot "$root" dpkg -i /tmp/lollipop.deb
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
    "out=\$(timeout 60 chroot '$root' systemd-analyze verify lollipop.service 2>&1); status=\$?; echo \"\$out\"; [ \$status = 0 ] && [ -z \"\$out\" ]"
SHOW=1 check "lollipop config check" timeout 60 chroot "$root" \
    lollipop --config /etc/lollipop/lollipop.toml config check
SHOW=1 check "lists compile as the lollipop user" timeout 120 chroot --userspec=lollipop:lollipop "$root" \
    env HOME=/var/lib/lollipop NO_COLOR=1 lollipop --config /etc/lollipop/lollipop.toml lists compile
check "dpkg -r keeps the conffile" sh -c \
    "timeout 120 chroot '$root' dpkg -r lollipop && test -f '$root/etc/lollipop/lollipop.toml' && test ! -e '$root/usr/bin/lollipop'"

rm -f "$root.log"
echo "time: $(($(date +%s) - started)) s"
if [ "$failures" = 0 ]; then
    echo "PASS: all checks"
else
    echo "FAIL: $failures check(s)"
    exit 1
fi
