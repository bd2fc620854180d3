#!/bin/sh
# Puts Lollipop into an appliance base root: the package (its dependencies
# are in the base), the first-boot script and units, and the example
# lollipop-setup.toml on the FAT partition. Can run again on the same root
# with a newer package.
#
#   install-appliance.sh ROOT pi|x86 PACKAGE.deb
set -eu
root=$1
kind=$2
deb=$3
here=$(cd "$(dirname "$0")/.." && pwd)
case "$kind" in
pi) fat_dir=/boot/firmware ;;
x86) fat_dir=/boot/efi ;;
*) echo "install-appliance.sh: unknown kind '$kind' (pi or x86)" >&2; exit 2 ;;
esac

cp "$deb" "$root/tmp/lollipop.deb"
chroot "$root" env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/lollipop.deb
rm "$root/tmp/lollipop.deb"

install -D -m 0755 "$here/firstboot/lollipop-firstboot" "$root/usr/lib/lollipop/lollipop-firstboot"
# The script imports it from its own directory.
install -D -m 0644 "$here/firstboot/lollipop_setup.py" "$root/usr/lib/lollipop/lollipop_setup.py"
install -D -m 0644 "$here/firstboot/lollipop-firstboot.service" "$here/firstboot/lollipop-banner.service" \
    -t "$root/etc/systemd/system/"
chroot "$root" systemctl enable lollipop-firstboot.service lollipop-banner.service
install -D -m 0644 "$here/firstboot/lollipop-setup.toml" "$root$fat_dir/lollipop-setup.toml"
