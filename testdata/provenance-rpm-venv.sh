#!/usr/bin/env bash
# Vendor content against planted content where rpm and pip installed it: a package made here
# with `rpmbuild` is installed by `rpm --root --nodeps` into a tree (rpm's sqlite database), and
# a Python distribution made here as a wheel is installed by pip into a virtualenv
# (`python3 -m venv`) in the same tree, so that its `RECORD` lists each file's SHA-256. The tree
# is copied through a loop mount into the ext4 image WORK/rpm-venv.img.
#
#   vendor-rpm 1.0-1 (rpm) ships
#     /usr/share/doc/vendor-rpm/example-key.pem   a fresh PEM key (vendor content)
#     /usr/share/vendor-rpm/example.ini           an example AWS key pair (vendor content)
#     /usr/share/vendor-rpm/settings.ini          plain text (modified below)
#   vendorpy 2.0 (wheel, in /opt/app/venv) ships
#     vendorpy/keys.py       a fresh PEM key in a string (vendor content; pip compiles it)
#     vendorpy/settings.py   plain code (modified below)
#   then, as an image builder would, an AWS key pair is appended to settings.ini and to
#   settings.py (their digests now differ from rpm's and from RECORD's).
#
#   testdata/provenance-rpm-venv.sh WORK
#
# WORK/expect.tsv lists `path<TAB>what` (vendor, compiled, modified) for the test. Needs root,
# loop devices, rpm (rpmbuild), python3 with venv and pip (python3-venv), openssl, e2fsprogs.
set -euo pipefail
work=${1:?usage: provenance-rpm-venv.sh WORK}
export LC_ALL=C TZ=UTC
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)

rand() { python3 -c 'import secrets,string,sys; a={"up":string.ascii_uppercase+string.digits,"b64":string.ascii_letters+string.digits+"/+"}[sys.argv[1]]; print("".join(secrets.choice(a) for _ in range(int(sys.argv[2]))))' "$@"; }
aws_pair() { printf 'aws_access_key_id = AKIA%s\naws_secret_access_key = %s\n' "$(rand up 16)" "$(rand b64 40)"; }

# The rpm package, with fresh content.
src=$work/src
mkdir -p "$src"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$src/example-key.pem" 2>/dev/null
{ printf '[example]\n'; aws_pair; } > "$src/example.ini"
printf '[vendor-rpm]\nlisten = 127.0.0.1\n' > "$src/settings.ini"
cat > "$work/vendor-rpm.spec" <<EOF
Name:           vendor-rpm
Version:        1.0
Release:        1
Summary:        files with example keys, as vendors ship them
License:        MIT
BuildArch:      noarch
%define debug_package %{nil}
%define __os_install_post %{nil}

%description
Files with example keys.

%install
mkdir -p %{buildroot}/usr/share/doc/vendor-rpm %{buildroot}/usr/share/vendor-rpm
cp $src/example-key.pem %{buildroot}/usr/share/doc/vendor-rpm/
cp $src/example.ini $src/settings.ini %{buildroot}/usr/share/vendor-rpm/

%files
/usr/share/doc/vendor-rpm/example-key.pem
/usr/share/vendor-rpm/example.ini
/usr/share/vendor-rpm/settings.ini
EOF
rpmbuild -bb --quiet --define "_topdir $work/rpmbuild" "$work/vendor-rpm.spec" >/dev/null 2>"$work/rpmbuild.log" \
  || { cat "$work/rpmbuild.log" >&2; exit 1; }
pkg=$(find "$work/rpmbuild/RPMS" -name 'vendor-rpm-*.rpm' | head -n 1)
tree=$work/tree
mkdir -p "$tree/var/lib/rpm"
rpm --root "$tree" --dbpath /var/lib/rpm --define '_db_backend sqlite' \
  -i --nodeps --noscripts --nosignature --nodigest "$pkg"
[ -f "$tree/var/lib/rpm/rpmdb.sqlite" ] || { echo "rpm wrote no rpmdb.sqlite" >&2; exit 1; }

# The wheel, built by hand (a zip with its dist-info), and the virtualenv pip installs it into.
python3 - "$work" <<'PY'
import base64, hashlib, subprocess, sys, zipfile
work = sys.argv[1]
key = subprocess.run(['openssl', 'genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
                     check=True, capture_output=True, text=True).stdout
files = {
    'vendorpy/__init__.py': '',
    'vendorpy/keys.py': f'EXAMPLE_KEY = """\\\n{key}"""\n',
    'vendorpy/settings.py': 'HOST = "127.0.0.1"\n',
    'vendorpy-2.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: vendorpy\nVersion: 2.0\n',
    'vendorpy-2.0.dist-info/WHEEL': 'Wheel-Version: 1.0\nGenerator: amiscan-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
}
def entry(name, body):
    d = base64.urlsafe_b64encode(hashlib.sha256(body.encode()).digest()).rstrip(b'=').decode()
    return f'{name},sha256={d},{len(body.encode())}\n'
record = ''.join(entry(n, b) for n, b in files.items()) + 'vendorpy-2.0.dist-info/RECORD,,\n'
with zipfile.ZipFile(f'{work}/vendorpy-2.0-py3-none-any.whl', 'w') as z:
    for n, b in files.items():
        z.writestr(n, b)
    z.writestr('vendorpy-2.0.dist-info/RECORD', record)
PY
mkdir -p "$tree/opt/app"
python3 -m venv "$tree/opt/app/venv"
"$tree/opt/app/venv/bin/pip" install --quiet --no-index --no-deps --disable-pip-version-check \
  "$work/vendorpy-2.0-py3-none-any.whl"
site=$(cd "$tree" && ls -d opt/app/venv/lib/python3*/site-packages)
[ -f "$tree/$site/vendorpy-2.0.dist-info/RECORD" ] || { echo "pip wrote no RECORD" >&2; exit 1; }
pyc=$(cd "$tree" && ls "$site"/vendorpy/__pycache__/keys.*.pyc)

# The builder's leaks.
aws_pair >> "$tree/usr/share/vendor-rpm/settings.ini"
{ printf 'AWS_KEYS = """\n'; aws_pair; printf '"""\n'; } >> "$tree/$site/vendorpy/settings.py"

# Into a filesystem the kernel writes.
img=$work/rpm-venv.img m=$work/mnt
truncate -s 512M "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$m"
trap 'umount "'"$m"'" 2>/dev/null || true' EXIT
mount -o loop "$img" "$m"
cp -a "$tree/." "$m/"
umount "$m"
trap - EXIT
rmdir "$m"
e2fsck -fn "$img" >/dev/null 2>&1 || { echo "provenance-rpm-venv: e2fsck -fn failed" >&2; exit 1; }
printf '%s\t%s\n' \
  /usr/share/doc/vendor-rpm/example-key.pem vendor \
  /usr/share/vendor-rpm/example.ini vendor \
  /usr/share/vendor-rpm/settings.ini modified \
  "/$site/vendorpy/keys.py" vendor \
  "/$pyc" compiled \
  "/$site/vendorpy/settings.py" modified > "$work/expect.tsv"
