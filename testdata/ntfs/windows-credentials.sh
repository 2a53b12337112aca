#!/usr/bin/env bash
# Build a small Windows disk in DIR holding the saved credentials of the tools admins use on
# Windows hosts, at the places and in the spellings Windows gives them (issue 15): the Google
# Cloud SDK's credentials under the roaming profile, a Remote Desktop file with a saved
# password, FileZilla's site manager, a WinSCP.ini session, IIS's `Web.config` (Visual Studio's
# capital W) with a connection string and a machineKey, a .NET program's `<name>.exe.config`,
# Git's and Docker's credential files in the profile, the OpenSSH server's
# administrators_authorized_keys.
# An MBR table with one NTFS partition (type 7), made by mkntfs and written through ntfs-3g on a
# loop device. Every secret is fake and generated here, fresh for each run.
#
# Usage: windows-credentials.sh DIR
#   DIR/disk.img      the disk
#   DIR/secrets.env   the secrets planted (NAME=value), for the test to look for
set -euo pipefail
dir=$(realpath "$1")
cd "$dir"
rm -rf m disk.img; mkdir m
truncate -s 24M disk.img
printf 'label: dos\nstart=2048, type=7, bootable\n' | sfdisk -q disk.img
start=$((2048 * 512)); size=$(( $(stat -c %s disk.img) - start ))
L=$(losetup -f --show -o "$start" --sizelimit "$size" disk.img)
cleanup() { mountpoint -q m && umount m; losetup -d "$L"; }
trap cleanup EXIT
mkntfs -Q -q -F -s 512 -p 2048 -H 255 -S 63 -L Windows "$L"
mount -t ntfs-3g "$L" m

rnd() { (LC_ALL=C tr -dc "$1" </dev/urandom || true) | head -c "$2"; }
gcloud="1//0$(rnd 'A-Za-z0-9_-' 96)"
rdp="01000000D08C9DDF0115D1118C7A00C04FC297EB01000000$(rnd '0-9A-F' 280)"
filezilla=$(rnd 'A-Za-z0-9' 18 | base64 -w0)
winscp="A35C$(rnd '0-9A-F' 60)"
webpw="Wc-$(rnd 'A-Za-z0-9' 16)"
validation=$(rnd '0-9A-F' 128)
exepw="Ex-$(rnd 'A-Za-z0-9' 16)"
cat > secrets.env <<S
GCLOUD=$gcloud
RDP=$rdp
FILEZILLA=$filezilla
WINSCP=$winscp
WEBCONFIG=$webpw
MACHINEKEY=$validation
EXECONFIG=$exepw
S

mkdir -p m/Users/alice/AppData/Roaming/gcloud/legacy_credentials m/Users/alice/Documents \
  m/Users/alice/AppData/Roaming/FileZilla m/inetpub/wwwroot/Shop "m/Program Files/ShopSync" \
  m/Windows/System32/config
printf 'placeholder\r\n' > m/Windows/System32/config/README.txt
printf '{\n  "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",\n  "refresh_token": "%s",\n  "type": "authorized_user"\n}\n' \
  "$gcloud" > m/Users/alice/AppData/Roaming/gcloud/application_default_credentials.json
printf 'screen mode id:i:2\r\nfull address:s:10.20.1.15\r\nusername:s:CORP\\ops\r\npassword 51:b:%s\r\nauthentication level:i:2\r\n' \
  "$rdp" > m/Users/alice/Documents/Jump.RDP
printf '<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>\r\n<FileZilla3 version="3.66.4" platform="windows">\r\n  <Servers>\r\n    <Server>\r\n      <Host>ftp.example.net</Host>\r\n      <Port>21</Port>\r\n      <Protocol>0</Protocol>\r\n      <User>deploy</User>\r\n      <Pass encoding="base64">%s</Pass>\r\n      <Name>prod</Name>\r\n    </Server>\r\n  </Servers>\r\n</FileZilla3>\r\n' \
  "$filezilla" > m/Users/alice/AppData/Roaming/FileZilla/sitemanager.xml
