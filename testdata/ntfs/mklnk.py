#!/usr/bin/env python3
"""Write a Windows shortcut (.lnk) to OUT, laid out byte for byte as [MS-SHLLINK] gives the
Shell Link Binary File Format, with the target's shell items as libfwsi's "Windows Shell Item
format" describes what Explorer writes (no Linux tool writes one; `lnkinfo` from liblnk-utils
reads it back as the tests' oracle):

  ShellLinkHeader   0x4C bytes: HeaderSize 0x4C, LinkCLSID 00021401-0000-0000-C000-000000000046,
                    LinkFlags, FileAttributes, three FILETIMEs, FileSize, IconIndex,
                    ShowCommand (SW_SHOWMINNOACTIVE for a hidden start), HotKey, reserved
  LinkTargetIDList  IDListSize and the target's shell items, then the TerminalID:
                    the root folder item (0x1F, My Computer 20D04FE0-3AEA-1069-A2D8-08002B30309D),
                    the volume item (0x2F, "C:\\"), one file entry item per path component
                    (0x31 directory, 0x32 file: the 8.3 name as the ASCII primary name, and the
                    file entry extension block 0xBEEF0004 version 9 with the Unicode long name)
  LinkInfo          header 0x1C bytes, VolumeID (DRIVE_FIXED, serial, empty label),
                    LocalBasePath (ANSI), CommonPathSuffix (empty)
  StringData        RELATIVE_PATH, WORKING_DIR, COMMAND_LINE_ARGUMENTS (Unicode: IsUnicode)
  ExtraData         an EnvironmentVariableDataBlock when ENV_TARGET is given, the TerminalBlock

With --shell-items-only the target is only in the shell items: no LinkInfo, RELATIVE_PATH or
WORKING_DIR (as shortcuts made by Explorer's "Create shortcut" often are).

Usage: mklnk.py [--shell-items-only] OUT TARGET ARGUMENTS [ENV_TARGET]"""
import struct
import sys

HAS_ID_LIST, HAS_LINK_INFO, HAS_RELATIVE_PATH, HAS_WORKING_DIR, HAS_ARGUMENTS, IS_UNICODE = (
    0x01, 0x02, 0x08, 0x10, 0x20, 0x80)
HAS_EXP_STRING = 0x200
CLSID = bytes.fromhex("0114020000000000c000000000000046")
MY_COMPUTER = bytes.fromhex("e04fd020ea3a6910a2d808002b30309d")
FILETIME = 133_700_000_000_000_000
FATTIME = 0x6C21_5B8A  # 2025-12-10 13:33:02: the FAT date (low word) and time (high word)

argv = sys.argv[1:]
shell_only = argv[:1] == ["--shell-items-only"]
if shell_only:
    argv = argv[1:]
out, target, args = argv[0], argv[1], argv[2]
env = argv[3] if len(argv) > 3 else None


def short_name(name):
    """The 8.3 name Windows would give `name` (the first one, ~1)."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    if (len(stem) <= 8 and len(ext) <= 3 and name.isascii() and " " not in name
            and stem and "." not in stem):
        return name
    clean = "".join(c for c in stem.upper() if c.isascii() and c.isalnum())
    short = clean[:6] + "~1"
    clean_ext = "".join(c for c in ext.upper() if c.isascii() and c.isalnum())[:3]
    return short + ("." + clean_ext if clean_ext else "")


def file_entry(name, is_dir):
    """A file entry shell item (Windows 8.1 and later layout) for `name`."""
    primary = short_name(name).encode("ascii") + b"\0"
    if len(primary) % 2:
        primary += b"\0"  # 16-bit aligned
    head = struct.pack("<BBIIH", 0x31 if is_dir else 0x32, 0, 0 if is_dir else 73_728, FATTIME,
                       0x10 if is_dir else 0x20)
    block_at = 2 + len(head) + len(primary)
    long_name = name.encode("utf-16-le") + b"\0\0"
    # size, version 9, signature, creation and access FAT times, the long name's offset (0x2E),
    # reserved, NTFS file reference, reserved, long string size (no localized name), two
    # unknown 32-bit values, the long name, the version offset.
    body = struct.pack("<HIIIHHQQHII", 9, 0xBEEF0004, FATTIME, FATTIME, 0x2E, 0,
                       0x0001_0000_0000_1234, 0, 0, 0, 0) + long_name + struct.pack("<H", block_at)
    block = struct.pack("<H", 2 + len(body)) + body
    data = head + primary + block
    return struct.pack("<H", 2 + len(data)) + data


drive, _, rest = target.partition("\\")
parts = [p for p in rest.split("\\") if p]
items = struct.pack("<HBB", 0x14, 0x1F, 0x50) + MY_COMPUTER
items += struct.pack("<HB", 0x19, 0x2F) + (drive + "\\").encode("ascii").ljust(20, b"\0") + b"\0\0"
for i, p in enumerate(parts):
    items += file_entry(p, i + 1 < len(parts))
idlist = struct.pack("<H", len(items) + 2) + items + b"\0\0"

flags = HAS_ID_LIST | IS_UNICODE
if not shell_only:
    flags |= HAS_LINK_INFO | HAS_RELATIVE_PATH | HAS_WORKING_DIR
if args:
    flags |= HAS_ARGUMENTS
if env:
    flags |= HAS_EXP_STRING
header = struct.pack("<I16sIIQQQIiIHHII", 0x4C, CLSID, flags, 0x20, FILETIME, FILETIME, FILETIME,
                     0, 0, 7, 0, 0, 0, 0)
assert len(header) == 0x4C

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
strings = b"" if shell_only else string(target) + string(workdir)
strings += string(args) if args else b""
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
    f.write(header + idlist + (b"" if shell_only else linkinfo) + strings + extra + b"\0\0\0\0")
