#!/usr/bin/env python3
"""Build an XFS image from a directory tree with the real mkfs.xfs, without mounting.

mkfs.xfs (xfsprogs 6.x) populates a new filesystem from a *prototype file* (-p), not from a
directory, so this writes one from the tree: every directory, regular file (by path), symlink,
with the mode, uid and gid that lstat() reports.

usage: mkfs-xfs-tree.py TREE IMG SIZE [extra mkfs.xfs options...]
"""
import os
import stat
import subprocess
import sys
import tempfile


def entry_line(name, st, extra):
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        t = "d"
    elif stat.S_ISLNK(mode):
        t = "l"
    elif stat.S_ISREG(mode):
        t = "-"
    elif stat.S_ISFIFO(mode):
        t = "p"
    else:
        return None
    u = "u" if mode & stat.S_ISUID else "-"
    g = "g" if mode & stat.S_ISGID else "-"
    line = f"{name} {t}{u}{g}{mode & 0o777:03o} {st.st_uid} {st.st_gid}"
    return f"{line} {extra}" if extra else line


def emit(path, out, depth):
    for name in sorted(os.listdir(path)):
        if any(c.isspace() for c in name):
            sys.exit(f"mkfs-xfs-tree: names with white space cannot go in a protofile: {name!r}")
        full = os.path.join(path, name)
        st = os.lstat(full)
        if stat.S_ISDIR(st.st_mode):
            out.append(entry_line(name, st, ""))
            emit(full, out, depth + 1)
            out.append("$")
        elif stat.S_ISLNK(st.st_mode):
            out.append(entry_line(name, st, os.readlink(full)))
        elif stat.S_ISREG(st.st_mode):
            out.append(entry_line(name, st, os.path.abspath(full)))
        elif stat.S_ISFIFO(st.st_mode):
            out.append(entry_line(name, st, ""))


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    tree, img, size, extra = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    root = os.lstat(tree)
    lines = ["amiscan", "0 0", f"d--{root.st_mode & 0o777:03o} {root.st_uid} {root.st_gid}"]
    emit(tree, lines, 1)
    lines.append("$")
    with tempfile.NamedTemporaryFile("w", suffix=".proto", delete=False) as f:
        f.write("\n".join(lines) + "\n")
        proto = f.name
    env = dict(os.environ)
    # fstests' variables let mkfs.xfs make filesystems smaller than 300 MB.
    env.update(TEST_DIR="1", TEST_DEV="1", QA_CHECK_FS="1")
    try:
        subprocess.run(
            ["mkfs.xfs", "-q", "-f", "-p", proto, "-d", f"file,name={img},size={size}", *extra],
            check=True,
            env=env,
        )
    finally:
        os.unlink(proto)


if __name__ == "__main__":
    main()
