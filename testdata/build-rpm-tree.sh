#!/usr/bin/env bash
# Build the rpm-system images that tests/rpm_database.rs scans.
#
#   testdata/build-rpm-tree.sh OUTDIR
#
# 1. rpmbuild makes testdata/rpm/amiscan-fixture.spec into a package;
# 2. rpm installs it into OUTDIR/sqlite-tree (database /var/lib/rpm/rpmdb.sqlite, rpm 4.18's
#    sqlite backend);
# 3. the tree is tampered with: /usr/bin/ps and the configuration file are rewritten, and an
#    unowned setuid file /usr/local/bin/backdoor is added;
# 4. OUTDIR/bdb-tree is the same tree whose database is the same header blobs in a Berkeley DB
#    hash file /var/lib/rpm/Packages, written by the real db5.3_load (keys: the 4-byte header
#    number, little-endian, as rpm on x86 writes them);
# 5. OUTDIR/sqlite.img and OUTDIR/bdb.img: ext4 images of the trees (mke2fs -d).
#
# Needs: rpm rpmbuild (Debian: rpm), sqlite3, db5.3_load (db5.3-util), mke2fs. Runs as root
# (the installed files keep their root ownership and setuid bit) or as any user.
set -euo pipefail

die() { echo "build-rpm-tree.sh: error: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: build-rpm-tree.sh OUTDIR"
export PATH="$PATH:/usr/sbin:/sbin"
export LC_ALL=C TZ=UTC

for tool in rpm rpmbuild sqlite3 db5.3_load mke2fs sed; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool not found (Debian: apt-get install rpm sqlite3 db5.3-util e2fsprogs)"
done

here=$(cd "$(dirname "$0")" && pwd)
out=$1
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

# 1. The package.
rpmbuild -bb --quiet --define "_topdir $out/rpmbuild" --define '_binary_payload w9.gzdio' \
    "$here/rpm/amiscan-fixture.spec" >/dev/null 2>"$out/rpmbuild.log" ||
    { cat "$out/rpmbuild.log" >&2; die "rpmbuild failed"; }
pkg=$(find "$out/rpmbuild/RPMS" -name 'amiscan-fixture-*.rpm' | head -n 1)
[[ -n $pkg ]] || die "rpmbuild made no package"

# 2. Installed into a root tree.
tree=$out/sqlite-tree
mkdir -p "$tree/var/lib/rpm"
rpm --root "$tree" --dbpath /var/lib/rpm --define '_db_backend sqlite' \
    -i --nodeps --noscripts --nosignature --nodigest "$pkg"
[[ -f $tree/var/lib/rpm/rpmdb.sqlite ]] || die "rpm wrote no rpmdb.sqlite"
[[ -u $tree/usr/sbin/fixture-helper ]] || die "the packaged setuid file lost its bit"

# 3. Tampering.
printf '#!/bin/sh\necho trojaned ps\n' > "$tree/usr/bin/ps"
printf 'setting = 2\n' > "$tree/etc/fixture.conf"
mkdir -p "$tree/usr/local/bin"
printf '#!/bin/sh\nexec /bin/sh -p\n' > "$tree/usr/local/bin/backdoor"
chmod 4755 "$tree/usr/local/bin/backdoor"

# 4. The Berkeley DB twin.
bdb=$out/bdb-tree
cp -a "$tree" "$bdb"
rm -f "$bdb"/var/lib/rpm/rpmdb.sqlite*
{
    printf 'VERSION=3\nformat=bytevalue\ntype=hash\nHEADER=END\n'
    sqlite3 "$tree/var/lib/rpm/rpmdb.sqlite" 'SELECT hnum, lower(hex(blob)) FROM Packages' |
        while IFS='|' read -r hnum blob; do
            printf ' %s\n %s\n' "$(printf '%08x' "$hnum" | sed 's/\(..\)\(..\)\(..\)\(..\)/\4\3\2\1/')" "$blob"
        done
    printf 'DATA=END\n'
} > "$out/packages.dump"
db5.3_load -t hash -f "$out/packages.dump" "$bdb/var/lib/rpm/Packages"

# 5. Images.
for t in sqlite bdb; do
    mke2fs -q -t ext4 -b 4096 -d "$out/$t-tree" -F "$out/$t.img" 32M
done
