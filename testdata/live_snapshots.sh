#!/bin/bash
# Crash-consistent snapshots of a running filesystem, and the kernel's view of each.
#
# usage: live_snapshots.sh DIR FSTYPE COUNT [MKFS OPTIONS...]
#
# Makes DIR/img (FSTYPE: xfs or ext4, mkfs defaults plus the options), mounts it, runs a
# workload in the background (creates, appends, renames, deletes, holds deleted files open,
# fsyncs some, fills a directory of 300 entries), and copies the backing file COUNT times at random moments while it runs:
# DIR/snapN.img. Each snapshot is then mounted from a copy (the kernel replays the log or
# journal) and its regular files listed with their SHA-256: DIR/snapN.truth
# (`sha256  ./path` lines, sorted). The copy is mounted read-write: a loop device made read-only
# by `-o ro` refuses recovery ("write access unavailable"). Loop devices and mounts are released on any exit.
set -euo pipefail
dir=$1 fstype=$2 count=$3
shift 3
mnt="$dir/mnt-xfs-log" kmnt="$dir/kmnt-xfs-log"
mkdir -p "$mnt" "$kmnt"
wpid=""
# The workload's last command may still hold the mount for a moment after it is killed.
unmount() {
    for _ in $(seq 1 50); do
        mountpoint -q "$1" || return 0
        umount "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    umount "$1"
}
cleanup() {
    [ -n "$wpid" ] && kill "$wpid" 2>/dev/null && wait "$wpid" 2>/dev/null || true
    unmount "$kmnt" || true
    unmount "$mnt" || true
}
trap cleanup EXIT
rm -f "$dir"/img "$dir"/snap*
truncate -s 320M "$dir/img"
case $fstype in
    xfs) mkfs.xfs -q -f "$@" "$dir/img"; kopts=loop,nouuid ;;
    ext4) mkfs.ext4 -q -F "$@" "$dir/img"; kopts=loop ;;
    *) echo "unknown fstype $fstype" >&2; exit 2 ;;
esac
mount -o loop "$dir/img" "$mnt"

workload() {
    local m=$1 i=0
    mkdir -p "$m/keep"
    while :; do
        i=$((i + 1))
        local d="$m/d$((i % 12))"
        mkdir -p "$d"
        head -c $(( (i * 7919) % 20000 + 1 )) /dev/urandom > "$d/f$i"
        if (( i % 3 == 0 )); then head -c 3000 /dev/urandom >> "$d/f$((i - 1))" 2>/dev/null || true; fi
        if (( i % 5 == 0 )); then mv "$d/f$((i - 2))" "$m/d$(((i + 5) % 12))/r$i" 2>/dev/null || true; fi
        if (( i % 7 == 0 )); then rm -f "$m/d$(((i + 3) % 12))/f$((i - 30))"; fi
        if (( i % 11 == 0 )); then dd if=/dev/urandom of="$m/keep/s$i" bs=4k count=2 conv=fsync status=none; fi
        if (( i % 13 == 0 )); then ln -sf "f$i" "$d/l$i"; fi
        if (( i % 50 == 0 )); then
            # A file deleted while held open: on the orphan list of the snapshots.
            head -c 5000 /dev/urandom > "$m/keep/open$i"
            exec {fd}<"$m/keep/open$i"
            rm -f "$m/keep/open$i"
        fi
        if (( i == 2 )); then
            # A directory of a few hundred entries: hashed (htree) on ext4, a leaf/node one on XFS.
            mkdir -p "$m/hashed"
            for j in $(seq 1 300); do echo "$j" > "$m/hashed/an-entry-with-a-longer-name-$j"; done
        fi
        if (( i % 97 == 0 )); then mkdir -p "$m/big"; for j in $(seq 1 40); do : > "$m/big/n$i-$j"; done; fi
        if (( i % 120 == 0 )); then rm -rf "$m/big"; fi
    done
}
workload "$mnt" &
wpid=$!
sleep 1
for n in $(seq 1 "$count"); do
    sleep "0.$((RANDOM % 9 + 1))"
    cp --sparse=always "$dir/img" "$dir/snap$n.img"
done
kill "$wpid"; wait "$wpid" 2>/dev/null || true; wpid=""
unmount "$mnt"
for n in $(seq 1 "$count"); do
    cp --sparse=always "$dir/snap$n.img" "$dir/oracle.img"
    mount -o "$kopts" "$dir/oracle.img" "$kmnt"
    (cd "$kmnt" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum) > "$dir/snap$n.truth"
    unmount "$kmnt"
done
rm -f "$dir/oracle.img"
