#!/bin/sh
# Boots a copy of an image under QEMU (software emulation) with a
# lollipop-setup.toml that asks for a static address, and checks first boot
# from the outside: a DNS query from this machine through QEMU's user-mode
# port forwarding is answered (a sample-listed name, blocked with 0.0.0.0 and
# its Extended DNS Error), an allowed name is answered through a resolver
# this script starts on the host (dnsmasq, the upstream lollipop-setup.toml
# names), the console shows the setup link, its page over HTTPS makes an
# administrator who can sign in, and the root was grown. Prints the boot time: QEMU's
# start to the first DNS answer. Called by check-image.sh --boot.
#
#   lib/boot-test.sh IMAGE pi|x86 FAT_SPEC
#
# BOOT_SETUP=broken boots with a misspelt time zone and an [email] section that
# is not valid TOML (so neither is the file) instead: the console and
# lollipop-setup.result must name both, the [login] password and the static
# address must still be applied, and only the applied password leave the card.
set -u
image=$1
kind=$2
limit=${BOOT_TIMEOUT:-900}
for tool in dig curl mcopy jq dnsmasq; do
    command -v "$tool" >/dev/null || { echo "FAIL: $tool is missing (image/README.md, Checking an image)"; exit 1; }
done
scratch=$(mktemp -d /tmp/lollipop-boot.XXXXXX)
qemu_pid=
# The console log is kept beside the image (or in BOOT_LOG).
log_copy=${BOOT_LOG:-$(dirname "$image")/boot-$kind.log}
cleanup() {
    [ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null
    cp "$scratch/console.log" "$log_copy" 2>/dev/null
    rm -rf "$scratch"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# The upstream for allowed names: a resolver on this machine, which QEMU's
# user network lets the guest reach as 10.0.2.2 (no internet needed). It
# knows one name, and logs each query so the check sees Lollipop asked it.
upstream_port=$(free_port)
allowed_name=www.bbc.co.uk
allowed_address=192.0.2.80
dnsmasq --keep-in-foreground --conf-file=/dev/null --port="$upstream_port" --listen-address=127.0.0.1 \
    --bind-interfaces --no-resolv --no-hosts --host-record="$allowed_name,$allowed_address" \
    --log-queries --log-facility="$scratch/upstream.log" --pid-file="$scratch/dnsmasq.pid" &
upstream_pid=$!
trap 'kill "$upstream_pid" 2>/dev/null; cleanup' EXIT

# A sparse copy, one GiB larger than built, as a bigger card would be.
disk=$scratch/disk.img
cp --sparse=always "$image" "$disk"
truncate -s +1G "$disk"
offset=$(($(sfdisk -J "$disk" 2>/dev/null | jq -r '.partitiontable.partitions[0].start') * 512))
fat="$disk@@$offset"
setup=${BOOT_SETUP:-good}
if [ "$setup" = broken ]; then
    cat >"$scratch/lollipop-setup.toml" <<SETUP
time_zone = "Europe/Lundon"
[network]
mode = "static"
address = "10.0.2.15/24"
gateway = "10.0.2.2"
upstream = ["10.0.2.2:$upstream_port"]
[login]
password = "first-boot-secret"
[email]
password = ""
password = "mail-secret"
SETUP
else
    cat >"$scratch/lollipop-setup.toml" <<SETUP
school_name = "St Ebbe's \\"Test\\" Primary"
admin_email = "head@school.example"
hostname = "lollipop-test"
time_zone = "Europe/London"
[network]
mode = "static"
address = "10.0.2.15/24"
gateway = "10.0.2.2"
dns = ["10.0.2.3"]
upstream = ["10.0.2.2:$upstream_port"]
[login]
password = "first-boot-secret"
SETUP
fi
mcopy -o -i "$fat" "$scratch/lollipop-setup.toml" ::/lollipop-setup.toml || exit 1

dns_port=$(free_port)
https_port=$(free_port)
net="-netdev user,id=net0,hostfwd=udp:127.0.0.1:$dns_port-:53,hostfwd=tcp:127.0.0.1:$https_port-:443"
console=$scratch/console.log
if [ "$kind" = pi ]; then
    # The Pi's kernel and initramfs from the FAT partition, on QEMU's virt
    # board (its raspi models are too partial for Debian's kernel).
    kernel=$(mtype -i "$fat" ::/config.txt | sed -n 's/^kernel=//p' | tr -d '\r')
    initramfs=$(mtype -i "$fat" ::/config.txt | sed -n 's/^initramfs \([^ ]*\).*/\1/p' | tr -d '\r')
    mcopy -i "$fat" "::/$kernel" "$scratch/vmlinuz" && mcopy -i "$fat" "::/$initramfs" "$scratch/initrd.img" || exit 1
    set -- qemu-system-aarch64 -M virt -cpu cortex-a72 -smp 2 -m 1024 \
        -kernel "$scratch/vmlinuz" -initrd "$scratch/initrd.img" \
        -append "root=LABEL=RASPIROOT rw rootwait console=ttyAMA0" \
        -drive "file=$disk,format=raw,if=virtio" $net -device virtio-net-pci,netdev=net0
else
    code=$(ls /usr/share/OVMF/OVMF_CODE_4M.fd /usr/share/OVMF/OVMF_CODE.fd 2>/dev/null | head -n 1)
    vars=$(ls /usr/share/OVMF/OVMF_VARS_4M.fd /usr/share/OVMF/OVMF_VARS.fd 2>/dev/null | head -n 1)
    [ -n "$code" ] || { echo "FAIL: OVMF is missing (apt install ovmf)"; exit 1; }
    cp "$vars" "$scratch/vars.fd"
    set -- qemu-system-x86_64 -M q35 -smp 2 -m 1024 \
        -drive "if=pflash,format=raw,readonly=on,file=$code" -drive "if=pflash,format=raw,file=$scratch/vars.fd" \
        -drive "file=$disk,format=raw,if=virtio" $net -device virtio-net-pci,netdev=net0
fi
started=$(date +%s)
"$@" -display none -serial "file:$console" -monitor none >"$scratch/qemu.log" 2>&1 &
qemu_pid=$!
echo "booting $kind under $1 (DNS on 127.0.0.1:$dns_port, HTTPS on $https_port)"

answer=
while [ $(($(date +%s) - started)) -lt "$limit" ] && kill -0 "$qemu_pid" 2>/dev/null; do
    answer=$(dig +short +time=2 +tries=1 -p "$dns_port" @127.0.0.1 pornhub.com A 2>/dev/null)
    [ "$answer" = 0.0.0.0 ] && break
    sleep 3
done
booted=$(($(date +%s) - started))
failures=0
result() {
    if [ "$1" = 0 ]; then echo "PASS: boot: $2"; else echo "FAIL: boot: $2"; failures=$((failures + 1)); fi
}
if [ "$answer" = 0.0.0.0 ]; then
    result 0 "DNS query from the host answered (pornhub.com A 0.0.0.0) $booted s after QEMU started"
else
    result 1 "no DNS answer within $booted s"
    tail -n 40 "$console" | sed 's/^/    /'
    exit 1
fi
# A blocked answer says why, in an Extended DNS Error (RFC 8914).
blocked=$(dig +time=5 +tries=2 -p "$dns_port" @127.0.0.1 pornhub.com A 2>&1)
echo "$blocked" | grep -Eq 'EDE: 1[57] \((Blocked|Filtered)\): \(Lollipop: category pornography blocked'
result $? "the blocked answer carries its reason: $(echo "$blocked" | grep -o 'EDE: .*' | head -n 1)"
# An allowed name goes to the upstream from lollipop-setup.toml: the
# resolver this check started on the host.
allowed=$(dig +short +time=5 +tries=2 -p "$dns_port" @127.0.0.1 "$allowed_name" A 2>&1)
[ "$allowed" = "$allowed_address" ] && grep -q "query\[A\] $allowed_name from" "$scratch/upstream.log"
result $? "an allowed name is answered through the upstream set in lollipop-setup.toml ($allowed_name A ${allowed:-no answer})"
# The banner is written before the login prompt, which can lag the service.
tries=0
while ! grep -q 'login:' "$console" && [ "$tries" -lt 60 ]; do sleep 2; tries=$((tries + 1)); done
if [ "$setup" = broken ]; then
    grep -q "FIRST BOOT PROBLEM: lollipop-setup.toml: time_zone 'Europe/Lundon' is not a known time zone" "$console"
    result $? "the console names the mistake in lollipop-setup.toml"
    grep -q 'FIRST BOOT PROBLEM: lollipop-setup.toml: \[email\] is not valid TOML' "$console"
    result $? "the console names the broken [email] section"
    grep -q 'network: static 10.0.2.15/24 via 10.0.2.2' "$console"
    result $? "the valid [network] applied despite the broken sections (and answered on it)"
    grep -q 'root password set' "$console"
    result $? "the [login] password applied despite the file not being valid TOML"
    mtype -i "$fat" ::/lollipop-setup.result >"$scratch/result" 2>&1
    grep -q '\[email\] is not valid TOML' "$scratch/result" && grep -q '\[login\] password: applied' "$scratch/result"
    result $? "lollipop-setup.result on the FAT partition names the broken section and the applied password"
    mtype -i "$fat" ::/lollipop-setup.toml >"$scratch/setup-after" 2>&1
    ! grep -q 'first-boot-secret' "$scratch/setup-after" && grep -q 'mail-secret' "$scratch/setup-after"
    result $? "the applied password left the card, the unapplied one stayed"
    host=lollipop
else
    grep -q 'settings from /boot/.*/lollipop-setup.toml' "$console"
    result $? "first boot read lollipop-setup.toml"
    grep -q 'network: static 10.0.2.15/24 via 10.0.2.2' "$console"
    result $? "static address applied (and answered on it)"
    grep -q 'PROBLEM' "$console" && grep 'PROBLEM' "$console" | sed 's/^/    /'
    [ $? != 0 ]
    result $? "first boot reported no problem"
    host=lollipop-test
fi
grep -q 'firstboot: root file system .*: [0-9.]*G' "$console" && grep 'firstboot: root file system' "$console" | sed 's/^.*lollipop-firstboot: /    /'
result $? "root partition grown to the disk"
link=$(grep -o 'https://10\.0\.2\.15/setup?token=[A-Za-z0-9_-]*' "$console" | tail -n 1)
[ -n "$link" ]
result $? "console shows the setup link: $link"
token=${link#*token=}
page=$(curl -sk --max-time 20 "https://127.0.0.1:$https_port/setup?token=$token")
echo "$page" | grep -q 'Create the administrator'
result $? "status page over HTTPS serves the setup link's form"
# The setup link's form makes the administrator, who can then sign in.
base=https://127.0.0.1:$https_port
form_token() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' | head -n 1; }
csrf=$(curl -sk --max-time 20 -c "$scratch/jar1" -b "$scratch/jar1" "$base/setup?token=$token" | form_token)
curl -sk --max-time 60 -o /dev/null -w '%{http_code}' -c "$scratch/jar1" -b "$scratch/jar1" \
    --data-urlencode "csrf=$csrf" --data-urlencode "token=$token" --data-urlencode "name=head" \
    --data-urlencode "password=boot-check-password" --data-urlencode "confirm=boot-check-password" \
    "$base/setup" >"$scratch/setup-status"
csrf=$(curl -sk --max-time 20 -c "$scratch/jar2" -b "$scratch/jar2" "$base/login" | form_token)
curl -sk --max-time 60 -o /dev/null -c "$scratch/jar2" -b "$scratch/jar2" \
    --data-urlencode "csrf=$csrf" --data-urlencode "next=/" --data-urlencode "name=head" \
    --data-urlencode "password=boot-check-password" "$base/login"
dashboard=$(curl -sk --max-time 20 -b "$scratch/jar2" "$base/")
echo "$dashboard" | grep -q 'Sign out'
result $? "the administrator made with the setup link signs in to the status page (setup answered $(cat "$scratch/setup-status"))"
cert=$(echo | timeout 20 openssl s_client -connect "127.0.0.1:$https_port" 2>/dev/null | openssl x509 -noout -ext subjectAltName 2>/dev/null)
echo "$cert" | grep -q "DNS:$host"
result $? "TLS certificate made on first boot names $host"
echo "$cert" | grep -q '10.0.2.15'
result $? "TLS certificate names the static address 10.0.2.15"
if [ "$setup" != broken ]; then
    mtype -i "$fat" ::/lollipop-setup.toml 2>&1 | grep -q 'first-boot-secret'
    [ $? != 0 ]
    result $? "the root password was removed from the FAT partition"
fi
echo "boot time: $booted s to the first DNS answer ($kind, $1, software emulation)"
[ "$failures" = 0 ]
