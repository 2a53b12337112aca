#!/usr/bin/env python3
"""Write a Windows shortcut (.lnk) to argv[1], laid out byte for byte as [MS-SHLLINK] gives
the Shell Link Binary File Format (no Linux tool writes one; `lnkinfo` from liblnk-utils
reads it back as the tests' oracle):

  ShellLinkHeader   0x4C bytes: HeaderSize 0x4C, LinkCLSID 00021401-0000-0000-C000-000000000046,
                    LinkFlags, FileAttributes, three FILETIMEs, FileSize, IconIndex,
                    ShowCommand (SW_SHOWMINNOACTIVE for a hidden start), HotKey, reserved
  LinkTargetIDList  IDListSize and an empty IDList (its TerminalID)
  LinkInfo          header 0x1C bytes, VolumeID (DRIVE_FIXED, serial, empty label),
                    LocalBasePath (ANSI), CommonPathSuffix (empty)
  StringData        RELATIVE_PATH, WORKING_DIR, COMMAND_LINE_ARGUMENTS (Unicode: IsUnicode)
  ExtraData         an EnvironmentVariableDataBlock when argv[4] is given, the TerminalBlock

Usage: mklnk.py OUT TARGET ARGUMENTS [ENV_TARGET]"""
import struct
import sys

HAS_ID_LIST, HAS_LINK_INFO, HAS_RELATIVE_PATH, HAS_WORKING_DIR, HAS_ARGUMENTS, IS_UNICODE = (
    0x01, 0x02, 0x08, 0x10, 0x20, 0x80)
HAS_EXP_STRING = 0x200
CLSID = bytes.fromhex("0114020000000000c000000000000046")
FILETIME = 133_700_000_000_000_000

out, target, args = sys.argv[1], sys.argv[2], sys.argv[3]
env = sys.argv[4] if len(sys.argv) > 4 else None

flags = HAS_ID_LIST | HAS_LINK_INFO | HAS_RELATIVE_PATH | HAS_WORKING_DIR | IS_UNICODE
if args:
    flags |= HAS_ARGUMENTS
if env:
    flags |= HAS_EXP_STRING
header = struct.pack("<I16sIIQQQIiIHHII", 0x4C, CLSID, flags, 0x20, FILETIME, FILETIME, FILETIME,
                     0, 0, 7, 0, 0, 0, 0)
assert len(header) == 0x4C
idlist = struct.pack("<HH", 2, 0)

volume = struct.pack("<IIII", 0x11, 3, 0x1C2B3A49, 0x10) + b"\0"
base = target.encode("latin-1") + b"\0"
base_at = 0x1C + len(volume)
suffix_at = base_at + len(base)
size = suffix_at + 1
linkinfo = struct.pack("<IIIIIII", size, 0x1C, 1, 0x1C, base_at, 0, suffix_at) + volume + base + b"\0"


def string(s):
    u = s.encode("utf-16-le")
    return struct.pack("<H", len(u) // 2) + u


workdir = target.rsplit("\\", 1)[0]
strings = string(target) + string(workdir) + (string(args) if args else b"")
extra = b""
if env:
    block = bytearray(0x314)
    struct.pack_into("<II", block, 0, 0x314, 0xA0000001)
    a = env.encode("latin-1")
    block[8:8 + len(a)] = a
    u = env.encode("utf-16-le")
    block[0x10C:0x10C + len(u)] = u
    extra = bytes(block)
with open(out, "wb") as f:
    f.write(header + idlist + linkinfo + strings + extra + b"\0\0\0\0")
