"""Minimal GGUF v3 reader and writer (no external packages).

Only what this project needs: all metadata value types, and tensors of type
F32 / F16 (plus BF16 for reading). A torch/numpy-free core: tensors are returned
as numpy arrays shaped like PyTorch (reversed ggml ne order).
"""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
# metadata value types
T_UINT8, T_INT8, T_UINT16, T_INT16, T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64, T_INT64, T_FLOAT64 = range(13)
_SCALAR_FMT = {T_UINT8: "<B", T_INT8: "<b", T_UINT16: "<H", T_INT16: "<h", T_UINT32: "<I", T_INT32: "<i",
               T_FLOAT32: "<f", T_BOOL: "<?", T_UINT64: "<Q", T_INT64: "<q", T_FLOAT64: "<d"}
# ggml tensor types
GGML_F32, GGML_F16, GGML_BF16 = 0, 1, 30


class GGUFFile:
    def __init__(self, version, metadata, types, tensors):
        self.version = version
        self.metadata = metadata      # key -> python value
        self.types = types            # key -> value type (arrays: (T_ARRAY, elem_type))
        self.tensors = tensors        # name -> np.ndarray (numpy shape = reversed ne)


class _Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("GGUF truncated at offset %d" % self.pos)
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def unpack(self, fmt):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self):
        n = self.unpack("<Q")
        return self.take(n).decode("utf-8")

    def value(self, vtype):
        if vtype in _SCALAR_FMT:
            return self.unpack(_SCALAR_FMT[vtype])
        if vtype == T_STRING:
            return self.string()
        if vtype == T_ARRAY:
            etype = self.unpack("<I")
            n = self.unpack("<Q")
            return [self.value(etype) for _ in range(n)], etype
        raise ValueError("bad GGUF value type %d" % vtype)


def read_gguf(path):
    with open(path, "rb") as f:
        data = f.read()
    c = _Cursor(data)
    if c.take(4) != GGUF_MAGIC:
        raise ValueError("not a GGUF file")
    version = c.unpack("<I")
    n_tensors = c.unpack("<Q")
    n_kv = c.unpack("<Q")
    metadata, types = {}, {}
    for _ in range(n_kv):
        key = c.string()
        vtype = c.unpack("<I")
        v = c.value(vtype)
        if vtype == T_ARRAY:
            v, etype = v
            types[key] = (T_ARRAY, etype)
        else:
            types[key] = vtype
        metadata[key] = v
    infos = []
    for _ in range(n_tensors):
        name = c.string()
        nd = c.unpack("<I")
        ne = [c.unpack("<Q") for _ in range(nd)]
        ttype = c.unpack("<I")
        off = c.unpack("<Q")
        infos.append((name, ne, ttype, off))
    align = metadata.get("general.alignment", 32)
    base = (c.pos + align - 1) // align * align
    tensors = {}
    for name, ne, ttype, off in infos:
        count = int(np.prod(ne)) if ne else 1
        start = base + off
        if ttype == GGML_F32:
            arr = np.frombuffer(data, dtype="<f4", count=count, offset=start).astype(np.float32)
        elif ttype == GGML_F16:
            arr = np.frombuffer(data, dtype="<f2", count=count, offset=start).astype(np.float32)
        elif ttype == GGML_BF16:
            raw = np.frombuffer(data, dtype="<u2", count=count, offset=start).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            raise ValueError("tensor %s: unsupported ggml type %d" % (name, ttype))
        tensors[name] = arr.reshape(list(reversed(ne)))
    return GGUFFile(version, metadata, types, tensors)


def _pack_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _pack_value(vtype, v):
    if vtype in _SCALAR_FMT:
        return struct.pack(_SCALAR_FMT[vtype], v)
    if vtype == T_STRING:
        return _pack_string(v)
    raise ValueError("bad scalar type %d" % vtype)


def write_gguf(path, kvs, tensors, alignment=32):
    """kvs: list of (key, vtype, value) with vtype a T_* scalar or (T_ARRAY, elem_type).
    tensors: list of (name, np.ndarray, ggml_type) with numpy shape = reversed ne."""
    out = bytearray()
    out += GGUF_MAGIC + struct.pack("<IQQ", 3, len(tensors), len(kvs) + 1)
    out += _pack_string("general.alignment") + struct.pack("<I", T_UINT32) + struct.pack("<I", alignment)
    for key, vtype, value in kvs:
        out += _pack_string(key)
        if isinstance(vtype, tuple):
            etype = vtype[1]
            out += struct.pack("<I", T_ARRAY) + struct.pack("<IQ", etype, len(value))
            for item in value:
                out += _pack_value(etype, item)
        else:
            out += struct.pack("<I", vtype) + _pack_value(vtype, value)
    blobs, offset = [], 0
    for name, arr, ttype in tensors:
        if ttype == GGML_F32:
            blob = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        elif ttype == GGML_F16:
            blob = np.ascontiguousarray(arr, dtype="<f2").tobytes()
        else:
            raise ValueError("writer supports F32/F16 only")
        ne = list(reversed(arr.shape))
        out += _pack_string(name) + struct.pack("<I", len(ne))
        for d in ne:
            out += struct.pack("<Q", d)
        out += struct.pack("<IQ", ttype, offset)
        blobs.append(blob)
        offset += (len(blob) + alignment - 1) // alignment * alignment
    pad = (-len(out)) % alignment
    out += b"\0" * pad
    for blob in blobs:
        out += blob
        out += b"\0" * ((-len(blob)) % alignment)
    with open(path, "wb") as f:
        f.write(out)
