#!/usr/bin/python3
"""The store's source digest of files (docs/storage.md, "Source digests"), computed independently of
mapmerge: the file cut into ranges of RANGE bytes (the last shorter; an empty file is one empty
range), sha256 of each range, and the sha256 of the concatenated 32-byte range hashes.

    map_digest.py [--range BYTES] FILE...     prints "<hex>  <file>" per file, like sha256sum

The range size is part of the definition: a store records it in its "source_digest" attribute
("sha256-ranges-16777216" for the default 16 MiB)."""
import argparse
import hashlib
import sys

DEFAULT_RANGE = 16 << 20


def digest(path, range_bytes=DEFAULT_RANGE):
    leaves = b""
    with open(path, "rb") as f:
        while True:
            block = f.read(range_bytes)
            if not block and leaves:
                break
            leaves += hashlib.sha256(block).digest()
            if len(block) < range_bytes:
                break
    return hashlib.sha256(leaves).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--range", type=int, default=DEFAULT_RANGE, help="bytes per range (default 16 MiB)")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    for p in a.files:
        print(f"{digest(p, a.range)}  {p}")


if __name__ == "__main__":
    sys.exit(main())
