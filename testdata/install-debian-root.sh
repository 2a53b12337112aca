#!/usr/bin/env bash
# An installed Debian system on disk images written by the kernel, the way cloud images are made:
# `mmdebstrap` installs bookworm (openssh-server, sudo, cloud-init, python3, git and the cloud
# kernel) once into CACHE/root, then the tree is copied through a loop mount, with a few freshly
# generated leaks planted in its biggest directories, into four images in WORK:
#
#   ext4-4k.img   ext4, mkfs.ext4 defaults (4 KiB blocks)
#   ext4-1k.img   ext4, 1 KiB blocks (-b 1024): more and deeper hashed directories
#   xfs.img       XFS, mkfs.xfs defaults
#   gpt.img       a cloud-image disk: GPT with a BIOS boot partition (14, EF02), an ESP (15,
#                 EF00, FAT, holding the kernel and initrd the way systemd-boot lays them out)
#                 and the ext4 root (1, 8300); written through losetup -o/--sizelimit
#
#   testdata/install-debian-root.sh CACHE WORK
#
# For each image, WORK/NAME.files lists the regular files the kernel shows on the mounted root
# (`find -type f`, one absolute path a line, sorted), and WORK/gpt-esp.files those of the ESP.
# WORK/plants.tsv lists the planted leaks: `rule<TAB>path`. The images are built in parallel.
#
# Needs root, loop devices, mmdebstrap and the Debian archive (the mirror is read from
# /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list), e2fsprogs, xfsprogs, dosfstools,
# gdisk, openssh-client, openssl and python3. CACHE/root is reused once complete.
set -euo pipefail
cache=${1:?usage: install-debian-root.sh CACHE WORK}
work=${2:?usage: install-debian-root.sh CACHE WORK}
mkdir -p "$cache" "$work"
root=$cache/root

# The installed system, once.
if [ ! -e "$cache/root.complete" ]; then
  rm -rf "$root" "$root.partial"
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -E '^(URIs:|deb )' | grep -oE '[a-z]+://[^ ]+' | grep -E '/debian/?$' | head -1 || true)
  if [ -z "$mirror" ]; then
    echo "install-debian-root.sh: no Debian mirror in /etc/apt/sources.list{,.d/*.sources}" >&2
    exit 1
  fi
  mmdebstrap --quiet --variant=important \
    --include=openssh-server,sudo,cloud-init,python3,git,linux-image-cloud-amd64 \
    bookworm "$root.partial" "$mirror"
  mv "$root.partial" "$root"
  touch "$cache/root.complete"
fi

# The leaks, fresh for every run, in a tree laid out like the root: a private SSH key among the
# programs, an AWS key pair in the package documentation, a TLS key in /etc, a Slack token among
# dpkg's package scripts. Those are the biggest directories of the system (hashed on ext4, node
# or leaf directories on XFS).
plants=$work/plants
rm -rf "$plants"
mkdir -p "$plants/usr/bin" "$plants/usr/share/doc/backup-agent" "$plants/etc" "$plants/var/lib/dpkg/info"
ssh-keygen -q -t ed25519 -N '' -C '' -f "$plants/usr/bin/deploy_id_ed25519"
rm "$plants/usr/bin/deploy_id_ed25519.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$plants/etc/backup-signing.key" 2>/dev/null
python3 - "$plants" <<'PY'
import secrets, string, sys
root = sys.argv[1]
def rand(alphabet, n):
    return ''.join(secrets.choice(alphabet) for _ in range(n))
up = string.ascii_uppercase + string.digits
b64 = string.ascii_letters + string.digits + '/+'
alnum = string.ascii_letters + string.digits
with open(f'{root}/usr/share/doc/backup-agent/credentials', 'w') as f:
    f.write(f'[default]\naws_access_key_id = AKIA{rand(up, 16)}\n'
            f'aws_secret_access_key = {rand(b64, 40)}\nregion = eu-west-1\n')
with open(f'{root}/var/lib/dpkg/info/chat-notify.token', 'w') as f:
    f.write(f'SLACK_BOT_TOKEN=xoxb-{rand(string.digits, 11)}-{rand(string.digits, 13)}-{rand(alnum, 24)}\n')
PY
chmod 600 "$plants/etc/backup-signing.key"
printf '%s\t%s\n' \
  openssh-private-key /usr/bin/deploy_id_ed25519 \
  aws-access-key-pair /usr/share/doc/backup-agent/credentials \
  pem-private-key /etc/backup-signing.key \
  slack-token /var/lib/dpkg/info/chat-notify.token > "$work/plants.tsv"

