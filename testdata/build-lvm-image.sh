#!/usr/bin/env bash
# Build an LVM image with the real LVM tools, without device-mapper (none is needed: nothing is
# activated). Layout: GPT, p1 BIOS boot, p2 an LVM PV holding volume group `rootvg` with a linear
# LV `root` in TWO segments (created, then another LV, then extended) and an LV `spare`.
# The filesystem image FSIMG is written into the LV's extents at the ranges `lvs` reports.
#
# usage: build-lvm-image.sh OUT.img FSIMG
set -euo pipefail
out=$1
fsimg=$2
for t in sgdisk losetup pvcreate vgcreate lvcreate lvextend lvs; do
  command -v "$t" >/dev/null || { echo "build-lvm-image.sh: missing tool $t (apt-get install gdisk mount lvm2)" >&2; exit 1; }
done
export LVM_SUPPRESS_FD_WARNINGS=1
# Keep LVM away from the host's own devices and caches.
cfg='devices { use_devicesfile = 0 }'
lvm_() { "$@" --driverloaded n --config "$cfg" 2>&1 | grep -v -e 'Activation disabled' -e 'not zeroed' -e 'WARNING: ' >&2 || true; }

fs_bytes=$(stat -c %s "$fsimg")
extent=$((4 * 1024 * 1024))
fs_extents=$(( (fs_bytes + extent - 1) / extent ))
half=$(( (fs_extents + 1) / 2 ))
rest=$(( fs_extents - half ))
[ "$rest" -ge 1 ] || rest=1

rm -f "$out"
truncate -s $(( (fs_extents + 6) * extent + 4 * 1024 * 1024 )) "$out"
sgdisk -U 8D6E0A6B-0000-4000-8000-000000000001 \
  -n1:2048:+1M -t1:EF02 -c1:bios \
  -n2:0:0 -t2:8E00 -c2:lvm "$out" >/dev/null
start=$(sgdisk -i2 "$out" | awk '/First sector/ {print $3}')
end=$(sgdisk -i2 "$out" | awk '/Last sector/ {print $3}')
off=$((start * 512))
size=$(( (end - start + 1) * 512 ))

loop=$(losetup -f --show -o "$off" --sizelimit "$size" "$out")
trap 'losetup -d "$loop" 2>/dev/null || true' EXIT
vg=rootvg
lvm_ pvcreate -ff -y -u 0000AAAA-BBBB-CCCC-DDDD-EEEEFFFF0001 --norestorefile "$loop"
lvm_ vgcreate -s 4m "$vg" "$loop"
lvm_ lvcreate -an -Zn -y -l "$half" -n root "$vg"
lvm_ lvcreate -an -Zn -y -l 1 -n spare "$vg"
lvm_ lvextend -l +"$rest" "$vg/root"

pe_start=$(pvs --driverloaded n --config "$cfg" --noheadings --units b --nosuffix -o pe_start "$loop" 2>/dev/null | tr -d ' ')
segments=$(lvs --driverloaded n --config "$cfg" --noheadings -o seg_start_pe,seg_pe_ranges "$vg/root" 2>/dev/null)
nseg=$(printf '%s\n' "$segments" | grep -c .)
[ "$nseg" -eq 2 ] || { echo "build-lvm-image.sh: expected 2 segments, got: $segments" >&2; exit 1; }
# Each line: <LV start extent> <dev>:<first PE>-<last PE>
while read -r lv_start range; do
  pe_first=${range##*:}; pe_first=${pe_first%-*}
  pe_last=${range##*-}
  count=$(( pe_last - pe_first + 1 ))
  python3 - "$fsimg" "$out" $((lv_start * extent)) $((off + pe_start + pe_first * extent)) $((count * extent)) <<'PY'
import sys
src, dst, s_off, d_off, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with open(src, 'rb') as f, open(dst, 'r+b') as g:
    f.seek(s_off); data = f.read(n)
    g.seek(d_off); g.write(data)
PY
done <<< "$segments"
vgchange --driverloaded n --config "$cfg" -an "$vg" >/dev/null 2>&1 || true
echo "built $out: PV at byte $off, pe_start $pe_start, root segments: $(echo $segments)" >&2
