#!/usr/bin/env bash
# Language packages where applications keep them, for `amiscan sbom`: a tree copied through a
# loop mount into the ext4 image WORK/languages.img (the kernel writes every file):
#
#   /opt/web/node_modules        npm installs two packages packed here with `npm pack`
#                                (`@acme/util` 1.2.3, MIT; `widget` 0.4.0), offline
#   /opt/java/app.jar            a Spring-Boot-style JAR made by `zip`: its own pom.properties
#                                and one JAR inside it (BOOT-INF/lib) with another
#   /usr/local/bin/goapp         a program compiled by gcc, with a `.go.buildinfo` section in the
#                                Go 1.18+ layout added by objcopy (module, two deps, a replace)
#   /usr/local/bin/rustapp       a program compiled by gcc, with a `cargo auditable` `.dep-v0`
#                                section (zlib-compressed JSON) added by objcopy
#
#   testdata/sbom-languages.sh WORK
#
# WORK/expect.txt lists the purls the SBOM must hold, one a line. Needs root, loop devices,
# npm, zip, gcc, binutils (objcopy), python3, e2fsprogs.
set -euo pipefail
work=${1:?usage: sbom-languages.sh WORK}
export LC_ALL=C TZ=UTC
rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
tree=$work/tree src=$work/src
mkdir -p "$tree/opt/web" "$tree/opt/java" "$tree/usr/local/bin" "$src"

# npm: two local packages, packed and installed offline.
for spec in '@acme/util 1.2.3 MIT' 'widget 0.4.0 ISC'; do
  set -- $spec
  d=$src/npm-$(echo "$1" | tr '/@' '__')
  mkdir -p "$d"
  printf '{"name":"%s","version":"%s","license":"%s","main":"index.js"}\n' "$1" "$2" "$3" > "$d/package.json"
  echo 'module.exports = 1;' > "$d/index.js"
  (cd "$src" && npm pack --silent --pack-destination "$src" "$d" >/dev/null)
done
printf '{"name":"web","version":"1.0.0","private":true}\n' > "$tree/opt/web/package.json"
(cd "$tree/opt/web" && npm install --silent --offline --no-audit --no-fund --no-package-lock \
  --cache "$work/npm-cache" "$src"/acme-util-1.2.3.tgz "$src"/widget-0.4.0.tgz)
[ -f "$tree/opt/web/node_modules/@acme/util/package.json" ] || { echo "npm installed no @acme/util" >&2; exit 1; }

# A JAR holding a JAR.
mkdir -p "$src/inner/META-INF/maven/org.yaml/snakeyaml" "$src/outer/META-INF/maven/com.example/shop" "$src/outer/BOOT-INF/lib"
printf '#Created by Maven\nversion=2.2\ngroupId=org.yaml\nartifactId=snakeyaml\n' > "$src/inner/META-INF/maven/org.yaml/snakeyaml/pom.properties"
(cd "$src/inner" && zip -qr "$src/outer/BOOT-INF/lib/snakeyaml-2.2.jar" META-INF)
printf 'artifactId=shop\ngroupId=com.example\nversion=3.1.0\n' > "$src/outer/META-INF/maven/com.example/shop/pom.properties"
(cd "$src/outer" && zip -qr0 "$tree/opt/java/app.jar" META-INF BOOT-INF)

# Programs with the sections the Go toolchain and cargo-auditable write.
printf 'int main(void) { return 0; }\n' > "$src/main.c"
gcc -O1 -o "$src/prog" "$src/main.c"
python3 - "$src" <<'PY'
import json, sys, zlib
src = sys.argv[1]
def varstr(b):
    out, n = bytearray(), len(b)
    while n >= 0x80:
        out.append((n & 0x7f) | 0x80); n >>= 7
    out.append(n)
    return bytes(out) + b
mod = ("path\texample.com/goapp\nmod\texample.com/goapp\tv0.3.0\t\n"
       "dep\tgithub.com/gorilla/mux\tv1.8.0\th1:abc=\n"
       "dep\tgolang.org/x/net\tv0.1.0\th1:def=\n=>\tgolang.org/x/net\tv0.17.0\th1:ghi=\n").encode()
info = b"\x30\x77\xaf\x0c\x92\x74\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6" + mod + \
       b"\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2"
hdr = b"\xff Go buildinf:" + bytes([8, 2]) + bytes(16)
open(f"{src}/buildinfo", "wb").write(hdr + varstr(b"go1.21.5") + varstr(info))
deps = {"packages": [
    {"name": "rustapp", "version": "0.1.0", "source": "local", "root": True, "dependencies": [1]},
    {"name": "serde", "version": "1.0.193", "source": "crates.io"}]}
open(f"{src}/dep-v0", "wb").write(zlib.compress(json.dumps(deps).encode()))
PY
objcopy --add-section .go.buildinfo="$src/buildinfo" "$src/prog" "$tree/usr/local/bin/goapp"
objcopy --add-section .dep-v0="$src/dep-v0" "$src/prog" "$tree/usr/local/bin/rustapp"

cat > "$work/expect.txt" <<'EOT'
pkg:npm/%40acme/util@1.2.3
pkg:npm/widget@0.4.0
pkg:maven/com.example/shop@3.1.0
pkg:maven/org.yaml/snakeyaml@2.2
pkg:golang/example.com/goapp@v0.3.0
pkg:golang/github.com/gorilla/mux@v1.8.0
pkg:golang/golang.org/x/net@v0.17.0
pkg:golang/stdlib@1.21.5
pkg:cargo/rustapp@0.1.0
pkg:cargo/serde@1.0.193
EOT

# Into a filesystem the kernel writes.
img=$work/languages.img m=$work/mnt
truncate -s 64M "$img"
mkfs.ext4 -q -F "$img"
mkdir -p "$m"
trap 'umount "'"$m"'" 2>/dev/null || true' EXIT
mount -o loop "$img" "$m"
cp -a "$tree/." "$m/"
umount "$m"
trap - EXIT
rmdir "$m"
