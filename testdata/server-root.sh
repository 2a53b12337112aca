#!/usr/bin/env bash
# A Debian bookworm server root, the kind of image issue 23 was found on: `mmdebstrap` installs
# nginx, PostgreSQL, a JRE, awscli, python3-boto3 and ansible beside openssh-server, sudo and
# cloud-init, once, into CACHE/root (about 60,000 files). The tree is copied through a loop mount
# into an XFS image WORK/server.img (the kernel writes every file), and an image builder's leaks
# are planted into it, fresh for every run:
#
#   /usr/share/nginx/html/index.html    an AWS key pair appended to a file nginx-common ships
#                                       (its MD5 now differs from md5sums)
#   /usr/lib/python3/dist-packages/botocore/.deploy-token
#                                       a Slack token in a new file among botocore's files
#   /opt/shop/.env                      a PostgreSQL connection string and a Stripe live key
#   /etc/nginx/conf.d/backend.conf      an HTTP Basic `Authorization` header for a proxied backend
#
#   testdata/server-root.sh CACHE WORK
#
# WORK/plants.tsv lists `rule<TAB>severity<TAB>path` for the test. Needs root, loop devices,
# mmdebstrap and the Debian archive (the mirror as install-debian-root.sh finds it), xfsprogs,
# python3.
set -euo pipefail
cache=${1:?usage: server-root.sh CACHE WORK}
work=${2:?usage: server-root.sh CACHE WORK}
mkdir -p "$cache" "$work"
root=$cache/root

if [ ! -e "$cache/root.complete" ]; then
  rm -rf "$root" "$root.partial"
  mirror=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -E '^(URIs:|deb )' | grep -oE '[a-z]+://[^ ]+' | grep -E '/debian/?$' | head -1 || true)
  if [ -z "$mirror" ]; then
    echo "server-root.sh: no Debian mirror in /etc/apt/sources.list{,.d/*.sources}" >&2
    exit 1
  fi
  mmdebstrap --quiet --variant=important \
    --include=openssh-server,sudo,cloud-init,nginx,postgresql,default-jre-headless,awscli,python3-boto3,ansible \
    bookworm "$root.partial" "$mirror"
  mv "$root.partial" "$root"
  touch "$cache/root.complete"
fi
[ "${SERVER_ROOT_CACHE_ONLY:-}" = 1 ] && exit 0

img=$work/server.img m=$work/mnt
rm -f "$img"; truncate -s 8G "$img"
mkfs.xfs -q -f "$img"
mkdir -p "$m"
trap 'umount "'"$m"'" 2>/dev/null || true' EXIT
mount -o loop "$img" "$m"
cp -a "$root/." "$m/"
appended=/usr/share/nginx/html/index.html
grep -q "  ${appended#/}\$" "$m"/var/lib/dpkg/info/*.md5sums \
  || { echo "server-root.sh: no package lists $appended" >&2; exit 1; }
[ -d "$m/usr/lib/python3/dist-packages/botocore" ] \
  || { echo "server-root.sh: botocore is not installed" >&2; exit 1; }
python3 - "$m" "$appended" <<'PY'
import base64, os, secrets, string, sys
m, appended = sys.argv[1], sys.argv[2]
def rand(alphabet, n):
    return ''.join(secrets.choice(alphabet) for _ in range(n))
up = string.ascii_uppercase + string.digits
b64 = string.ascii_letters + string.digits + '/+'
alnum = string.ascii_letters + string.digits
with open(m + appended, 'a') as f:
    f.write(f'<!-- aws_access_key_id = AKIA{rand(up, 16)}\n'
            f'     aws_secret_access_key = {rand(b64, 40)} -->\n')
with open(f'{m}/usr/lib/python3/dist-packages/botocore/.deploy-token', 'w') as f:
    f.write(f'SLACK_BOT_TOKEN=xoxb-{rand(string.digits, 11)}-{rand(string.digits, 13)}-{rand(alnum, 24)}\n')
os.makedirs(f'{m}/opt/shop', exist_ok=True)
with open(f'{m}/opt/shop/.env', 'w') as f:
    f.write(f'APP_ENV=production\n'
            f'DATABASE_URL=postgres://shop:{rand(alnum, 20)}@db.internal:5432/shop\n'
            f'STRIPE_SECRET_KEY=sk_live_{rand(alnum, 32)}\n')
creds = base64.b64encode(f'backend:{rand(alnum, 18)}'.encode()).decode()
with open(f'{m}/etc/nginx/conf.d/backend.conf', 'w') as f:
    f.write('location /api/ {\n    proxy_pass http://10.0.3.7:8080/;\n'
            f'    proxy_set_header Authorization "Basic {creds}";\n}}\n')
PY
umount "$m"
trap - EXIT
rmdir "$m"
xfs_repair -n "$img" >/dev/null 2>&1 || { echo "server-root.sh: xfs_repair -n failed" >&2; exit 1; }
printf '%s\t%s\t%s\n' \
  aws-access-key-pair critical "$appended" \
  slack-token critical /usr/lib/python3/dist-packages/botocore/.deploy-token \
  postgres-url-password high /opt/shop/.env \
  stripe-secret-key critical /opt/shop/.env \
  http-basic-auth-header high /etc/nginx/conf.d/backend.conf > "$work/plants.tsv"
