# Sourced by the NTFS fixtures: `ntfs_mount IMG DIR` mounts IMG through ntfs-3g, `ntfs_umount
# DIR` unmounts it and waits for the ntfs-3g daemon to exit; `ntfs_new IMG DIR SIZE [MKNTFS
# OPTION...]` makes a new volume of SIZE (truncate's units) with mkntfs, mounts it on DIR and
# unmounts it on exit; `fake_aws_pair` prints a freshly generated fake AWS key pair. On an image file ntfs-3g is a plain
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
ntfs_new() {
  local img=$1 dir=$2 size=$3
  shift 3
  rm -f "$img"
  truncate -s "$size" "$img" && mkntfs -Q -q -F "$@" "$img" >/dev/null 2>&1
  mkdir -p "$dir" && ntfs_mount "$img" "$dir"
  # shellcheck disable=SC2064 # the directory is known now
  trap "mountpoint -q '$dir' && umount '$dir'" EXIT
}
fake_aws_pair() {
  printf 'aws_access_key_id = AKIA%s\naws_secret_access_key = %s\n' \
    "$(tr -dc 'A-Z2-7' </dev/urandom | head -c 16)" "$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)"
}
