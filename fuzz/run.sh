#!/usr/bin/env bash
# Run every fuzz target (or those in TARGETS) for SECONDS each (default 120). Needs cargo-fuzz
# (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1 lets it pass its -Z
# flags. Targets are built with debug assertions, so an arithmetic overflow is a crash too, and
# without AddressSanitizer (`-s none`): amiscan forbids unsafe code, and ASan's allocator made
# the filesystem targets 5-10x slower.
# Seeds: the first MiB of each test image (partitions), small LVM metadata texts (lvm), a
# base XFS image from mkfs.xfs (xfs: the input patches its metadata sectors), a base btrfs
# image from mkfs.btrfs --rootdir (btrfs: patches to its tree blocks, checksums made valid), base ext2/3/4
# images from mke2fs and debugfs (ext4: likewise, see build-ext4-bases.sh), and a real rpm
# header blob and Berkeley DB `Packages` files from rpm and db5.3_load (rpmdb); small qcow2, VMDK,
# VHD and VHDX images from qemu-img (qcow2, vmdk, vhd, vhdx); small archives from GNU tar in
# its gnu (long names, sparse) and pax (sparse 1.0) formats, with hard and symbolic links (tar);
# registry hives written by hivexsh and shortcuts by mklnk.py (windows, testdata/ntfs/); a small
# NTFS volume from mkntfs written by ntfs-3g (ntfs).
# Each target's libFuzzer output is kept in logs/TARGET.log.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-120}
targets=${TARGETS:-partitions lvm xfs btrfs ext4 rpmdb qcow2 vmdk vhd vhdx sbom_manifests tar windows ntfs}
export RUSTC_BOOTSTRAP=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p logs
wants() { [[ " $targets " == *" $1 "* ]]; }

