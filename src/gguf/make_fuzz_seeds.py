#!/usr/bin/env python3
"""Write small, complete, valid GGUF seeds for the fuzzer.

usage: make_fuzz_seeds.py OUT_DIR MAX_BYTES FILE.gguf...

Each seed keeps a reference file's metadata and a few of its smallest tensors
(offsets recomputed), so it stays under MAX_BYTES while still holding every
section: header, metadata, tensor infos, padding and data. Written
independently of the C++ reader and writer, straight from the GGUF spec.
"""
import os
import struct
import sys

FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
BLOCK = {0: (1, 4), 1: (1, 2), 30: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24),
         8: (32, 34), 9: (32, 36), 10: (256, 84), 11: (256, 110), 12: (256, 144),
         13: (256, 176), 14: (256, 210), 15: (256, 292)}


def skip_value(b, p, t):
    if t in FIXED:
        return p + FIXED[t]
    if t == 8:
        (n,) = struct.unpack_from("<Q", b, p)
        return p + 8 + n
    if t == 9:
        et, n = struct.unpack_from("<IQ", b, p)
        p += 12
        for _ in range(n):
            p = skip_value(b, p, et)
        return p
    raise ValueError(f"bad value type {t}")


def make_seed(path, max_bytes):
    b = open(path, "rb").read()
    magic, version, n_tensors, n_kv = struct.unpack_from("<4sIQQ", b, 0)
    if magic != b"GGUF" or version not in (2, 3):
        return None
    p = 24
    kv_start = p
    alignment = 32
    for _ in range(n_kv):
        (n,) = struct.unpack_from("<Q", b, p)
        key = b[p + 8:p + 8 + n]
        p += 8 + n
        (t,) = struct.unpack_from("<I", b, p)
        if key == b"general.alignment":
            (alignment,) = struct.unpack_from("<I", b, p + 4)
        p = skip_value(b, p + 4, t)
    kv_bytes = b[kv_start:p]
    infos = []
    for _ in range(n_tensors):
        (n,) = struct.unpack_from("<Q", b, p)
        name = b[p + 8:p + 8 + n]
        p += 8 + n
        (nd,) = struct.unpack_from("<I", b, p)
        ne = struct.unpack_from(f"<{nd}q", b, p + 4)
        p += 4 + 8 * nd
        ttype, off = struct.unpack_from("<IQ", b, p)
        p += 12
        infos.append((name, ne, ttype, off))
    data_start = (p + alignment - 1) // alignment * alignment
    budget = max_bytes - 24 - len(kv_bytes) - 64
    chosen = []
    for name, ne, ttype, off in sorted(infos, key=lambda i: BLOCK[i[2]][1] * i[1][0]):
        elems = 1
        for n in ne:
            elems *= n
        nbytes = elems // BLOCK[ttype][0] * BLOCK[ttype][1]
        cost = len(name) + 8 + 4 + 8 * len(ne) + 12 + nbytes + alignment
        if cost > budget or len(chosen) >= 6:
            continue
        budget -= cost
        chosen.append((name, ne, ttype, b[data_start + off:data_start + off + nbytes]))
    if budget < 0:
        return None
    out = bytearray(struct.pack("<4sIQQ", b"GGUF", 3, len(chosen), n_kv)) + kv_bytes
    offset = 0
    for name, ne, ttype, data in chosen:
        out += struct.pack("<Q", len(name)) + name + struct.pack("<I", len(ne))
        out += struct.pack(f"<{len(ne)}q", *ne) + struct.pack("<IQ", ttype, offset)
        offset = (offset + len(data) + alignment - 1) // alignment * alignment
    for _, _, _, data in chosen:
        out += b"\0" * (-len(out) % alignment) + data
    out += b"\0" * (-len(out) % alignment)
    return bytes(out) if len(out) <= max_bytes else None


def main():
    out_dir, max_bytes, files = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for path in files:
        seed = make_seed(path, max_bytes)
        if seed is not None:
            name = os.path.basename(path).removesuffix(".gguf")
            with open(os.path.join(out_dir, name + ".small.gguf"), "wb") as f:
                f.write(seed)
            written += 1
    print(f"wrote {written} valid seeds")


if __name__ == "__main__":
    main()