printf '[Configuration\\Interface]\r\nRandomSeedFile=%%APPDATA%%\\winscp.rnd\r\n\r\n[Sessions\\deploy@sftp.example.net]\r\nHostName=sftp.example.net\r\nUserName=deploy\r\nPassword=%s\r\n' \
  "$winscp" > m/Users/alice/AppData/Roaming/WinSCP.ini
cat > m/inetpub/wwwroot/Shop/Web.config <<X
<?xml version="1.0"?>
<configuration>
  <connectionStrings>
    <add name="Shop" connectionString="Server=sql-prod.corp.local;Database=shop;User ID=shopweb;Password=$webpw;" providerName="System.Data.SqlClient" />
  </connectionStrings>
  <system.web>
    <machineKey validationKey="$validation" decryptionKey="AutoGenerate,IsolateApps" validation="HMACSHA256" />
  </system.web>
</configuration>
X
apppw="As-$(rnd 'A-Za-z0-9' 16)"
printf 'APPSETTINGS=%s\n' "$apppw" >> secrets.env
cat > m/inetpub/wwwroot/Shop/appsettings.Production.json <<X
{
  "Logging": { "LogLevel": { "Default": "Warning" } },
  "ConnectionStrings": {
    "Orders": "Server=sql-prod.corp.local;Database=orders;User Id=shopapi;Password=$apppw;TrustServerCertificate=True"
  },
  "AllowedHosts": "*"
}
X
cat > "m/Program Files/ShopSync/ShopSync.exe.config" <<X
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <connectionStrings>
    <add name="Orders" connectionString="Data Source=sql-prod.corp.local;Initial Catalog=orders;User ID=sync;Password=$exepw" />
  </connectionStrings>
</configuration>
X
# Git's credential store and Docker's registry auth in the user's profile, and the keys the
# OpenSSH server lets log in as an administrator (a key pair made here, its public half).
printf 'https://alice:%s@git.example.net\n' "$(rnd 'A-Za-z0-9' 32)" > m/Users/alice/.git-credentials
mkdir -p m/Users/alice/.docker m/ProgramData/ssh
printf '{\n  "auths": {\n    "registry.example.net": {\n      "auth": "%s"\n    }\n  }\n}\n' \
  "$(printf 'alice:%s' "$(rnd 'A-Za-z0-9' 24)" | base64 -w0)" > m/Users/alice/.docker/config.json
ssh-keygen -q -t ed25519 -N '' -C ops@build -f admin_key
cp admin_key.pub m/ProgramData/ssh/administrators_authorized_keys
rm -f admin_key admin_key.pub
# A Credential Manager file (what `cmdkey /add` leaves): a 12-byte header and a DPAPI blob
# (version 1, the DPAPI provider's GUID, a master key GUID, flags, its description), the
# cipher text random. The fingerprint is of the blob, whose hex goes to secrets.env.
mkdir -p m/Users/alice/AppData/Roaming/Microsoft/Credentials
python3 -c "
import os,struct,sys
desc='Local Credential Data\0'.encode('utf-16-le')
blob=struct.pack('<I',1)+bytes.fromhex('D08C9DDF0115D1118C7A00C04FC297EB')+struct.pack('<I',1)+os.urandom(16)+struct.pack('<II',0x20000000,len(desc))+desc+os.urandom(200)
sys.stdout.buffer.write(struct.pack('<III',1,len(blob),0)+blob)" > m/Users/alice/AppData/Roaming/Microsoft/Credentials/DFBE70A7E5CC19A398EBF1B96859CE5D
printf 'VAULT_BLOB_HEX=%s\n' "$(tail -c +13 m/Users/alice/AppData/Roaming/Microsoft/Credentials/DFBE70A7E5CC19A398EBF1B96859CE5D | od -An -tx1 -v | tr -d ' \n')" >> secrets.env
umount m
