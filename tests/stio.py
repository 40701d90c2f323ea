"""Minimal safetensors writer/reader written by hand for the tests (8-byte little-endian header length,
JSON header, raw bytes), so the tests check our reader and writer against the format itself, not
against a library or against our own C code. Shared by the eval, store and merge tests."""
import json
import struct

import numpy as np

# dtype tag -> little-endian storage type (BF16: the raw 16 bits)
DT = {'F32': np.dtype('<f4'), 'F64': np.dtype('<f8'), 'F16': np.dtype('<f2'), 'BF16': np.dtype('<u2'),
      'I64': np.dtype('<i8'), 'I32': np.dtype('<i4')}
_TAG = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('int64'): 'I64',
        np.dtype('int32'): 'I32', np.dtype('float16'): 'F16'}


def to_bf16(x):
    """float32 -> bfloat16 bits, round to nearest even (finite values); uint16 array"""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(b):
    return (np.asarray(b).astype(np.uint32) << 16).view(np.float32)


def write(path, tensors, metadata=None):
    """tensors: list of (name, dtype tag, array), the array converted to the tag's storage type
    (BF16: give the bits, e.g. to_bf16(x))"""
    header, off, blobs = {}, 0, []
    if metadata:
        header['__metadata__'] = dict(metadata)
    for name, tag, a in tensors:
        b = np.ascontiguousarray(a).astype(DT[tag], copy=False).tobytes()
        header[name] = {'dtype': tag, 'shape': list(np.shape(a)), 'data_offsets': [off, off + len(b)]}
        off += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def save(path, tensors, metadata=None):
    """tensors: ordered dict name -> numpy array; the dtype tag follows the array's dtype"""
    write(path, [(name, _TAG[np.asarray(a).dtype], a) for name, a in tensors.items()], metadata)


def _parse(path):
    """(header without __metadata__, metadata, data bytes after the header)"""
    with open(path, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop('__metadata__', {})
    return header, meta, data


def load(path):
    """name -> array in its stored type (BF16 as its uint16 bits)"""
    header, _, data = _parse(path)
    return {name: np.frombuffer(data[e['data_offsets'][0]:e['data_offsets'][1]], dtype=DT[e['dtype']]).reshape(e['shape'])
            for name, e in header.items()}


def read(path):
    """name -> (dtype tag, float32 array), in file order; and the metadata"""
    header, meta, data = _parse(path)
    out = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]['data_offsets'][0]):
        b, en = e['data_offsets']
        raw = np.frombuffer(data[b:en], dtype=DT[e['dtype']])
        a = from_bf16(raw) if e['dtype'] == 'BF16' else raw.astype(np.float32)
        out[name] = (e['dtype'], a.reshape(e['shape']))
    return out, meta
