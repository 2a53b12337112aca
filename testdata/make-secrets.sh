#!/usr/bin/env bash
# Regenerate every FAKE secret planted in the fixture trees (keys, AWS keys, password hashes).
#
# The secrets are committed; run this only to rotate them. Paths never change, so
# testdata/expected/*.txt stays valid. Nothing here is a real credential: keys are freshly
# generated throwaway keys, AWS keys are random strings of the right shape.
#
# Needs: ssh-keygen, openssl (3.x).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
trees=$here/trees
frag=$here/fragments

for tool in ssh-keygen openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "make-secrets.sh: '$tool' is required" >&2; exit 127; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Random AWS-shaped strings. Real key ids use [A-Z2-7]; a subset of the [A-Z0-9] detectors match.
# (`|| true`: tr dies of SIGPIPE when head has enough, which pipefail would report.)
rand_chars() { local set=$1 n=$2 r; r=$(LC_ALL=C tr -dc "$set" </dev/urandom | head -c "$n" || true); [[ ${#r} -eq $n ]] || exit 1; printf '%s' "$r"; }
aws_id() { printf 'AKIA%s' "$(rand_chars 'A-Z2-7' 16)"; }
aws_secret() { rand_chars 'A-Za-z0-9/+' 40; }

# ssh-keygen into $1 (path without extension), with type/options in the rest.
keygen() { local out=$1; shift; rm -f "$out" "$out.pub"; ssh-keygen -q "$@" -f "$out"; }
pubkey() { local t=$1 c=$2; keygen "$work/pub" -t "$t" -N '' -C "$c"; cat "$work/pub.pub"; }

L=$trees/leaky
mkdir -p "$L/etc/ssh" "$L/root/.ssh" "$L/home/alice/.ssh" "$L/home/alice/.aws" \
    "$L/opt/app/tls" "$L/var/lib/app/a/b/c/d" "$L/usr/share/doc/awscli" \
    "$trees/clean/home/alice/.ssh" "$trees/clean/opt/app/tls" "$frag"

# --- SSH host keys (OpenSSH format; one ssh-host-private-key finding each) ---
keygen "$L/etc/ssh/ssh_host_ed25519_key" -t ed25519 -N '' -C root@ip-10-0-1-23
keygen "$L/etc/ssh/ssh_host_rsa_key" -t rsa -b 3072 -N '' -C root@ip-10-0-1-23

# --- authorized_keys ---
{
    echo "# managed by cloud-init"
    printf '%s' 'no-port-forwarding,no-agent-forwarding,no-X11-forwarding,command="echo '"'"'Please login as the user \"alice\" rather than the user \"root\".'"'"';echo;sleep 10;exit 142" '
    pubkey rsa alice@laptop
    echo
    pubkey ed25519 deploy@ci-runner-7
} >"$L/root/.ssh/authorized_keys"
pubkey ed25519 alice@laptop >"$L/home/alice/.ssh/authorized_keys"

# --- alice's own keys ---
openssl genrsa -traditional -out "$L/home/alice/.ssh/id_rsa" 2048 2>/dev/null # BEGIN RSA PRIVATE KEY
chmod 600 "$L/home/alice/.ssh/id_rsa" # ssh-keygen -y refuses keys others can read
ssh-keygen -y -f "$L/home/alice/.ssh/id_rsa" | sed 's/$/ alice@ip-10-0-1-23/' >"$L/home/alice/.ssh/id_rsa.pub"
keygen "$L/home/alice/.ssh/id_ed25519" -t ed25519 -N '' -C alice@ip-10-0-1-23
keygen "$L/home/alice/.ssh/id_ecdsa_enc" -t ecdsa -b 256 -N 'correct horse battery staple' -C alice@ip-10-0-1-23
{
    printf 'bastion.example.internal %s\n' "$(pubkey ed25519 host | cut -d' ' -f1,2)"
    printf 'git.example.internal %s\n' "$(pubkey ecdsa host | cut -d' ' -f1,2)"
} >"$L/home/alice/.ssh/known_hosts"

# --- TLS keys of a fake app ---
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$L/opt/app/tls/server.key" 2>/dev/null # BEGIN PRIVATE KEY
openssl req -new -x509 -key "$L/opt/app/tls/server.key" -subj /CN=app.example.internal -days 3650 \
    -out "$L/opt/app/tls/server.crt" 2>/dev/null
cp "$L/opt/app/tls/server.crt" "$trees/clean/opt/app/tls/server.crt"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-256-cbc -pass pass:legacy-fake-pass \
    -out "$L/opt/app/tls/legacy.key" 2>/dev/null # BEGIN ENCRYPTED PRIVATE KEY
openssl genrsa -traditional -aes128 -passout pass:old-fake-pass -out "$L/opt/app/tls/old-encrypted.key" 2048 2>/dev/null # Proc-Type: 4,ENCRYPTED
openssl ecparam -name prime256v1 -genkey -noout -out "$L/opt/app/tls/ec.key" # BEGIN EC PRIVATE KEY

# --- a key buried deep ---
openssl genrsa -traditional -out "$L/var/lib/app/a/b/c/d/deploy.pem" 2048 2>/dev/null

# --- AWS ---
alice_id=$(aws_id) alice_secret=$(aws_secret) typed_id=$(aws_id)
cat >"$L/home/alice/.aws/credentials" <<EOF
[default]
aws_access_key_id = $alice_id
aws_secret_access_key = $alice_secret
EOF
cat >"$L/home/alice/.aws/config" <<'EOF'
[default]
region = eu-west-1
output = json
EOF
cat >"$L/usr/share/doc/awscli/example.txt" <<'EOF'
Configuring the AWS CLI
=======================

Run "aws configure" and answer the prompts. The values below are the example
credentials used throughout the AWS documentation; they do not work.

  $ aws configure
  AWS Access Key ID [None]: AKIAIOSFODNN7EXAMPLE
  AWS Secret Access Key [None]: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
  Default region name [None]: us-west-2
  Default output format [None]: json
EOF

# --- shell histories (the typed AWS key id is alone: no secret anywhere near it) ---
cat >"$L/home/alice/.bash_history" <<EOF
sudo apt-get update
sudo apt-get install -y awscli jq
aws --version
export AWS_ACCESS_KEY_ID=$typed_id
aws s3 ls
unset AWS_ACCESS_KEY_ID
ssh-keygen -t ed25519 -C alice@ip-10-0-1-23
cat ~/.ssh/id_ed25519.pub
sudo systemctl restart ssh
exit
EOF
cat >"$L/root/.python_history" <<'EOF'
import os
os.listdir('/opt/app')
import json
json.load(open('/var/lib/app/state.json'))
exit()
EOF
cat >"$L/root/.mysql_history" <<'EOF'
_HiStOrY_V2_
show\040databases;
use\040app;
select\040count(*)\040from\040users;
EOF

# --- /etc/shadow: root and alice usable, bob empty, carol locked with a hash, system accounts locked ---
root_hash=$(openssl passwd -6 'fake-root-password')
alice_hash=$(openssl passwd -6 'fake-alice-password')
carol_hash=$(openssl passwd -6 'fake-carol-password')
shadow_body() { # $1 root, $2 alice, $3 bob, $4 carol
    cat <<EOF
root:$1:19723:0:99999:7:::
daemon:*:19723:0:99999:7:::
bin:*:19723:0:99999:7:::
sys:*:19723:0:99999:7:::
sync:*:19723:0:99999:7:::
games:*:19723:0:99999:7:::
man:*:19723:0:99999:7:::
lp:*:19723:0:99999:7:::
mail:*:19723:0:99999:7:::
news:*:19723:0:99999:7:::
www-data:*:19723:0:99999:7:::
backup:*:19723:0:99999:7:::
_apt:*:19723:0:99999:7:::
nobody:*:19723:0:99999:7:::
systemd-network:!*:19723::::::
systemd-timesync:!*:19723::::::
messagebus:!:19723::::::
sshd:!!:19723::::::
chrony:!!:19723::::::
alice:$2:19723:0:99999:7:::
bob:$3:19723:0:99999:7:::
carol:$4:19723:0:99999:7:::
EOF
}
shadow_body "$root_hash" "$alice_hash" "" "!$carol_hash" >"$L/etc/shadow"
shadow_body '*' '!' '!*' '!!' >"$trees/clean/etc/shadow"

# --- MBR boot partition of the leaky image: a Secure Boot signing key ---
mkdir -p "$trees/boot-leaky/secureboot"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$trees/boot-leaky/secureboot/db.key" 2>/dev/null
openssl req -new -x509 -key "$trees/boot-leaky/secureboot/db.key" -subj "/CN=Example Secure Boot DB" -days 3650 \
    -out "$trees/boot-leaky/secureboot/db.crt" 2>/dev/null

# --- data partition of the 2-volume and corrupt images: an encrypted (medium) PEM key, so that on
# the corrupt images nothing at or above the default --fail-on high comes from the healthy volume
# and the exit code is 3 whatever the precedence between "findings" and "incomplete" ---
mkdir -p "$trees/data/secrets"
openssl genrsa -traditional -aes128 -passout pass:backup-fake-pass -out "$trees/data/secrets/id_rsa" 2048 2>/dev/null
chmod 600 "$trees/data/secrets/id_rsa"
ssh-keygen -y -P backup-fake-pass -f "$trees/data/secrets/id_rsa" | sed 's/$/ backup@ip-10-0-1-23/' >"$trees/data/secrets/id_rsa.pub"

# --- overlay whose worst finding is high (host key, authorized_keys, lone AWS key id) ---
mkdir -p "$trees/high/etc/ssh" "$trees/high/root/.ssh" "$trees/high/home/alice"
keygen "$trees/high/etc/ssh/ssh_host_ed25519_key" -t ed25519 -N '' -C root@ip-10-0-9-9
pubkey ed25519 ops@jumphost >"$trees/high/root/.ssh/authorized_keys"
cat >"$trees/high/home/alice/.bash_history" <<EOF
ls -la
export AWS_ACCESS_KEY_ID=$(aws_id)
aws sts get-caller-identity
EOF

# --- overlay whose only finding is info (the AWS documentation example key) ---
mkdir -p "$trees/info/usr/share/doc/awscli"
cp "$L/usr/share/doc/awscli/example.txt" "$trees/info/usr/share/doc/awscli/example.txt"

# --- what build-images.sh plants in the generated /var/log/big.log ---
openssl genrsa -traditional -out "$frag/biglog-key.pem" 2048 2>/dev/null
printf 'BIGLOG_AWS_ID=%s\nBIGLOG_AWS_SECRET=%s\n' "$(aws_id)" "$(aws_secret)" >"$frag/biglog-aws.env"

# (modes are not tracked by git: build-images.sh sets them in its staging copy)
echo "make-secrets.sh: fake secrets regenerated under $trees and $frag"
