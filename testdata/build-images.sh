#!/usr/bin/env bash
# Build the disk images that tests/local_images.rs scans.
#
#   testdata/build-images.sh OUTDIR
#
# Writes OUTDIR/*.img, OUTDIR/staging/<tree>/ (the exact file trees put into the filesystems,
# which the tests read to know the planted secrets) and OUTDIR/layout.txt (one line per
# filesystem volume: "<image> <volume> <offset> <size> <filesystem>").
#
# Only unprivileged tools on regular files: mke2fs -d, debugfs, sgdisk, sfdisk, fdisk, dd.
# No mounting, no loop devices. Deterministic for a given e2fsprogs/util-linux/gdisk version.
# See testdata/README.md for what each image is.
set -euo pipefail

die() { echo "build-images.sh: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: build-images.sh OUTDIR"

export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C TZ=UTC
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-1704067200} # 2024-01-01T00:00:00Z
export E2FSPROGS_FAKE_TIME=$SOURCE_DATE_EPOCH

missing=()
for tool in mke2fs debugfs sgdisk sfdisk fdisk dd truncate stat head cut sed grep awk sha256sum \
    find sort cp ln touch chmod basename; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if ((${#missing[@]})); then
    die "required tool(s) not found: ${missing[*]} (Debian/Ubuntu: apt-get install e2fsprogs gdisk fdisk coreutils findutils sed grep mawk)"
fi
self=${BASH_SOURCE[0]}
[[ $self == */* ]] || self=./$self
here=$(cd "${self%/*}" && pwd)
export MKE2FS_CONFIG=$here/mke2fs.conf
[[ -f $MKE2FS_CONFIG ]] || die "missing $MKE2FS_CONFIG"

mkdir -p "$1"
out=$(cd "$1" && pwd)
stage=$out/staging
work=$out/work
rm -rf "$stage" "$work" "$out"/*.img "$out/layout.txt"
mkdir -p "$stage" "$work"
: >"$out/layout.txt"

MiB=1048576

# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------

# hex string -> bytes on stdout
hexbytes() { printf "$(sed 's/../\\x&/g' <<<"$1")"; }

# Deterministic pseudo-random bytes: prng SEED COUNT
prng() {
    local seed=$1 n=$2 i=0 hex=""
    while ((${#hex} < 2 * n)); do
        hex+=$(printf '%s-%d' "$seed" "$i" | sha256sum | cut -c1-64)
        i=$((i + 1))
    done
    hexbytes "${hex:0:$((2 * n))}"
}

# Write bytes from stdin into FILE at byte OFFSET without truncating it.
patch_at() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }

# Copy a whole file into IMAGE at byte OFFSET (offset must be a multiple of 4096).
place() { dd if="$1" of="$2" bs=4096 seek=$(($3 / 4096)) conv=notrunc,sparse status=none; }

layout() { echo "$*" >>"$out/layout.txt"; }

fsize() { stat -c %s "$1"; }

# ---------------------------------------------------------------------------------------------
# Staging trees
# ---------------------------------------------------------------------------------------------

# stage NAME TREE [OVERLAY...]: copy committed trees (later ones win) into $stage/NAME.
stage_tree() {
    local name=$1 dst=$stage/$1
    shift
    mkdir -p "$dst"
    local t
    for t in "$@"; do
        [[ -d $here/trees/$t ]] || die "missing tree testdata/trees/$t"
        cp -R "$here/trees/$t/." "$dst/"
    done
}

# The "binary": ELF-looking bytes, NULs, and the bare PEM/OpenSSH header strings that ssh and
# libcrypto binaries carry. Must never be reported.
make_fakessh() {
    {
        printf '\177ELF\002\001\001\000\000\000\000\000\000\000\000\000\003\000\076\000'
        head -c 3000 /dev/zero
        printf 'OpenSSH_9.2p1 Debian-2+deb12u2\000ssh-ed25519\000authorized_keys\000'
        printf -- '-----BEGIN RSA PRIVATE KEY-----\000'
        printf -- '-----END RSA PRIVATE KEY-----\000'
        head -c 200 /dev/zero
        printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\000'
        printf -- '-----BEGIN OPENSSH PRIVATE KEY-----\n\000-----END OPENSSH PRIVATE KEY-----\n\000'
        printf 'openssh-key-v1\000'
        printf -- '-----BEGIN PRIVATE KEY-----\000-----BEGIN ENCRYPTED PRIVATE KEY-----\000'
        head -c 3000 /dev/zero
    } >"$1"
}

# 100-byte log lines, numbered FROM .. FROM+COUNT-1
filler() {
    awk -v from="$1" -v n="$2" 'BEGIN {
        for (i = from; i < from + n; i++) {
            s = sprintf("2024-01-01T%02d:%02d:%02dZ INFO  app[4242]: GET /api/v1/items/%06d 200 %dms ua=curl/8.5.0",
                        (i / 3600) % 24, (i / 60) % 60, i % 60, i, i % 97 + 3)
            printf "%-99s\n", s
        }
    }'
}

# Append filler to FILE until it is exactly TARGET bytes long.
fill_to() {
    local file=$1 target=$2 cur lines rem
    cur=$(fsize "$file")
    ((target >= cur)) || die "big.log layout: at $cur, cannot fill to $target"
    lines=$(((target - cur) / 100))
    rem=$(((target - cur) % 100))
    filler "$cur" "$lines" >>"$file"
    if ((rem > 0)); then
        printf '%*s\n' $((rem - 1)) '' >>"$file"
    fi
    [[ $(fsize "$file") -eq $target ]] || die "big.log layout: size mismatch"
}

# /var/log/big.log (> 2 MiB): an AWS key pair whose id starts 100 bytes before the 1 MiB mark
# (the secret lies after it), and a PEM RSA key straddling the 2 MiB mark.
make_biglog() {
    local f=$1
    # shellcheck disable=SC1091
    source "$here/fragments/biglog-aws.env"
    local pre1="2024-01-01T06:12:01Z WARN  app[4242]: falling back to static credentials AWS_ACCESS_KEY_ID="
    local line2="2024-01-01T06:12:01Z WARN  app[4242]: aws_secret_access_key=$BIGLOG_AWS_SECRET"
    local pre3="2024-01-01T07:00:00Z DEBUG app[4242]: loaded deploy key:"
    : >"$f"
    fill_to "$f" $((MiB - 100 - ${#pre1}))
    printf '%s%s\n%s\n' "$pre1" "$BIGLOG_AWS_ID" "$line2" >>"$f"
    fill_to "$f" $((2 * MiB - 800 - ${#pre3} - 1))
    printf '%s\n' "$pre3" >>"$f"
    cat "$here/fragments/biglog-key.pem" >>"$f"
    filler 30000 250 >>"$f"
}

# Directories git cannot store, merged-/usr symlinks, and the generated files.
finish_root() {
    local r=$1 d
    for d in dev proc sys run tmp mnt srv media boot var/tmp var/cache var/mail var/spool \
        var/backups usr/lib usr/sbin usr/local/bin home/bob; do
        mkdir -p "$r/$d"
    done
    ln -sfn usr/bin "$r/bin"
    ln -sfn usr/sbin "$r/sbin"
    ln -sfn usr/lib "$r/lib"
    ln -sfn /usr/share/zoneinfo/Etc/UTC "$r/etc/localtime"
    make_fakessh "$r/usr/bin/fakessh"
}

# Modes, like a real system. Owners and times are set inside each filesystem by fix_inodes.
set_modes() {
    local r=$1
    find "$r" -type d -exec chmod 0755 {} +
    find "$r" -type f -exec chmod 0644 {} +
    [[ -d $r/usr/bin ]] && find "$r/usr/bin" -type f -exec chmod 0755 {} +
    [[ -d $r/tmp ]] && chmod 1777 "$r/tmp"
    [[ -d $r/var/tmp ]] && chmod 1777 "$r/var/tmp"
    [[ -d $r/root ]] && chmod 0700 "$r/root"
    [[ -d $r/home ]] && find "$r/home" -mindepth 1 -maxdepth 1 -type d -exec chmod 0750 {} +
    find "$r" -type d \( -name .ssh -o -name .aws -o -name secrets -o -name private \) -exec chmod 0700 {} +
    local f
    for f in etc/shadow etc/gshadow; do [[ -f $r/$f ]] && chmod 0640 "$r/$f"; done
    find "$r" -type f \( -name '*_key' -o -name '*.key' -o -name '*.pem' -o -name authorized_keys \
        -o -name credentials -o -name '*_history' -o \( -name 'id_*' ! -name '*.pub' \) \) -exec chmod 0600 {} +
    find "$r" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# Set owner, group and times of every inode (mke2fs -d copies them from the staging files,
# which depend on who runs the build and when; reading a staging tree bumps its atimes).
fix_inodes() {
    local fs=$1 src=$2 cmds=$work/debugfs.cmds p uid gid t
    {
        for t in atime ctime mtime crtime; do echo "sif / $t @$SOURCE_DATE_EPOCH"; done
        (cd "$src" && find . -mindepth 1 | sort) | while IFS= read -r p; do
            p=${p#.}
            uid=0 gid=0
            case $p in
                /home/alice | /home/alice/*) uid=1000 gid=1000 ;;
                /home/bob | /home/bob/*) uid=1001 gid=1001 ;;
                /etc/shadow | /etc/gshadow) gid=42 ;;
            esac
            echo "sif $p uid $uid"
            echo "sif $p gid $gid"
            for t in atime ctime mtime crtime; do echo "sif $p $t @$SOURCE_DATE_EPOCH"; done
        done
    } >"$cmds"
    local err
    err=$(debugfs -w -f "$cmds" "$fs" 2>&1 >/dev/null | grep -v '^debugfs [0-9]' || true)
    [[ -z $err ]] || die "debugfs failed on $fs: $err"
}

# mkfs FSIMG SRC SIZE_MIB BLOCKSIZE UUID LABEL
mkfs() {
    local img=$1 src=$2 size=$3 bs=$4 uuid=$5 label=$6
    rm -f "$img"
    truncate -s "${size}M" "$img" # pre-created: mke2fs then does not announce "Creating regular file"
    mke2fs -q -F -t ext4 -b "$bs" -I 256 -L "$label" -U "$uuid" \
        -E "hash_seed=$uuid,root_owner=0:0" -d "$src" "$img" "$((size * 1024 / (bs / 1024)))" ||
        die "mke2fs failed for $img from $src"
    fix_inodes "$img" "$src"
}

# ---------------------------------------------------------------------------------------------
# Partition tables
# ---------------------------------------------------------------------------------------------

# gpt SECTOR IMAGE DISKGUID ROOTFS [DATAFS]: GPT with SECTOR-byte logical sectors. p1 BIOS boot
# (1 MiB of zeros at 1 MiB), then either p2 = ROOTFS, or p2 = DATAFS and p3 = ROOTFS; 1 MiB of
# slack at the end (where the backup GPT lives), as in cloud images.
#
# Written with sfdisk (512) or fdisk -b 4096 loading the same sfdisk script (sfdisk itself only
# gained --sector-size in util-linux 2.39). GPT_TOOL=sgdisk makes sgdisk write the 512-byte
# tables instead: same layout, but every sgdisk write does sync() + sleep(1), so it is slow.
gpt() {
    local sec=$1 img=$2 guid=$3 root=$4 data=${5:-} name rs ds=0 n=2
    name=$(basename "$img")
    rs=$(fsize "$root")
    [[ -n $data ]] && ds=$(fsize "$data")
    local doff=$((2 * MiB)) roff=$((2 * MiB + ds))
    [[ -n $data ]] && n=3
    rm -f "$img"
    truncate -s $((roff + rs + MiB)) "$img"

    if [[ $sec -eq 512 && ${GPT_TOOL:-sfdisk} == sgdisk ]]; then
        local args=(-U "$guid" -n 1:2048:4095 -t 1:EF02 -c 1:"BIOS boot" -u 1:"${guid%?}1")
        [[ -n $data ]] && args+=(-n "2:$((doff / 512)):$(((doff + ds) / 512 - 1))" -t 2:8300 -c 2:data -u 2:"${guid%?}2")
        args+=(-n "$n:$((roff / 512)):$(((roff + rs) / 512 - 1))" -t "$n:8300" -c "$n:cloudimg-rootfs" -u "$n:${guid%?}$n")
        # (no -q: with gdisk 1.0.9 it makes sgdisk discard the new partitions)
        sgdisk "${args[@]}" "$img" >"$work/sgdisk.log" 2>&1 || die "sgdisk failed on $img: $(cat "$work/sgdisk.log")"
    else
        local script=$work/$name.sfdisk
        {
            echo "label: gpt"
            echo "label-id: $guid"
            echo "unit: sectors"
            echo "sector-size: $sec"
            echo "first-lba: $((sec == 512 ? 34 : 6))"
            echo
            echo "start=$((MiB / sec)), size=$((MiB / sec)), type=21686148-6449-6E6F-744E-656564454649, uuid=${guid%?}1, name=\"BIOS boot\""
            [[ -n $data ]] && echo "start=$((doff / sec)), size=$((ds / sec)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=${guid%?}2, name=\"data\""
            echo "start=$((roff / sec)), size=$((rs / sec)), type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=${guid%?}$n, name=\"cloudimg-rootfs\""
        } >"$script"
        local log
        if [[ $sec -eq 512 ]]; then
            log=$(sfdisk --no-reread --no-tell-kernel "$img" <"$script" 2>&1) || die "sfdisk failed on $img: $log"
        else
            log=$(printf 'I\n%s\nw\n' "$script" | fdisk -b "$sec" "$img" 2>&1) || die "fdisk -b $sec failed on $img: $log"
            [[ $log == *'Script successfully applied'* ]] || die "fdisk -b $sec did not apply the script on $img: $log"
        fi
    fi
    local listed
    if [[ $sec -eq 512 ]]; then
        listed=$(sgdisk -p "$img" 2>/dev/null | grep -cE '^ +[0-9]+ ' || true)
    else
        listed=$(fdisk -b "$sec" -l "$img" 2>/dev/null | grep -c "^$img[0-9]" || true)
    fi
    [[ $listed -eq $n ]] || die "$img: expected $n GPT partitions, the table lists $listed"

    if [[ -n $data ]]; then
        place "$data" "$img" "$doff"
        layout "$name p2 $doff $ds ext4"
    fi
    place "$root" "$img" "$roff"
    layout "$name p$n $roff $rs ext4"
}

# mbr IMAGE DISKID BOOTFS ROOTFS: p1 primary (boot), p2 extended, p5 logical (root).
mbr() {
    local img=$1 id=$2 boot=$3 root=$4 name bs rs
    name=$(basename "$img")
    bs=$(fsize "$boot")
    rs=$(fsize "$root")
    local p1=$MiB p2=$((MiB + bs)) p5=$((2 * MiB + bs))
    rm -f "$img"
    truncate -s $((p5 + rs)) "$img"
    sfdisk -q --no-reread --no-tell-kernel "$img" >/dev/null <<EOF || die "sfdisk failed on $img"
label: dos
label-id: $id
unit: sectors

start=$((p1 / 512)), size=$((bs / 512)), type=83, bootable
start=$((p2 / 512)), size=$(((MiB + rs) / 512)), type=5
start=$((p5 / 512)), size=$((rs / 512)), type=83
EOF
    place "$boot" "$img" "$p1"
    place "$root" "$img" "$p5"
    layout "$name p1 $p1 $bs ext4"
    layout "$name p5 $p5 $rs ext4"
}

# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------

stage_tree leaky leaky
finish_root "$stage/leaky"
make_biglog "$stage/leaky/var/log/big.log"
stage_tree clean clean
finish_root "$stage/clean"
stage_tree high clean high
finish_root "$stage/high"
stage_tree info clean info
finish_root "$stage/info"
stage_tree boot-clean boot
stage_tree boot-leaky boot boot-leaky
stage_tree data data
for t in leaky clean high info boot-clean boot-leaky data; do set_modes "$stage/$t"; done

U=3d1f6c8e-5b7a-4c2e-9f10-aa00000000
mkfs "$work/leaky-root.ext4" "$stage/leaky" 16 4096 "${U}01" cloudimg-rootfs
mkfs "$work/clean-root.ext4" "$stage/clean" 16 4096 "${U}02" cloudimg-rootfs
mkfs "$work/high-root.ext4" "$stage/high" 8 4096 "${U}03" cloudimg-rootfs
mkfs "$work/info-root.ext4" "$stage/info" 8 4096 "${U}04" cloudimg-rootfs
mkfs "$work/boot-clean.ext4" "$stage/boot-clean" 4 1024 "${U}05" boot
mkfs "$work/boot-leaky.ext4" "$stage/boot-leaky" 4 1024 "${U}06" boot
mkfs "$work/data.ext4" "$stage/data" 4 1024 "${U}07" data
mkfs "$work/demo-root.ext4" "$stage/leaky" 6 1024 "${U}08" cloudimg-rootfs

# Bare filesystems (volume id "disk").
for t in leaky clean high info; do
    cp --sparse=always "$work/$t-root.ext4" "$out/$t-bare.img"
    layout "$t-bare.img disk 0 $(fsize "$out/$t-bare.img") ext4"
done

G=6d2a7f3e-0c58-4d1e-9a43-2f0b5e1c7a
gpt 512 "$out/leaky-gpt.img" "${G}10" "$work/leaky-root.ext4"
gpt 512 "$out/clean-gpt.img" "${G}20" "$work/clean-root.ext4"
gpt 4096 "$out/leaky-gpt4k.img" "${G}30" "$work/leaky-root.ext4"
gpt 512 "$out/leaky-2vol-gpt.img" "${G}40" "$work/leaky-root.ext4" "$work/data.ext4"
mbr "$out/leaky-mbr.img" 0x0a1b2c3d "$work/boot-leaky.ext4" "$work/leaky-root.ext4"
mbr "$out/clean-mbr.img" 0x0a1b2c3e "$work/boot-clean.ext4" "$work/clean-root.ext4"

# The committed demo: leaky tree, GPT layout, 6 MiB ext4 with 1 KiB blocks -> a 9 MiB image.
gpt 512 "$out/demo.img" "${G}50" "$work/demo-root.ext4"

# ---- corrupt variants (all derived from leaky-2vol-gpt: p2 data at 2 MiB, p3 root after it) ----
two=$out/leaky-2vol-gpt.img
ds=$(fsize "$work/data.ext4")
p3=$((2 * MiB + ds))
rootsize=$(fsize "$work/leaky-root.ext4")
# layout.txt lists only the volumes that are still healthy.
layout "corrupt-truncated.img p2 $((2 * MiB)) $ds ext4"
layout "corrupt-zeroed-sb.img p2 $((2 * MiB)) $ds ext4"
layout "corrupt-gpt-primary.img p2 $((2 * MiB)) $ds ext4"
layout "corrupt-gpt-primary.img p3 $p3 $rootsize ext4"

# Cut inside p3, in the middle of /var/log/big.log's data: the GPT says p3 extends past the end of
# the file (the backup GPT is gone too) and big.log's second half (with its PEM key) is missing.
# The directory tree, all small files and big.log's first MiB (the AWS pair) are before the cut.
cut=$(debugfs -R 'bmap /var/log/big.log 259' "$work/leaky-root.ext4" 2>/dev/null)
[[ $cut =~ ^[0-9]+$ ]] && ((cut * 4096 < rootsize)) || die "cannot locate big.log in leaky-root.ext4 (got '$cut')"
cp --sparse=always "$two" "$out/corrupt-truncated.img"
truncate -s $((p3 + cut * 4096)) "$out/corrupt-truncated.img"

# p3's ext4 superblock zeroed (1024 bytes at partition offset + 1024). With 4 KiB blocks and a
# single block group there is no backup superblock.
cp --sparse=always "$two" "$out/corrupt-zeroed-sb.img"
head -c 1024 /dev/zero | patch_at "$out/corrupt-zeroed-sb.img" $((p3 + 1024))

# Primary GPT header (LBA 1) overwritten with pseudo-random bytes; backup header and both entry
# arrays intact.
cp --sparse=always "$two" "$out/corrupt-gpt-primary.img"
prng corrupt-gpt-primary 512 | patch_at "$out/corrupt-gpt-primary.img" 512

# MBR: entry 1 a valid ext4 (data tree), entry 2 garbage: type 0xd3, start and length far past
# the end of the 6 MiB image (start LBA 0x7fff0000, 0x00200000 sectors).
g=$out/corrupt-garbage-table.img
rm -f "$g"
truncate -s $((MiB + ds + MiB)) "$g"
sfdisk -q --no-reread --no-tell-kernel "$g" >/dev/null <<EOF || die "sfdisk failed on $g"
label: dos
label-id: 0x0a1b2c3f
unit: sectors

start=2048, size=$((ds / 512)), type=83
EOF
place "$work/data.ext4" "$g" "$MiB"
hexbytes 00feffffd3feffff0000ff7f00002000 | patch_at "$g" $((446 + 16))
layout "corrupt-garbage-table.img p1 $MiB $ds ext4"

# ---- check what we built ----
# (outputs are captured before grepping: `tool | grep -q` can fail under pipefail when grep
# exits early and the tool gets SIGPIPE)
has() { [[ $1 == *"$2"* ]]; }
for img in leaky-gpt clean-gpt leaky-2vol-gpt demo; do
    has "$(sgdisk -v "$out/$img.img" 2>&1)" 'No problems found' || die "sgdisk -v reports problems on $img.img"
done
has "$(sgdisk -v "$out/corrupt-gpt-primary.img" 2>&1)" 'invalid main GPT header' ||
    die "corrupt-gpt-primary.img: sgdisk does not see the damaged primary header"
has "$(fdisk -b 4096 -l "$out/leaky-gpt4k.img" 2>/dev/null)" 'Disklabel type: gpt' ||
    die "leaky-gpt4k.img has no GPT with 4096-byte sectors"
for img in leaky-mbr clean-mbr; do
    [[ $(sfdisk -d "$out/$img.img" | grep -c 'start=') -eq 3 ]] || die "$img.img: expected 3 MBR entries"
done
[[ $(stat -c %s "$out/demo.img") -le $((10 * MiB)) ]] || die "demo.img is larger than 10 MiB"

rm -rf "$work"
echo "build-images.sh: built $(ls "$out"/*.img | wc -l) images in $out"
