"""Prints yes when two safetensors files hold the same header (but for the metadata key
mapmerge_git_commit, which names the build) and byte-identical data, else NO and what differs."""
import json
import struct
import sys


def parts(path):
    with open(path, "rb") as f:
        hl = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(hl))
        h.get("__metadata__", {}).pop("mapmerge_git_commit", None)
        return h, f.read()


a, b = parts(sys.argv[1]), parts(sys.argv[2])
print("yes" if a == b else "NO(%s)" % ("header" if a[0] != b[0] else "data"))
