#!/bin/sh
# Turns a fresh Debian root into the appliance's base system: networkd with
# DHCP, time sync, unattended security updates, no per-machine secrets (host
# keys, machine id), the boot loader's files and an initramfs. Run by
# mmdebstrap as a customize hook (chroot runs arm64 programs under qemu-user
# on an amd64 host). Lollipop itself goes in afterwards (install-appliance.sh),
# so a new package needs no new base.
#
#   customize-root.sh ROOT pi|x86
set -eu
root=$1
kind=$2
here=$(cd "$(dirname "$0")/.." && pwd)

case "$kind" in
pi) fat_dir=/boot/firmware fat_label=RASPIFIRM root_label=RASPIROOT ;;
x86) fat_dir=/boot/efi fat_label=LOLLIPOPEFI root_label=LOLLIPOPROOT ;;
*) echo "customize-root.sh: unknown kind '$kind' (pi or x86)" >&2; exit 2 ;;
esac

mkdir -p "$root$fat_dir"
cat >"$root/etc/fstab" <<FSTAB
LABEL=$root_label	/	ext4	rw,errors=remount-ro	0	1
LABEL=$fat_label	$fat_dir	vfat	rw,umask=0077,nofail	0	2
FSTAB
echo lollipop >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tlollipop\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"

# DHCP until first boot writes what lollipop-setup.toml asks for.
cat >"$root/etc/systemd/network/10-lollipop.network" <<NET
[Match]
Name=en* eth*

[Network]
DHCP=yes
NET
printf 'nameserver 127.0.0.1\nnameserver 9.9.9.9\n' >"$root/etc/resolv.conf"

# Security updates from Debian, installed every day.
cat >"$root/etc/apt/apt.conf.d/20auto-upgrades" <<APT
APT::Periodic::Update-Package-Lists "1";
APT::Periodic::Unattended-Upgrade "1";
APT::Periodic::AutocleanInterval "7";
APT
# A kernel update takes effect at a 03:30 reboot, when no one is at school.
cat >"$root/etc/apt/apt.conf.d/51lollipop-reboot" <<APT
Unattended-Upgrade::Automatic-Reboot "true";
Unattended-Upgrade::Automatic-Reboot-Time "03:30";
APT

chroot "$root" systemctl enable systemd-networkd.service systemd-timesyncd.service ssh.service
chroot "$root" systemctl disable systemd-networkd-wait-online.service
# One per appliance, made on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
: >"$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"

if [ "$kind" = pi ]; then
    sed -i 's/^#\?ROOTPART=.*/ROOTPART=LABEL=RASPIROOT/' "$root/etc/default/raspi-firmware"
else
    # systemd-boot on the EFI partition, loading the kernel and initramfs a
    # hook copies there on every kernel update.
    install -D -m 0644 "$root/usr/lib/systemd/boot/efi/systemd-bootx64.efi" "$root/boot/efi/EFI/BOOT/BOOTX64.EFI"
    mkdir -p "$root/boot/efi/loader/entries"
    printf 'default lollipop.conf\ntimeout 0\n' >"$root/boot/efi/loader/loader.conf"
    cat >"$root/boot/efi/loader/entries/lollipop.conf" <<ENTRY
title Lollipop
linux /vmlinuz
initrd /initrd.img
options root=LABEL=LOLLIPOPROOT rw console=tty0 console=ttyS0,115200 quiet
ENTRY
    install -D -m 0755 "$here/lib/esp-kernel-hook" "$root/etc/initramfs/post-update.d/zz-lollipop-esp"
fi
# The root's type cannot be probed in a chroot; without it the initramfs has
# no fsck, and a card's root is not checked after a power cut.
echo FSTYPE=ext4 >"$root/etc/initramfs-tools/conf.d/lollipop-fstype"
# The kernel's own hook skipped it (INITRD=No): one run, with every hook.
chroot "$root" env INITRD=Yes update-initramfs -c -k all
test -n "$(ls "$root$fat_dir"/vmlinuz* "$root$fat_dir"/initrd.img* 2>/dev/null)"
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/*
