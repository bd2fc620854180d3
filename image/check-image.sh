#!/bin/sh
# Checks a built image without mounting it (no loop devices): the partition
# table (sfdisk -J), the FAT partition's files (mtools) and the root file
# system's files (debugfs): Lollipop's binary and config, its unit enabled, the
# first-boot units, time sync, unattended upgrades and no per-machine secrets.
# With --boot, also boots it under QEMU (image/lib/boot-test.sh): first boot
# with a static-address lollipop-setup.toml, then a DNS query from this
# machine, the status page over HTTPS and the console's setup link.
#
#   image/check-image.sh IMAGE [--boot]
#
# IMAGE is the raw .img the build leaves beside the .img.xz (or the .img.xz,
# unpacked to a temporary file first).
set -u
image=${1:-}
[ -n "$image" ] && [ -f "$image" ] || { echo "usage: image/check-image.sh IMAGE [--boot]" >&2; exit 2; }
for tool in sfdisk mdir mtype debugfs jq file; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (apt install fdisk mtools e2fsprogs jq file)"; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d /tmp/lollipop-check.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
case "$image" in
*.xz) xz -dc "$image" >"$scratch/image.img" || exit 1; image=$scratch/image.img ;;
esac

failures=0
check() {
    what=$1
    shift
    if "$@" >"$scratch/out" 2>&1; then
        echo "PASS: $what"
    else
        echo "FAIL: $what"
        sed 's/^/    /' "$scratch/out" | head -n 20
        failures=$((failures + 1))
    fi
}

table=$(sfdisk -J "$image") || { echo "FAIL: no partition table"; exit 1; }
label=$(echo "$table" | jq -r .partitiontable.label)
if [ "$label" = dos ]; then
    kind=pi fat_type=c root_type=83 root_label=RASPIROOT
else
    kind=x86 fat_type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B root_type=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 root_label=LOLLIPOPROOT
fi
echo "image: $image ($kind, $label table)"
part() { echo "$table" | jq -r ".partitiontable.partitions[$1].$2"; }
check "two partitions" test "$(echo "$table" | jq '.partitiontable.partitions | length')" = 2
check "partition 1 is FAT/EFI at 4 MiB" sh -c "[ '$(part 0 type)' = '$fat_type' ] && [ '$(part 0 start)' = 8192 ]"
check "partition 2 is the Linux root, after it" sh -c "[ '$(part 1 type)' = '$root_type' ] && [ $(part 1 start) -ge $(($(part 0 start) + $(part 0 size))) ]"
fat="$image@@$(($(part 0 start) * 512))"
root_offset=$(($(part 1 start) * 512))
# debugfs opens a file system inside a bigger file with unix_io's offset option.
root="$image?offset=$root_offset"
check "root file system labelled $root_label" sh -c "dumpe2fs -h '$root' 2>/dev/null | grep -q 'volume name: *$root_label\$'"

fat_has() { mdir -i "$fat" "::/$1" >/dev/null; }
if [ "$kind" = pi ]; then
    for f in config.txt cmdline.txt start4.elf bootcode.bin bcm2711-rpi-4-b.dtb bcm2837-rpi-3-b.dtb; do
        check "FAT: $f" fat_has "$f"
    done
    # raspi-firmware names the kernel and initramfs by version in config.txt.
    kernel=$(mtype -i "$fat" ::/config.txt | sed -n 's/^kernel=//p' | tr -d '\r')
    initramfs=$(mtype -i "$fat" ::/config.txt | sed -n 's/^initramfs \([^ ]*\).*/\1/p' | tr -d '\r')
    check "FAT: the kernel config.txt names ($kernel)" fat_has "${kernel:-missing}"
    check "FAT: the initramfs config.txt names ($initramfs)" fat_has "${initramfs:-missing}"
    check "FAT: cmdline.txt mounts the root by label" sh -c "mtype -i '$fat' ::/cmdline.txt | grep -q 'root=LABEL=RASPIROOT'"
    check "FAT: config.txt boots arm64" sh -c "mtype -i '$fat' ::/config.txt | grep -q '^arm_64bit=1'"
