#!/usr/bin/python3
"""A cheap evaluator for I/O benchmarks (`-map_eval_type worker -map_eval_worker_mode model`): it
checks that each merged model file mapmerge wrote is a complete safetensors file (header parses, file
size = 8 + header + the last tensor's end) and answers made-up metrics (accuracy 0.5, loss 1.0), so
an evaluation costs what mapmerge itself does: read the store, merge, write the model file.
Protocol: docs/evaluators-external.md."""
import json
import os
import struct
import sys


def check(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
    end = max(v["data_offsets"][1] for k, v in hdr.items() if k != "__metadata__")
    size = os.path.getsize(path)
    if size != 8 + n + end:
        raise ValueError(f"{path}: {size} bytes, header says {8 + n + end}")


def score(path):
    """RMS of the first 65,536 values of the file's largest tensor"""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        hdr = json.loads(f.read(n))
        name, v = max(((k, v) for k, v in hdr.items() if k != "__metadata__"), key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0])
        size = {"F32": 4, "BF16": 2, "F16": 2}[v["dtype"]]
        count = min(65536, (v["data_offsets"][1] - v["data_offsets"][0]) // size)
        f.seek(8 + n + v["data_offsets"][0])
        raw = f.read(count * size)
    if v["dtype"] == "F32":
        vals = struct.unpack("<%df" % count, raw)
    elif v["dtype"] == "F16":
        vals = struct.unpack("<%de" % count, raw)
    else:  # bfloat16: the high half of an F32
        vals = struct.unpack("<%df" % count, b"".join(b"\0\0" + raw[2 * i:2 * i + 2] for i in range(count)))
    return (sum(x * x for x in vals) / count) ** 0.5


def main():
    for line in sys.stdin:
        msg = json.loads(line)
        if msg.get("mapmerge") == "hello":
            print(json.dumps({"hello": "header_worker", "protocol": 1}), flush=True)
        elif msg.get("mapmerge") == "shutdown":
            return
        else:
            try:
                check(msg["model"])
                loss = score(msg["model"])
                ans = {"id": msg["id"], "metrics": {t["name"]: {"accuracy": 1.0 / (1.0 + loss), "loss": loss} for t in msg["tasks"]}}
            except (OSError, ValueError, KeyError) as e:
                ans = {"id": msg["id"], "error": str(e)}
            print(json.dumps(ans), flush=True)


if __name__ == "__main__":
    main()
