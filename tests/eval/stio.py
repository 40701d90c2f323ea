"""Minimal safetensors writer/reader written by hand for the eval tests (header JSON + raw bytes),
so the tests check our reader against the format itself, not against a library."""
import json
import struct

import numpy as np

_DT = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64',
       np.dtype('int32'): 'I32', np.dtype('float16'): 'F16'}
_NP = {v: k for k, v in _DT.items()}


def save(path, tensors, metadata=None):
    """tensors: ordered dict name -> numpy array (C order, little-endian)."""
    header, off, blobs = {}, 0, []
    if metadata:
        header['__metadata__'] = dict(metadata)
    for name, a in tensors.items():
        a = np.ascontiguousarray(a)
        b = a.astype(a.dtype.newbyteorder('<'), copy=False).tobytes()
        header[name] = {'dtype': _DT[a.dtype], 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load(path):
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == '__metadata__':
            continue
        b, en = e['data_offsets']
        out[name] = np.frombuffer(data[b:en], dtype=_NP[e['dtype']]).reshape(e['shape'])
    return out