else
    for f in EFI/BOOT/BOOTX64.EFI loader/loader.conf loader/entries/lollipop.conf vmlinuz initrd.img; do
        check "FAT: $f" fat_has "$f"
    done
    check "FAT: boot entry mounts the root by label" sh -c "mtype -i '$fat' ::/loader/entries/lollipop.conf | grep -q 'root=LABEL=LOLLIPOPROOT'"
fi
check "FAT: lollipop-setup.toml" sh -c "mtype -i '$fat' ::/lollipop-setup.toml | grep -q '^school_name = '"

# debugfs reports a missing file on stderr with status 0.
root_has() { debugfs -R "stat $1" "$root" 2>&1 | grep -q '^Inode:'; }
root_cat() { debugfs -R "cat $1" "$root" 2>/dev/null; }
root_link() { debugfs -R "stat $1" "$root" 2>/dev/null | grep -q 'Type: symlink'; }
check "root: /usr/bin/lollipop" root_has /usr/bin/lollipop
arch=$([ "$kind" = pi ] && echo 'ARM aarch64' || echo 'x86-64')
check "root: lollipop is $arch" sh -c "$(command -v debugfs) -R 'cat /usr/bin/lollipop' '$root' 2>/dev/null | file - | grep -q '$arch'"
check "root: /etc/lollipop/lollipop.toml" sh -c "$(command -v debugfs) -R 'cat /etc/lollipop/lollipop.toml' '$root' 2>/dev/null | grep -q '^\[\[listen\]\]'"
check "root: lollipop.service installed" root_has /usr/lib/systemd/system/lollipop.service
wants=/etc/systemd/system
check "root: lollipop.service enabled" root_link $wants/multi-user.target.wants/lollipop.service
check "root: first-boot unit enabled" root_link $wants/sysinit.target.wants/lollipop-firstboot.service
check "root: banner unit enabled" root_link $wants/multi-user.target.wants/lollipop-banner.service
check "root: first-boot script" root_has /usr/lib/lollipop/lollipop-firstboot
check "root: first-boot settings module" root_has /usr/lib/lollipop/lollipop_setup.py
check "root: systemd-networkd enabled" root_link $wants/multi-user.target.wants/systemd-networkd.service
check "root: DHCP until first boot" sh -c "$(command -v debugfs) -R 'cat /etc/systemd/network/10-lollipop.network' '$root' 2>/dev/null | grep -q '^DHCP=yes'"
check "root: systemd-timesyncd enabled" root_link $wants/sysinit.target.wants/systemd-timesyncd.service
check "root: ssh enabled" root_link $wants/multi-user.target.wants/ssh.service
check "root: unattended upgrades on" sh -c "$(command -v debugfs) -R 'cat /etc/apt/apt.conf.d/20auto-upgrades' '$root' 2>/dev/null | grep -q 'Unattended-Upgrade \"1\"'"
check "root: security updates in sources.list" sh -c "$(command -v debugfs) -R 'cat /etc/apt/sources.list' '$root' 2>/dev/null | grep -q 'bookworm-security'"
check "root: fstab mounts both partitions by label" sh -c "$(command -v debugfs) -R 'cat /etc/fstab' '$root' 2>/dev/null | grep -c '^LABEL=' | grep -qx 2"
check "root: no SSH host keys (made on first boot)" sh -c "! $(command -v debugfs) -R 'ls /etc/ssh' '$root' 2>/dev/null | grep -q ssh_host_"
check "root: empty machine-id (made on first boot)" sh -c "[ -z \"\$($(command -v debugfs) -R 'cat /etc/machine-id' '$root' 2>/dev/null)\" ]"
check "root: growpart for first boot" root_has /usr/bin/growpart
check "root: lollipop system user" sh -c "$(command -v debugfs) -R 'cat /etc/passwd' '$root' 2>/dev/null | grep -q '^lollipop:.*:/var/lib/lollipop:'"

if [ "${2:-}" = --boot ]; then
    "$here/lib/boot-test.sh" "$image" "$kind" "$fat" || failures=$((failures + 1))
fi
if [ "$failures" = 0 ]; then
    echo "PASS: all checks"
else
    echo "FAIL: $failures check(s)"
    exit 1
fi
