# The steps build-pi.sh and build-x86.sh share, sourced by both: the base
# root (mmdebstrap), Lollipop's package, and a partitioned, compressed image
# put together from files alone (no loop devices, no mounts).
#
# Settings from the environment:
#   DEBIAN_MIRROR    (http://deb.debian.org/debian)
#   SECURITY_MIRROR  (http://deb.debian.org/debian-security)
#   OUT              where images go (image/out)
#   WORK             the build's scratch directory (OUT/work-KIND); its base
#                    root is kept and reused while BASE=reuse
#   XZ_LEVEL         xz preset (6)

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
OUT=${OUT:-$here/out}
FAT_MIB=256
started=$(date +%s)
stage_started=$started

stage() {
    now=$(date +%s)
    echo "== $* (at $((now - started)) s)"
    stage_started=$now
}

stage_done() {
    echo "   done in $(($(date +%s) - stage_started)) s"
}

die() {
    echo "FAIL: $*" >&2
    exit 1
}

need_tools() {
    [ "$(id -u)" = 0 ] || die "needs root (mmdebstrap and chroot)"
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing: see image/README.md, Building the images"
    done
}

# newest_deb ARCH: the newest lollipop_*_ARCH.deb under target/ (empty if none).
newest_deb() {
    newest=
    for candidate in "$target"/debian/lollipop_*_"$1".deb "$target"/*/debian/lollipop_*_"$1".deb; do
        [ -f "$candidate" ] || continue
        if [ -z "$newest" ] || [ "$candidate" -nt "$newest" ]; then newest=$candidate; fi
    done
    echo "$newest"
}

# run_cargo ARGS: cargo as the user who ran sudo (whose ~/.cargo/bin holds
# rustup's toolchain and cargo-deb, and who owns target/), or as root.
run_cargo() {
    if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then
        user_home=$(getent passwd "$SUDO_USER" | cut -d: -f6)
        runuser -u "$SUDO_USER" -- env HOME="$user_home" PATH="$user_home/.cargo/bin:$PATH" \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc sh -c 'cd "$1" && shift && cargo "$@"' \
            run_cargo "$repo" "$@"
    else
        (cd "$repo" && PATH="$HOME/.cargo/bin:$PATH" \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc cargo "$@")
    fi
}

# The newest .deb of ARCH under target/, built with cargo deb if there is none
# (or if BUILD_DEB=1). With a package already built, no Rust is needed.
find_deb() {
    arch=$1
    cargo_target=$2
    target=${CARGO_TARGET_DIR:-$repo/target}
    deb=$(newest_deb "$arch")
    if [ -z "$deb" ] || [ "${BUILD_DEB:-0}" = 1 ]; then
        stage "cargo deb for $arch (a release build: tens of minutes on two cores)"
        run_cargo --version >/dev/null 2>&1 ||
            die "no package in $target/debian and no cargo to build one: install Rust 1.89 or later (README.md, first lines), or copy a lollipop_*_$arch.deb there"
        run_cargo deb --help >/dev/null 2>&1 ||
            die "cargo-deb is missing: cargo install cargo-deb --locked (as the user who builds)"
        run_cargo deb ${cargo_target:+--target "$cargo_target"} || die "cargo deb failed"
        deb=$(newest_deb "$arch")
        [ -n "$deb" ] || die "cargo deb left no lollipop_*_$arch.deb under $target"
        stage_done
    fi
    echo "package: $deb"
}

# The base root in $WORK/root: mmdebstrap ARCH KIND PACKAGES (comma
# separated), reused when BASE=reuse and one was finished before.
make_base() {
    arch=$1
    kind=$2
    packages=$3
    base=$WORK/root
    if [ "${BASE:-new}" = reuse ] && [ -f "$WORK/base.done" ]; then
        echo "base root: reusing $base"
        return
    fi
    stage "base root: mmdebstrap bookworm $arch"
    rm -rf "$base" "$WORK/base.done"
    mkdir -p "$WORK"
    # The kernel's postinst skips the initramfs; customize-root.sh makes it
    # once, with every hook (under emulation each run takes minutes).
    INITRD=No mmdebstrap --variant=minbase --architectures="$arch" \
        --include="$packages" \
        --customize-hook="'$here/lib/customize-root.sh' \"\$1\" $kind" \
        bookworm "$base" \
        "deb $MIRROR bookworm main non-free-firmware" \
        "deb $MIRROR bookworm-updates main non-free-firmware" \
        "deb $SECURITY bookworm-security main non-free-firmware" ||
        die "mmdebstrap failed"
    touch "$WORK/base.done"
    stage_done
}

# assemble IMAGE FAT_DIR FAT_LABEL ROOT_LABEL dos|gpt: the FAT partition
# from ROOT/FAT_DIR, the ext4 root from the rest of ROOT, then the table.
assemble() {
    image=$1
    fat_dir=$WORK/root$2
    fat_label=$3
    root_label=$4
    table=$5
    stage "image: $FAT_MIB MiB FAT + ext4 root, $table table"
    fat=$WORK/fat.img
    ext=$WORK/root.img
    rm -f "$fat" "$ext" "$image"
    mkfs.vfat -F 32 -n "$fat_label" -C "$fat" $((FAT_MIB * 1024)) >/dev/null || die "mkfs.vfat failed"
    mcopy -s -p -i "$fat" "$fat_dir"/* ::/ || die "mcopy into the FAT partition failed"

    # The FAT files live on their own partition: the root keeps an empty
    # mount point, and gets them back afterwards for the next build.
    aside=$WORK/fat-files
    rm -rf "$aside"
    mv "$fat_dir" "$aside"
    mkdir -m 0755 "$fat_dir"
    used_mib=$(($(du -s -k -x "$WORK/root" | cut -f1) / 1024))
    # Room for the ext4 metadata and the first updates; first boot grows it
    # to the whole card.
    root_mib=$((used_mib * 5 / 4 + 400))
    mkfs.ext4 -q -L "$root_label" -d "$WORK/root" "$ext" "${root_mib}M"
    status=$?
    rmdir "$fat_dir"
    mv "$aside" "$fat_dir"
    [ "$status" = 0 ] || die "mkfs.ext4 -d failed"

    # 4 MiB before the first partition (aligned for SD cards), 1 MiB after
    # the last (GPT's backup table).
    truncate -s $((4 + FAT_MIB + root_mib + 1))M "$image"
    if [ "$table" = dos ]; then
        printf 'label: dos\nstart=4MiB, size=%sMiB, type=c, bootable\nstart=%sMiB, size=%sMiB, type=83\n' \
            "$FAT_MIB" $((4 + FAT_MIB)) "$root_mib"
    else
        printf 'label: gpt\nstart=4MiB, size=%sMiB, type=U, name="EFI system"\nstart=%sMiB, size=%sMiB, type=4f68bce3-e8cd-4db1-96e7-fbcaf984b709, name="root"\n' \
            "$FAT_MIB" $((4 + FAT_MIB)) "$root_mib"
    fi | sfdisk --quiet "$image" || die "sfdisk failed"
    dd if="$fat" of="$image" bs=1M seek=4 conv=notrunc,sparse status=none
    dd if="$ext" of="$image" bs=1M seek=$((4 + FAT_MIB)) conv=notrunc,sparse status=none
    rm -f "$fat" "$ext"
    echo "   $image: $(du -h --apparent-size "$image" | cut -f1) (root $used_mib MiB used)"
    stage_done
}

# compress IMAGE: IMAGE.xz and IMAGE.xz.sha256, the raw image kept for
# check-image.sh and the boot test.
compress() {
    image=$1
    stage "xz -${XZ_LEVEL:-6}"
    rm -f "$image.xz"
    xz -T2 "-${XZ_LEVEL:-6}" -k "$image" || die "xz failed"
    (cd "$(dirname "$image")" && sha256sum "$(basename "$image").xz" >"$(basename "$image").xz.sha256")
    echo "   $image.xz: $(du -h "$image.xz" | cut -f1)"
    stage_done
}

finish() {
    total=$(($(date +%s) - started))
    echo "built $1.xz in $((total / 60)) min $((total % 60)) s"
}
