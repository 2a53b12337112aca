#!/usr/bin/env bash
# Vendor content against planted content, on an installed Debian root: the root that
# `install-debian-root.sh` caches (CACHE/root, made by it when absent) is copied through a loop
# mount into an XFS image WORK/provenance.img, and a package made here with `dpkg-deb` is
# installed into it by `dpkg --root`, the way apt installs one:
#
#   vendor-demo 1.0-1 ships
#     /usr/share/doc/vendor-demo/example-key.pem        a fresh PEM key (vendor content)
#     /usr/share/doc/vendor-demo/settings.txt           plain text (modified below)
#     /usr/lib/python3/dist-packages/vendor_demo/keys.py   a fresh PEM key in a string
#   then, as an image builder would:
#     keys.py is compiled by python3 (py_compile, timestamp .pyc) into __pycache__;
#     an AWS key pair is appended to settings.txt (its MD5 now differs from md5sums);
#     /usr/share/doc/vendor-demo/dropped-token, a file no package lists, gets a Slack token;
#     /etc/ssl/private/ssl-cert-snakeoil.key gets a key the way ssl-cert makes it (openssl).
#
#   testdata/provenance-root.sh CACHE WORK
#
# WORK/expect.tsv lists `path<TAB>what` for the test. Needs what install-debian-root.sh needs,
# and dpkg-deb, chroot, python3.
set -euo pipefail
cache=${1:?usage: provenance-root.sh CACHE WORK}
work=${2:?usage: provenance-root.sh CACHE WORK}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$work"
if [ ! -e "$cache/root.complete" ]; then
  # Builds the cached root (and its images, which this test does not use).
  bash "$here/install-debian-root.sh" "$cache" "$work/installed-root-images"
fi
root=$cache/root

# The package.
pkg=$work/pkg
rm -rf "$pkg"
mkdir -p "$pkg/DEBIAN" "$pkg/usr/share/doc/vendor-demo" "$pkg/usr/lib/python3/dist-packages/vendor_demo"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
  -out "$pkg/usr/share/doc/vendor-demo/example-key.pem" 2>/dev/null
printf 'vendor-demo settings\nlisten = 127.0.0.1\n' > "$pkg/usr/share/doc/vendor-demo/settings.txt"
{
  printf 'EXAMPLE_KEY = """\\\n'
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null
  printf '"""\n'
} > "$pkg/usr/lib/python3/dist-packages/vendor_demo/keys.py"
touch "$pkg/usr/lib/python3/dist-packages/vendor_demo/__init__.py"
cat > "$pkg/DEBIAN/control" <<'EOF'
Package: vendor-demo
Version: 1.0-1
Architecture: all
Maintainer: amiscan tests <tests@example.invalid>
Description: files with example keys, as vendors ship them
EOF
(cd "$pkg" && find usr -type f -print0 | sort -z | xargs -0 md5sum > DEBIAN/md5sums)
dpkg-deb --root-owner-group --build "$pkg" "$work/vendor-demo.deb" >/dev/null

img=$work/provenance.img m=$work/mnt
rm -f "$img"; truncate -s 2G "$img"
mkfs.xfs -q -f "$img"
mkdir -p "$m"
trap 'umount "'"$m"'" 2>/dev/null || true' EXIT
mount -o loop "$img" "$m"
cp -a "$root/." "$m/"
# The installed system's own dpkg, as apt would run it (its users and groups are the root's).
cp "$work/vendor-demo.deb" "$m/tmp/"
chroot "$m" dpkg -i /tmp/vendor-demo.deb >/dev/null
rm "$m/tmp/vendor-demo.deb"
src=$m/usr/lib/python3/dist-packages/vendor_demo/keys.py
env -u SOURCE_DATE_EPOCH python3 - "$src" <<'PY'
import py_compile, sys, importlib.util
src = sys.argv[1]
py_compile.compile(src, cfile=importlib.util.cache_from_source(src),
                   invalidation_mode=py_compile.PycInvalidationMode.TIMESTAMP, doraise=True)
PY
pyc=$(cd "$m" && ls usr/lib/python3/dist-packages/vendor_demo/__pycache__/keys.*.pyc)
python3 - "$m" <<'PY'
import secrets, string, sys
m = sys.argv[1]
def rand(alphabet, n):
    return ''.join(secrets.choice(alphabet) for _ in range(n))
up = string.ascii_uppercase + string.digits
b64 = string.ascii_letters + string.digits + '/+'
alnum = string.ascii_letters + string.digits
with open(f'{m}/usr/share/doc/vendor-demo/settings.txt', 'a') as f:
    f.write(f'aws_access_key_id = AKIA{rand(up, 16)}\naws_secret_access_key = {rand(b64, 40)}\n')
with open(f'{m}/usr/share/doc/vendor-demo/dropped-token', 'w') as f:
    f.write(f'SLACK_BOT_TOKEN=xoxb-{rand(string.digits, 11)}-{rand(string.digits, 13)}-{rand(alnum, 24)}\n')
PY
mkdir -p "$m/etc/ssl/private"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
  -out "$m/etc/ssl/private/ssl-cert-snakeoil.key" 2>/dev/null
chmod 640 "$m/etc/ssl/private/ssl-cert-snakeoil.key"
umount "$m"
trap - EXIT
rmdir "$m"
xfs_repair -n "$img" >/dev/null 2>&1 || { echo "provenance: xfs_repair -n failed" >&2; exit 1; }
printf '%s\t%s\n' \
  /usr/share/doc/vendor-demo/example-key.pem vendor \
  /usr/lib/python3/dist-packages/vendor_demo/keys.py vendor \
  "/$pyc" compiled \
  /usr/share/doc/vendor-demo/settings.txt modified \
  /usr/share/doc/vendor-demo/dropped-token new \
  /etc/ssl/private/ssl-cert-snakeoil.key snakeoil > "$work/expect.tsv"
