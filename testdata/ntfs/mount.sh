# Sourced by the NTFS fixtures: `ntfs_mount IMG DIR` mounts IMG through ntfs-3g, `ntfs_umount
# DIR` unmounts it and waits for the ntfs-3g daemon to exit. On an image file ntfs-3g is a plain
# FUSE mount, whose `umount` does not wait for the daemon (only fuseblk does): a script that reads
# or edits the image right after (ntfsinfo, a python edit of a record) must not race its last
# writes.
ntfs_mount() {
  # By its absolute path: ntfsinfo refuses an image a mount of the same name (another test's
  # vol.img) seems to hold.
  ntfs-3g -o no_detach "$(realpath "$1")" "$2" >/dev/null 2>&1 &
  NTFS3G_PID=$!
  local _
  for _ in $(seq 400); do
    mountpoint -q "$2" && return 0
    kill -0 "$NTFS3G_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "ntfs-3g did not mount $1 on $2" >&2
  return 1
}
ntfs_umount() {
  umount "$1"
  wait "$NTFS3G_PID"
}