if wants partitions; then
  mkdir -p corpus/partitions
  bash ../testdata/build-images.sh "$work/img" >/dev/null
  for f in "$work"/img/*.img; do head -c 1048576 "$f" > "corpus/partitions/$(basename "$f")"; done
fi
if wants sbom_manifests; then
  # What testdata/sbom-languages.sh makes: npm manifests, a JAR holding a JAR, ELF programs with
  # Go build info and a cargo-auditable section (needs root for its loop mount).
  mkdir -p corpus/sbom_manifests
  bash ../testdata/sbom-languages.sh "$work/sbom" >/dev/null
  find "$work/sbom/tree" -type f -size -2M -exec cp {} corpus/sbom_manifests/ \; 2>/dev/null || true
fi
if wants lvm; then
  mkdir -p corpus/lvm
  printf 'vg0 {\nextent_size = 8\nphysical_volumes { pv0 { id = "0000AAAABBBBCCCCDDDDEEEEFFFF0001" pe_start = 2048 } }\nlogical_volumes { root { segment1 { start_extent = 0 extent_count = 1 type = "striped" stripe_count = 1 stripes = ["pv0", 0] } } }\n}\n' > corpus/lvm/seed
fi
if wants xfs; then
  mkdir -p corpus/xfs "$work/tree/a/b"
  echo hi > "$work/tree/a/b/f" && ln -s /etc/x "$work/tree/l"
  for i in $(seq 1 40); do echo "$i" > "$work/tree/a/f$i"; done
  python3 ../testdata/mkfs-xfs-tree.py "$work/tree" "$work/xfs.img" 16m -d agcount=1 -m crc=0 >/dev/null 2>&1
  export AMISCAN_FUZZ_XFS_BASE=$work/xfs.img
  echo seed > corpus/xfs/seed
fi
if wants btrfs; then
  mkdir -p corpus/btrfs "$work/btree/a/b"
  echo hi > "$work/btree/a/b/f" && ln -s /etc/x "$work/btree/l" && seq 1 20000 > "$work/btree/n"
  for i in $(seq 1 60); do echo "$i" > "$work/btree/a/f$i"; done
  truncate -s 120M "$work/btrfs.img"
  mkfs.btrfs -q -f -m single --rootdir "$work/btree" --shrink "$work/btrfs.img" >/dev/null
  export AMISCAN_FUZZ_BTRFS_BASE=$work/btrfs.img
  echo seed > corpus/btrfs/seed
fi
if wants ext4; then
  mkdir -p corpus/ext4
  bash build-ext4-bases.sh "$work/ext4" >/dev/null
  export AMISCAN_FUZZ_EXT4_BASES=$work/ext4/list
  # One seed per base image (the first byte picks it), without patches.
  n=$(wc -l <"$work/ext4/list")
  for ((i = 0; i < n; i++)); do printf "\\x$(printf %02x "$i")" > "corpus/ext4/base$i"; done
fi
if wants rpmdb; then
  mkdir -p corpus/rpmdb
  if bash ../testdata/build-rpm-tree.sh "$work/rpm" >/dev/null 2>&1; then
    cp "$work/rpm/bdb-tree/var/lib/rpm/Packages" corpus/rpmdb/Packages
    sqlite3 "$work/rpm/sqlite-tree/var/lib/rpm/rpmdb.sqlite" \
      "SELECT writefile('$work/rpm/header', blob) FROM Packages LIMIT 1" >/dev/null
    cp "$work/rpm/header" corpus/rpmdb/header
    # Small pages: the header goes to a chain of overflow pages.
    db5.3_load -t hash -c db_pagesize=512 -f "$work/rpm/packages.dump" "$work/rpm/Packages-512"
    cp "$work/rpm/Packages-512" corpus/rpmdb/Packages-512
  else
    echo "rpmdb seeds need rpm, rpmbuild, sqlite3 and db5.3_load: starting from one byte" >&2
    echo seed > corpus/rpmdb/seed
  fi
fi
if wants windows; then
  mkdir -p corpus/windows "$work/hives"
  bash ../testdata/ntfs/hives.sh "$work/hives" leaky >/dev/null
  for f in SAM SECURITY SOFTWARE NTUSER-Administrator.DAT; do cp "$work/hives/$f" "corpus/windows/$f"; done
  # Shortcuts: one with LinkInfo and shell items, one with shell items only.
  python3 ../testdata/ntfs/mklnk.py corpus/windows/full.lnk 'C:\Tools\sync.exe' '-q'
  python3 ../testdata/ntfs/mklnk.py --shell-items-only corpus/windows/items.lnk \
    'C:\Users\Public\Tools\updater.exe' ''
fi
if wants ntfs; then
  # A 2 MiB volume (mkntfs's smallest) with a directory index, a stream, a compressed file.
  mkdir -p corpus/ntfs "$work/nm"
  truncate -s 2M "$work/ntfs.img" && mkntfs -Q -q -F "$work/ntfs.img" >/dev/null 2>&1
  mount -t ntfs-3g -o loop "$work/ntfs.img" "$work/nm"
  mkdir "$work/nm/d" "$work/nm/c"
  (cd "$work/nm/d" && seq -f 'entry-%03g.txt' 1 100 | xargs touch)
  setfattr -n user.ads -v stream "$work/nm/d/entry-001.txt"
  setfattr -h -v 0x00000800 -n system.ntfs_attrib_be "$work/nm/c" && seq 1 3000 > "$work/nm/c/packed.txt"
  umount "$work/nm"
  cp "$work/ntfs.img" corpus/ntfs/vol.img
fi
# Containers: small images from qemu-img (a 4 MiB disk with some data), less the magic the
# target puts back in front.
if wants qcow2 || wants vmdk || wants vhd || wants vhdx; then
  head -c 65536 /dev/urandom > "$work/raw" && truncate -s 4M "$work/raw"
  seed() { # target format options... (name by options)
    local t=$1 fmt=$2 n=$3; shift 3
    mkdir -p "corpus/$t"
    qemu-img convert -O "$fmt" "$@" "$work/raw" "$work/$t-$n"
    tail -c +$(( $(case $t in qcow2|vmdk) echo 4;; *) echo 8;; esac) + 1 )) "$work/$t-$n" > "corpus/$t/$n"
  }
  if wants qcow2; then seed qcow2 qcow2 plain; seed qcow2 qcow2 zlib -c; seed qcow2 qcow2 zstd -c -o compression_type=zstd; fi
  if wants vmdk; then seed vmdk vmdk sparse; seed vmdk vmdk stream -o subformat=streamOptimized; fi
  if wants vhd; then seed vhd vpc dynamic; fi
  if wants vhdx; then seed vhdx vhdx plain -o block_size=1M; fi
fi

if wants tar; then
  mkdir -p corpus/tar "$work/t/etc" "$work/t/$(printf 'd%.0s' {1..120})"
  printf 'root:x:0:0::/root:/bin/sh\n' > "$work/t/etc/passwd"
  ln "$work/t/etc/passwd" "$work/t/etc/passwd-"
  ln -s /etc/passwd "$work/t/etc/link"
  printf 'x' > "$work/t/$(printf 'd%.0s' {1..120})/f"
  printf 'head' > "$work/t/sparse" && truncate -s 70000 "$work/t/sparse" && printf 'tail' >> "$work/t/sparse"
  tar -C "$work/t" --format=gnu --sparse -cf corpus/tar/gnu .
  tar -C "$work/t" --format=posix --sparse -cf corpus/tar/pax .
  tar -C "$work/t" --format=ustar -cf corpus/tar/ustar etc
fi

status=0
for t in $targets; do
  echo "== $t: ${secs}s"
  # The image targets take patch lists: let inputs reach full length from the start.
  extra=()
  [[ $t == xfs || $t == ext4 ]] && extra=(-len_control=0 -max_len=2048)
  if ! cargo fuzz run -O -a -s none "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      "${extra[@]}" >"logs/$t.log" 2>&1; then
    status=1
  fi
  grep -E '^(#[0-9]+.*(DONE|pulse)|Done|==.*ERROR|SUMMARY|artifact|.*panicked)' "logs/$t.log" | tail -4
done
exit $status
