#!/usr/bin/env bash
# Build a GPT disk whose last partition is an LVM2 physical volume, with the real LVM tools and
# no device-mapper (nothing is activated: `--driverloaded n`). Volume group `rootvg` holds a
# linear LV `root` in TWO segments (created, then another LV `spare`, then extended), and the
# filesystem image FSIMG is written into root's extents at the ranges `lvs` reports.
# Optional PART arguments add partitions before the PV, like the RHEL cloud-image layout:
#   IMAGE:TYPECODE:NAME   e.g. esp.img:EF00:EFI  boot.img:8300:boot
# A 1 MiB BIOS boot partition is always first.
#
# usage: build-lvm-image.sh OUT.img FSIMG [PART...]
set -euo pipefail
out=$1
fsimg=$2
shift 2
export PATH="$PATH:/usr/sbin:/sbin"
for t in sgdisk losetup pvcreate vgcreate lvcreate lvextend lvs pvs python3; do
  command -v "$t" >/dev/null || { echo "build-lvm-image.sh: missing tool $t (apt-get install gdisk mount lvm2 python3)" >&2; exit 1; }
done
export LVM_SUPPRESS_FD_WARNINGS=1
# Keep LVM away from the host's device list.
cfg='devices { use_devicesfile = 0 }'
lvm_() { "$@" --driverloaded n --config "$cfg" 2>&1 | grep -v -e 'Activation disabled' -e 'not zeroed' >&2 || true; }

MiB=1048576
extent=$((4 * MiB))
fs_bytes=$(stat -c %s "$fsimg")
fs_extents=$(( (fs_bytes + extent - 1) / extent ))
half=$(( (fs_extents + 1) / 2 ))
rest=$(( fs_extents - half ))
[ "$rest" -ge 1 ] || rest=1

parts_bytes=0
for p in "$@"; do
  img=${p%%:*}
  parts_bytes=$(( parts_bytes + ($(stat -c %s "$img") + MiB - 1) / MiB * MiB ))
done

rm -f "$out"
truncate -s $(( 4 * MiB + parts_bytes + (fs_extents + 4) * extent )) "$out"
args=(-U 8D6E0A6B-0000-4000-8000-000000000001 -n1:2048:+1M -t1:EF02 -c1:bios)
n=2
for p in "$@"; do
  IFS=: read -r img code name <<< "$p"
  args+=(-n"$n":0:+$(( ($(stat -c %s "$img") + MiB - 1) / MiB ))M -t"$n":"$code" -c"$n":"$name")
  n=$((n + 1))
done
pvn=$n
args+=(-n"$pvn":0:0 -t"$pvn":8E00 -c"$pvn":lvm)
sgdisk "${args[@]}" "$out" >/dev/null
first() { sgdisk -i"$1" "$out" | awk '/First sector/ {print $3}'; }
last() { sgdisk -i"$1" "$out" | awk '/Last sector/ {print $3}'; }
n=2
for p in "$@"; do
  img=${p%%:*}
  dd if="$img" of="$out" bs=512 seek="$(first $n)" conv=notrunc status=none
  n=$((n + 1))
done

off=$(( $(first $pvn) * 512 ))
size=$(( ($(last $pvn) - $(first $pvn) + 1) * 512 ))
loop=$(losetup -f --show -o "$off" --sizelimit "$size" "$out")
trap 'losetup -d "$loop" 2>/dev/null || true' EXIT
vg=rootvg
lvm_ pvcreate -ff -y -u 0000AAAA-BBBB-CCCC-DDDD-EEEEFFFF0001 --norestorefile "$loop"
lvm_ vgcreate -s 4m "$vg" "$loop"
lvm_ lvcreate -an -Zn -y -l "$half" -n root "$vg"
lvm_ lvcreate -an -Zn -y -l 1 -n spare "$vg"
lvm_ lvextend -l +"$rest" "$vg/root"

q() { "$@" --driverloaded n --config "$cfg" --noheadings 2>/dev/null; }
pe_start=$(q pvs --units b --nosuffix -o pe_start "$loop" | tr -d ' ')
segments=$(q lvs -o seg_start_pe,seg_pe_ranges "$vg/root")
nseg=$(printf '%s\n' "$segments" | grep -c .)
[ "$nseg" -eq 2 ] || { echo "build-lvm-image.sh: expected 2 segments, got: $segments" >&2; exit 1; }
# Each line: <LV start extent> <dev>:<first PE>-<last PE>. Copy that much of FSIMG there.
while read -r lv_start range; do
  pe_first=${range##*:}; pe_first=${pe_first%-*}
  pe_last=${range##*-}
  python3 - "$fsimg" "$out" $((lv_start * extent)) $((off + pe_start + pe_first * extent)) \
    $(( (pe_last - pe_first + 1) * extent )) <<'PY'
import sys
src, dst, s_off, d_off, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with open(src, 'rb') as f, open(dst, 'r+b') as g:
    f.seek(s_off)
    data = f.read(n)
    g.seek(d_off)
    g.write(data)
PY
done <<< "$segments"
echo "built $out: PV p$pvn at byte $off, pe_start $pe_start, root segments: $(echo $segments)" >&2
