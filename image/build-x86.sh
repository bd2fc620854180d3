#!/bin/sh
# Builds the x86_64 image for a small PC (UEFI boot with systemd-boot) from
# Debian bookworm's packages and Lollipop's amd64 .deb:
# image/out/lollipop-x86_64.img.xz and its .sha256. Needs root, the Debian
# mirror and the tools in image/README.md; a few minutes.
#
#   sudo image/build-x86.sh
#
# BASE=reuse keeps the last base root (only Lollipop and the first-boot
# files are put in again); BUILD_DEB=1 rebuilds the package first.
set -u
. "$(dirname "$0")/lib/build.sh"
WORK=${WORK:-$OUT/work-x86}
need_tools mmdebstrap mkfs.vfat mcopy mkfs.ext4 sfdisk xz

make_base amd64 x86 "systemd-sysv,udev,kmod,dbus,systemd-timesyncd,openssh-server,unattended-upgrades,\
cloud-guest-utils,fdisk,e2fsprogs,dosfstools,openssl,ca-certificates,iproute2,iputils-ping,bind9-dnsutils,\
nano,less,procps,adduser,python3,initramfs-tools,linux-image-amd64,systemd-boot-efi,firmware-realtek"
find_deb amd64 ""
stage "Lollipop into the root"
"$here/lib/install-appliance.sh" "$WORK/root" x86 "$deb" || die "installing Lollipop failed"
stage_done
mkdir -p "$OUT"
assemble "$OUT/lollipop-x86_64.img" /boot/efi LOLLIPOPEFI LOLLIPOPROOT gpt
compress "$OUT/lollipop-x86_64.img"
finish "$OUT/lollipop-x86_64.img"
