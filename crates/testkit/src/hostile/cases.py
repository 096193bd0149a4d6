"""Writes the hostile layers of the test kit's hostile-image suite.

usage: cases.py OUT OUTSIDE

For every case, OUT/<case>/<n>.tar is layer n (uncompressed, lowest first),
written with Python's tarfile (never with the project's own writer). OUTSIDE
is an absolute host folder holding sentinels: cases aim symlinks and links at
it. The expectations live beside this file, in hostile/mod.rs.
"""

import io
import os
import sys
import tarfile

OUT, OUTSIDE = sys.argv[1], sys.argv[2]
# `..` enough times to climb from any temporary folder to `/`.
CLIMB = "../" * 32


def entry(name, kind="file", data=b"", link="", mode=None, mtime=1700000000, dev=(0, 0)):
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    if kind == "file":
        info.type = tarfile.REGTYPE
        info.size = len(data)
        info.mode = 0o644 if mode is None else mode
        return info, data
    info.mode = {"dir": 0o755, "symlink": 0o777}.get(kind, 0o644) if mode is None else mode
    info.type = {
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "char": tarfile.CHRTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    info.linkname = link
    info.devmajor, info.devminor = dev
    return info, None


def write(case, layers):
    folder = os.path.join(OUT, case)
    os.makedirs(folder, exist_ok=True)
    for n, layer in enumerate(layers):
        path = os.path.join(folder, f"{n}.tar")
        if isinstance(layer, bytes):
            with open(path, "wb") as out:
                out.write(layer)
            continue
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
            for info, data in layer:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)


def claimed_size_layer(size, sparse):
    """A header claiming `size` bytes and no data at all: a few hundred bytes."""
    info = tarfile.TarInfo("huge")
    info.size = 0
    info.type = tarfile.REGTYPE
    block = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    if sparse:
        block[156] = ord("S")
        # One sparse entry at the very end with no data; realsize at 483.
        block[386:398] = tarfile.itn(size, 12, tarfile.GNU_FORMAT)
        block[398:410] = tarfile.itn(0, 12, tarfile.GNU_FORMAT)
        block[483:495] = tarfile.itn(size, 12, tarfile.GNU_FORMAT)
    else:
        block[124:136] = tarfile.itn(size, 12, tarfile.GNU_FORMAT)
    block[148:156] = b"        "
    checksum = sum(block[:512])
    block[148:155] = ("%06o\0" % checksum).encode()
    return bytes(block[:512]) + bytes(1024)


def main():
    outside_dir = os.path.join(OUTSIDE, "dir")
    outside_secret = os.path.join(OUTSIDE, "secret")
    rel = lambda p: CLIMB + p.lstrip("/")

    write("whiteout-dotdot", [[entry("f", data=b"x")], [entry(".wh..."), ]])
    write("whiteout-empty", [[entry("f", data=b"x")], [entry(".wh.")]])
    write("whiteout-dotdot-in-dir", [[entry("d/", "dir"), entry("d/f", data=b"x")], [entry("d/.wh...")]])
    write("whiteout-dot-in-dir", [[entry("d/", "dir"), entry("d/f", data=b"x")], [entry("d/.wh..")]])
    write("whiteout-through-symlink", [[entry("s", "symlink", link=OUTSIDE)], [entry("s/.wh.secret")]])
    write("dir-metadata-through-later-symlink", [
        [entry("x/", "dir"), entry("x/dir/", "dir", mode=0o777, mtime=0)],
        [entry("x", "symlink", link=OUTSIDE)],
    ])
    write("dir-metadata-through-symlink-same-layer", [[
        entry("x/", "dir"), entry("x/dir/", "dir", mode=0o777, mtime=0),
        entry("x", "symlink", link=OUTSIDE),
    ]])
    write("write-through-absolute-symlink", [[entry("s", "symlink", link=outside_dir), entry("s/evil", data=b"evil")]])
    write("write-through-climbing-symlink-next-layer", [
        [entry("s", "symlink", link=rel(outside_dir))],
        [entry("s/evil", data=b"evil")],
    ])
    write("replace-symlink-to-outside-file", [
        [entry("f", "symlink", link=outside_secret)],
        [entry("f", data=b"new")],
    ])
    write("dotdot-path", [[entry("../escaped", data=b"evil")]])
    write("dotdot-inside-path", [[entry("a/", "dir"), entry("a/../../escaped", data=b"evil")]])
    write("absolute-path", [[entry("/abs", data=b"inside")]])
    write("hardlink-absolute-outside", [[entry("h", "hardlink", link=outside_secret)]])
    write("hardlink-dotdot", [[entry("h", "hardlink", link="../outside/secret")]])
    write("hardlink-through-symlink-outside", [[entry("s", "symlink", link=OUTSIDE)], [entry("h", "hardlink", link="s/secret")]])
    write("hardlink-through-symlink-inside", [[
        entry("real/", "dir"), entry("real/f", data=b"data"),
        entry("s", "symlink", link="/real"), entry("h", "hardlink", link="s/f"),
    ]])
    write("hardlink-to-directory", [[entry("d/", "dir"), entry("h", "hardlink", link="d")]])
    write("hardlink-replacing-its-parent", [[entry("a/", "dir"), entry("a/f", data=b"x"), entry("a", "hardlink", link="a/f")]])
    write("symlink-loop", [[entry("a", "symlink", link="b"), entry("b", "symlink", link="a"), entry("a/f", data=b"x")]])
    write("parent-is-a-file", [[entry("f", data=b"x"), entry("f/g", data=b"y")]])
    write("dangling-symlink-parent", [[entry("s", "symlink", link="/new/sub"), entry("s/f", data=b"made")]])
    write("path-longer-than-path-max", [[entry("d/" * 2100 + "f", data=b"x")]])
    deep = "d/" * 1000
    write("deep-tree-whited-out", [
        [entry(deep, "dir"), entry(deep + "f", data=b"x")],
        [entry(".wh.d")],
    ])
    write("device-node", [[entry("dev/", "dir"), entry("dev/mem", "char", mode=0o666, dev=(1, 1))]])
    write("setuid-file", [[entry("bin/", "dir"), entry("bin/su", data=b"#!/bin/sh\n", mode=0o4755)]])
    write("claimed-petabyte-file", [claimed_size_layer(1 << 50, sparse=False)])
    write("claimed-petabyte-sparse-file", [claimed_size_layer(1 << 50, sparse=True)])


main()
