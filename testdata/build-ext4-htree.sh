#!/usr/bin/env bash
# Build small ext4 images whose hashed (htree) directories were written by the KERNEL: mkfs.ext4,
# mount -o loop, create the files through the mount, umount, then `e2fsck -fn` must call the
# filesystem clean. The kernel turns a one-block directory into a hashed one by building the
# index root inside the old leaf block and leaves that leaf's checksum tail bytes behind in the
# root's dx_tail (`0c 00 00 de` ...): `mke2fs -d` and `e2fsck -D` write zeros there, so only a
# filesystem the kernel wrote shows it (tests/it/ext4_htree.rs, issue 22).
#
# Usage: build-ext4-htree.sh OUTDIR [NAME...]   (default: the committed images)
#   htree-1k-csum     1 KiB blocks, metadata_csum: /etc/conf hashed (indirect_levels 0),
#                     /usr/share/many hashed (indirect_levels 1) holding the planted key
#   htree-4k-csum     the same with 4 KiB blocks
#   htree-1k-nocsum   1 KiB blocks, -O ^metadata_csum
#   htree-4k-inline   4 KiB blocks, -O inline_data: small directories kept in the inode, one
#                     grown out of it into a hashed directory
#   htree-1k-largedir 1 KiB blocks, -O large_dir: a directory with indirect_levels 2 (22,000
#                     names, 11 MiB of directory; ~470 KB compressed, so built at test time)
# Each NAME.img lands in OUTDIR; the committed ones are `zstd -19` copies in testdata/ext4-htree/.
# The planted secret (`/usr/share/many/id_ed25519`) is a throwaway key made by ssh-keygen here.
#
# Needs root (loop mounts), mkfs.ext4, e2fsck, debugfs, ssh-keygen, python3.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:?usage: build-ext4-htree.sh OUTDIR [NAME...]}
shift
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(htree-1k-csum htree-4k-csum htree-1k-nocsum htree-4k-inline)
for tool in mkfs.ext4 e2fsck debugfs ssh-keygen python3 mount umount; do
    command -v "$tool" >/dev/null 2>&1 || { echo "build-ext4-htree.sh: '$tool' is required" >&2; exit 127; }
done
mkdir -p "$out"
out=$(cd "$out" && pwd)
mnt=$(mktemp -d /tmp/ext4-htree-mnt.XXXXXX)
cleanup() { mountpoint -q "$mnt" && umount "$mnt"; rmdir "$mnt"; }
trap cleanup EXIT

# fill DIR LINKS: the tree, written through the mount. LINKS hard links with 255-byte names
# make /usr/share/many deep (two names per 1 KiB leaf block) without an inode each.
fill() {
    local m=$1 links=$2
    mkdir -p "$m/etc/conf" "$m/usr/share/many" "$m/root/.ssh" "$m/var/empty"
    echo "htree fixture" >"$m/etc/hostname"
    ssh-keygen -q -t ed25519 -N '' -C deploy@ip-10-0-1-23 -f "$m/usr/share/many/id_ed25519"
    python3 - "$m" "$links" <<'PY'
import os, sys
m, links = sys.argv[1], int(sys.argv[2])
# 400 short names: several blocks, indirect_levels 0. Some removed and renamed afterwards, as
# a package upgrade does (empty records and reused slots in the leaves).
for i in range(400):
    with open(f"{m}/etc/conf/setting-{i:03}.conf", "w") as f:
        f.write(f"key{i} = value {i * 7919}\n")
for i in range(0, 400, 9):
    os.remove(f"{m}/etc/conf/setting-{i:03}.conf")
for i in (i for i in range(1, 400, 50) if i % 9):
    os.rename(f"{m}/etc/conf/setting-{i:03}.conf", f"{m}/etc/conf/renamed-{i:03}.conf")
# Distinct contents for the hard links to share.
for k in range(8):
    with open(f"{m}/usr/share/many/base-{k}", "wb") as f:
        f.write(bytes([k]) * (100 + 900 * k))
for i in range(links):
    name = f"{i:07}-".ljust(255, "n")
    os.link(f"{m}/usr/share/many/base-{i % 8}", f"{m}/usr/share/many/{name}")
PY
    # Small directories (inline with inline_data).
    echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake fixture" \
        >"$m/root/.ssh/authorized_keys"
    ln -s ../usr/share/many/base-1 "$m/var/link"
}

# build NAME BLOCK_SIZE SIZE LINKS FEATURES...
build() {
    local name=$1 bs=$2 size=$3 links=$4
    shift 4
    local img=$out/$name.img
    rm -f "$img"
    truncate -s "$size" "$img"
    MKE2FS_CONFIG=$here/mke2fs.conf mkfs.ext4 -q -F -b "$bs" -N 2048 "$@" "$img"
    mount -o loop "$img" "$mnt"
    fill "$mnt" "$links"
    umount "$mnt"
    e2fsck -fn "$img" >/dev/null || { echo "build-ext4-htree.sh: $name: e2fsck -fn is not clean" >&2; exit 1; }
}

for n in "${names[@]}"; do
    case $n in
    htree-1k-csum) build "$n" 1024 8M 500 ;;
    htree-4k-csum) build "$n" 4096 24M 6500 ;;
    htree-1k-nocsum) build "$n" 1024 8M 500 -O ^metadata_csum ;;
    htree-4k-inline) build "$n" 4096 16M 0 -O inline_data ;;
    htree-1k-largedir) build "$n" 1024 48M 22000 -O large_dir ;;
    *) echo "build-ext4-htree.sh: unknown image $n" >&2; exit 2 ;;
    esac
done
