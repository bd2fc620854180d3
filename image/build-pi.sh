#!/bin/sh
# Builds the Raspberry Pi image (arm64; Pi 3, 4, 400, Zero 2 W) from Debian
# bookworm's packages and Lollipop's arm64 .deb: image/out/lollipop-pi-arm64.img.xz
# and its .sha256. Needs root, the Debian mirror and the tools in
# image/README.md; about 20 minutes on two cores, most of it emulating arm64.
#
#   sudo image/build-pi.sh
#
# BASE=reuse keeps the last base root (only Lollipop and the first-boot
# files are put in again); BUILD_DEB=1 rebuilds the package first.
set -u
. "$(dirname "$0")/lib/build.sh"
WORK=${WORK:-$OUT/work-pi}
need_tools mmdebstrap mkfs.vfat mcopy mkfs.ext4 sfdisk xz
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || [ "$(dpkg --print-architecture)" = arm64 ] ||
    die "arm64 programs cannot run here: install qemu-user-static and register it (see image/README.md)"

make_base arm64 pi "systemd-sysv,udev,kmod,dbus,systemd-timesyncd,openssh-server,unattended-upgrades,\
cloud-guest-utils,fdisk,e2fsprogs,dosfstools,openssl,ca-certificates,iproute2,iputils-ping,bind9-dnsutils,\
nano,less,procps,adduser,python3,initramfs-tools,linux-image-arm64,raspi-firmware"
find_deb arm64 aarch64-unknown-linux-gnu
stage "Lollipop into the root"
"$here/lib/install-appliance.sh" "$WORK/root" pi "$deb" || die "installing Lollipop failed"
stage_done
mkdir -p "$OUT"
assemble "$OUT/lollipop-pi-arm64.img" /boot/firmware RASPIFIRM RASPIROOT dos
compress "$OUT/lollipop-pi-arm64.img"
finish "$OUT/lollipop-pi-arm64.img"