# The regular files the kernel shows under mount point $1, into $2.
list() { (cd "$1" && find . -type f -printf '/%P\n' | LC_ALL=C sort) > "$2"; }

# Copy the root and the plants into the filesystem mounted at $1.
fill() { cp -a "$root/." "$1/"; cp -a "$plants/." "$1/"; }

# One bare filesystem image: NAME MKFS...
bare() {
  local name=$1; shift
  local img=$work/$name.img m=$work/mnt-$name
  rm -f "$img"; truncate -s 2G "$img"
  "$@" "$img" >/dev/null
  mkdir -p "$m"
  trap 'umount "'"$m"'" 2>/dev/null || true' EXIT
  mount -o loop "$img" "$m"
  fill "$m"
  list "$m" "$work/$name.files"
  umount "$m"
  trap - EXIT
  # The filesystem itself is sound.
  case $1 in
    mkfs.xfs) xfs_repair -n "$img" >/dev/null 2>&1 || { echo "$name: xfs_repair -n failed" >&2; exit 1; } ;;
    *) e2fsck -fn "$img" >/dev/null 2>&1 || { echo "$name: e2fsck -fn failed" >&2; exit 1; } ;;
  esac
}

# The cloud-image disk.
gpt() {
  local img=$work/gpt.img m=$work/mnt-gpt esp_dev='' root_dev=''
  rm -f "$img"; truncate -s 3G "$img"
  sgdisk -n14:2048:+4M -t14:EF02 "$img" >/dev/null
  sgdisk -n15:0:+106M -t15:EF00 "$img" >/dev/null
  sgdisk -n1:0:0 -t1:8300 "$img" >/dev/null
  part() { # partition number -> "offset size" in bytes
    sgdisk -i"$1" "$img" | awk '/First sector/{f=$3} /Last sector/{l=$3} END {printf "%.0f %.0f\n", f*512, (l-f+1)*512}'
  }
  mkdir -p "$m"
  trap 'umount "'"$m"'" 2>/dev/null
        [ -n "$esp_dev" ] && losetup -d "$esp_dev"; [ -n "$root_dev" ] && losetup -d "$root_dev"; true' EXIT
  read -r off size < <(part 1)
  root_dev=$(losetup -f --show -o "$off" --sizelimit "$size" "$img")
  read -r off size < <(part 15)
  esp_dev=$(losetup -f --show -o "$off" --sizelimit "$size" "$img")
  mkfs.ext4 -q -F "$root_dev"
  mkfs.vfat -F 32 "$esp_dev" >/dev/null
  losetup -d "$esp_dev"; esp_dev=''
  mount "$root_dev" "$m"
  fill "$m"
  mkdir -p "$m/boot/efi"
  # The kernel and initrd on the ESP with a boot-loader entry, as systemd-boot installs them.
  # mtools writes it: FAT is the one filesystem here a container's kernel may not mount, and
  # amiscan's FAT reader is not what this test is about.
  local kernel initrd
  kernel=$(basename "$m"/boot/vmlinuz-*); initrd=$(basename "$m"/boot/initrd.img-*)
  printf 'title Debian\nlinux /debian/%s\ninitrd /debian/%s\noptions root=LABEL=root ro console=ttyS0\n' \
    "$kernel" "$initrd" > "$work/debian.conf"
  local esp
  esp="$img@@$(part 15 | cut -d' ' -f1)"
  mmd -i "$esp" ::/loader ::/loader/entries ::/debian
  mcopy -i "$esp" "$m/boot/$kernel" "$m/boot/$initrd" ::/debian/
  mcopy -i "$esp" "$work/debian.conf" ::/loader/entries/
  rm "$work/debian.conf"
  mdir -/ -b -i "$esp" :: | grep -v '/$' | sed 's|^::||' | LC_ALL=C sort > "$work/gpt-esp.files"
  list "$m" "$work/gpt.files"
  umount "$m"
  e2fsck -fn "$root_dev" >/dev/null 2>&1 || { echo "gpt: e2fsck -fn failed" >&2; exit 1; }
  losetup -d "$root_dev"; root_dev=''
  trap - EXIT
}

pids=()
(bare ext4-4k mkfs.ext4 -q -F) & pids+=($!)
(bare ext4-1k mkfs.ext4 -q -F -b 1024) & pids+=($!)
(bare xfs mkfs.xfs -q -f) & pids+=($!)
(gpt) & pids+=($!)
failed=0
for p in "${pids[@]}"; do wait "$p" || failed=1; done
rmdir "$work"/mnt-* 2>/dev/null || true
if [ "$failed" -ne 0 ]; then
  echo "install-debian-root.sh: an image could not be built" >&2
  exit 1
fi
