#!/bin/sh
# The technician's path, followed literally: a fresh Debian 12 root
# (mmdebstrap minbase, as a new container would be), this checkout cloned
# into it, then each step of README.md and image/README.md run in it in order
# as root, stopping at the first that fails. Every command run in the root is
# quoted from those READMEs (the script checks, before anything runs, that
# each line is there word for word), so a step the READMEs lack, or one that
# does not work as written, fails here. Prints each step's time and a summary.
#
#   sudo image/from-the-top.sh [x86|pi]
#
# x86 (the default) builds the PC image, checks its files and boots it under
# QEMU twice (the good and the broken setup file); pi does the same for the
# Raspberry Pi image (about 50 minutes here: arm64 is emulated). FRESH=DIR is the root
# (/var/tmp/lollipop-fresh-KIND, made anew each run; KEEP=1 leaves it).
# Needs root, mmdebstrap, the Debian mirror and crates.io. Not part of
# cargo test.
set -u
kind=${1:-x86}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
fresh=${FRESH:-/var/tmp/lollipop-fresh-$kind}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (mmdebstrap, chroot, QEMU)" >&2; exit 1; }
command -v mmdebstrap >/dev/null || { echo "FAIL: apt install mmdebstrap" >&2; exit 1; }

# The steps: "FILE|COMMAND", run in the root's checkout (/root/lollipop).
case "$kind" in
x86)
    steps='README.md|apt update
README.md|apt install rustc-web cargo-web
README.md|cargo --version
image/README.md|apt install mmdebstrap dosfstools mtools fdisk e2fsprogs xz-utils jq file
image/README.md|cargo install cargo-deb --locked
image/README.md|image/build-x86.sh
image/README.md|image/check-image.sh image/out/lollipop-x86_64.img
image/README.md|apt install qemu-system-x86 ovmf bind9-dnsutils curl dnsmasq-base openssl python3
image/README.md|image/check-image.sh image/out/lollipop-x86_64.img --boot
image/README.md|BOOT_SETUP=broken image/check-image.sh image/out/lollipop-x86_64.img --boot'
    ;;
pi)
    steps='README.md|apt update
README.md|apt install rustc-web cargo-web
README.md|cargo --version
image/README.md|apt install mmdebstrap dosfstools mtools fdisk e2fsprogs xz-utils jq file
image/README.md|cargo install cargo-deb --locked
image/README.md|apt install qemu-user-static binfmt-support gcc-aarch64-linux-gnu libc6-dev-arm64-cross
image/README.md|dpkg --add-architecture arm64 && apt update && apt install libstd-rust-web-dev:arm64
image/README.md|mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
image/README.md|[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
image/README.md|image/build-pi.sh
image/README.md|image/check-image.sh image/out/lollipop-pi-arm64.img
image/README.md|apt install qemu-system-arm bind9-dnsutils curl dnsmasq-base openssl python3
image/README.md|image/check-image.sh image/out/lollipop-pi-arm64.img --boot
image/README.md|BOOT_SETUP=broken image/check-image.sh image/out/lollipop-pi-arm64.img --boot'
    ;;
*) echo "usage: image/from-the-top.sh [x86|pi]" >&2; exit 2 ;;
esac

# Every step is in its README, word for word (as a line of a code block).
missing=0
echo "$steps" | while IFS='|' read -r file command; do
    sed 's/^ *//; s/ *#.*$//' "$repo/$file" | grep -Fqx -- "$command" ||
        { echo "FAIL: $file has no line '$command'"; exit 1; }
done || missing=1
[ "$missing" = 0 ] || exit 1

started=$(date +%s)
summary=$(mktemp)
mounted=
cleanup() {
    [ -n "$mounted" ] && umount -R -l "$fresh/proc" "$fresh/sys" "$fresh/dev" 2>/dev/null
    [ "${KEEP:-0}" = 1 ] || rm -rf "$fresh"
    rm -f "$summary"
}
trap cleanup EXIT
step_line() {
    printf '%-8s %6s s  %s\n' "$1" "$2" "$3" | tee -a "$summary"
}

echo "== a fresh Debian 12 root in $fresh"
step_started=$(date +%s)
rm -rf "$fresh"
# A minimal Debian 12 with the standard sources (main, updates, security),
# as a new container has; git stands in for however the source is fetched.
mmdebstrap --variant=minbase --include=ca-certificates,git bookworm "$fresh" \
    "deb $MIRROR bookworm main" "deb $MIRROR bookworm-updates main" "deb $SECURITY bookworm-security main" \
    >/tmp/lollipop-fresh-mmdebstrap.log 2>&1 ||
    { tail -n 20 /tmp/lollipop-fresh-mmdebstrap.log; echo "FAIL: mmdebstrap bookworm"; exit 1; }
mount -t proc proc "$fresh/proc" && mount --rbind /sys "$fresh/sys" && mount --rbind /dev "$fresh/dev" &&
    mounted=1 || { echo "FAIL: mounting /proc, /sys and /dev in the root"; exit 1; }
# A network that inspects TLS (this one's egress proxy; many LA networks)
# needs its certificate authority in the root, as the README says: the
# host's own CAs are copied in.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cp /usr/local/share/ca-certificates/*.crt "$fresh/usr/local/share/ca-certificates/" &&
        chroot "$fresh" update-ca-certificates >/dev/null 2>&1 ||
        { echo "FAIL: adding the host's certificate authorities to the root"; exit 1; }
    echo "note: this machine's own certificate authorities were added to the root ($(ls /usr/local/share/ca-certificates/*.crt | xargs -n1 basename | tr '\n' ' '))"
fi
# The technician answers apt's "Do you want to continue?" with yes.
echo 'APT::Get::Assume-Yes "true";' >"$fresh/etc/apt/apt.conf.d/90from-the-top"
git clone -q "$repo" "$fresh/root/lollipop" || { echo "FAIL: git clone of $repo"; exit 1; }
git -C "$repo" diff --quiet HEAD 2>/dev/null ||
    echo "note: uncommitted changes in $repo are not in the clone (it has HEAD, $(git -C "$repo" rev-parse --short HEAD))"
step_line PASS $(($(date +%s) - step_started)) "fresh bookworm root and the source ($(git -C "$repo" rev-parse --short HEAD))"

failed=
steps_file=$(mktemp)
echo "$steps" >"$steps_file"
while IFS='|' read -r file command; do
    echo "== [$file] $command"
    step_started=$(date +%s)
    rm -f "$fresh/root/step.status"
    chroot "$fresh" env -i HOME=/root TERM=dumb LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        sh -c "cd /root/lollipop || exit 1; $command
echo \$? >/root/step.status" </dev/null 2>&1 | tee "$fresh/root/step.log"
    took=$(($(date +%s) - step_started))
    if [ "$(cat "$fresh/root/step.status" 2>/dev/null)" != 0 ]; then
        step_line FAIL "$took" "[$file] $command"
        failed=1
        break
    fi
    step_line PASS "$took" "[$file] $command"
done <"$steps_file"
rm -f "$steps_file"

total=$(($(date +%s) - started))
echo
echo "== summary ($kind, $(date -u +%Y-%m-%d), $(nproc) cores)"
cat "$summary"
echo "total: $((total / 60)) min $((total % 60)) s"
[ -z "$failed" ]
