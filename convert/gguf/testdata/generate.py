#!/usr/bin/python3
"""Writes the GGUF test fixtures of convert/gguf and expected.json.

No GGUF writer is packaged here, so the files are laid out by hand from the
GGUF spec (ggml docs/gguf.md). The expected values come from an independent
numpy dequantizer per block type, written after gguf-py's
gguf/quants.py (vectorised over blocks, a different code path from the
block loops of ggml-quants.c that the Go reader follows); Q8_1 and Q8_K,
which quants.py lacks, follow ggml-common.h and dequantize_row_q8_K.

Run with Debian's /usr/bin/python3 (numpy) from this folder:
    /usr/bin/python3 generate.py
Deterministic (fixed seeds). Files:
    quant.gguf      v3, general.alignment 64: one tensor per block type; every
                    block has random quants and sane float16 scales, except the
                    last block of each tensor, which is random bytes throughout
                    (NaN, Inf and subnormal scales included)
    native_v2.gguf  v2, default alignment: F32 F16 BF16 F64 I8 I16 I32 I64,
                    a 0-d scalar, a zero-size tensor, a 4-d tensor
    native_be.gguf  v3 big-endian: the same native types, plus a Q8_0
                    tensor (skipped: blocks in big-endian files)
expected.json holds the sha256 of each tensor's values as the reader must
stream them (value type, little-endian, C order, NaN canonical) and the
first few values.
"""

import hashlib
import json
import struct

import numpy as np

QK_K = 256

# ggml type id, (values per block, bytes per block): gguf-py GGML_QUANT_SIZES,
# except Q8_1, whose ggml-common.h block is d f16, s f16, qs[32] (36 bytes).
TYPES = {
    "F32": (0, 1, 4), "F16": (1, 1, 2), "Q4_0": (2, 32, 18), "Q4_1": (3, 32, 20),
    "Q5_0": (6, 32, 22), "Q5_1": (7, 32, 24), "Q8_0": (8, 32, 34), "Q8_1": (9, 32, 36),
    "Q2_K": (10, 256, 84), "Q3_K": (11, 256, 110), "Q4_K": (12, 256, 144),
    "Q5_K": (13, 256, 176), "Q6_K": (14, 256, 210), "Q8_K": (15, 256, 292),
    "I8": (24, 1, 1), "I16": (25, 1, 2), "I32": (26, 1, 4), "I64": (27, 1, 8),
    "F64": (28, 1, 8), "BF16": (30, 1, 2),
}

# Byte offsets of the float16 scales in each block (d, m/dmin, s), and Q8_K's float32 d.
F16_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0], "Q8_1": [0, 2],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}


# A float16 field forced in the last (random) block of some tensors, so that
# Inf, NaN (with a payload) and subnormal scales are certainly exercised.
SPECIAL = {"Q4_0": (0, 0x7C00), "Q4_K": (2, 0x7D01), "Q5_1": (0, 0x0001), "Q6_K": (208, 0xFC00), "Q2_K": (80, 0x83FF)}


# ---------------------------------------------------------------- dequantizers
# blocks: uint8 array (n_blocks, bytes per block) -> float32 (n_blocks, values per block)

def f16(b):
    return b.copy().view(np.float16).astype(np.float32)


def nibbles(qs):
    # low nibbles first (values 0..15), then high nibbles (16..31)
    n = qs.shape[0]
    q = qs.reshape((n, 1, -1)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 2, 1))
    return (q & np.uint8(0x0F)).reshape((n, -1))


def fifth_bits(qh):
    n = qh.shape[0]
    h = qh.copy().view(np.uint32).reshape((n, 1)) >> np.arange(32, dtype=np.uint32).reshape((1, 32))
    return (h & np.uint32(1)).astype(np.uint8)


def dq_q4_0(b):
    d = f16(b[:, 0:2])
    q = nibbles(b[:, 2:18]).astype(np.int8) - np.int8(8)
    return d * q.astype(np.float32)


def dq_q4_1(b):
    d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
    q = nibbles(b[:, 4:20]).astype(np.float32)
    return (d * q) + m


def dq_q5_0(b):
    d = f16(b[:, 0:2])
    q = (nibbles(b[:, 6:22]) | (fifth_bits(b[:, 2:6]) << np.uint8(4))).astype(np.int8) - np.int8(16)
    return d * q.astype(np.float32)


def dq_q5_1(b):
    d, m = f16(b[:, 0:2]), f16(b[:, 2:4])
    q = (nibbles(b[:, 8:24]) | (fifth_bits(b[:, 4:8]) << np.uint8(4))).astype(np.float32)
    return (d * q) + m


def dq_q8_0(b):
    return b[:, 2:34].copy().view(np.int8).astype(np.float32) * f16(b[:, 0:2])


def dq_q8_1(b):
    return b[:, 4:36].copy().view(np.int8).astype(np.float32) * f16(b[:, 0:2])


def dq_q2_k(b):
    n = b.shape[0]
    scales, qs = b[:, 0:16], b[:, 16:80]
    d, dmin = f16(b[:, 80:82]), f16(b[:, 82:84])
    dl = (d * (scales & 0xF).astype(np.float32)).reshape((n, 16, 1))
    ml = (dmin * (scales >> 4).astype(np.float32)).reshape((n, 16, 1))
    shift = np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))
    q = (qs.reshape((n, -1, 1, 32)) >> shift) & np.uint8(3)
    q = q.reshape((n, 16, 16)).astype(np.float32)
    return (dl * q - ml).reshape((n, -1))


def dq_q3_k(b):
    n = b.shape[0]
    hmask, qs, scales, d = b[:, 0:32], b[:, 32:96], b[:, 96:108], f16(b[:, 108:110])
    lsc, hsc = scales[:, :8], scales[:, 8:]
    lsc = (lsc.reshape((n, 1, 8)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 2, 1))).reshape((n, 16))
    hsc = (hsc.reshape((n, 1, 4)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 4, 1))).reshape((n, 16))
    sc = (lsc & np.uint8(0x0F)) | ((hsc & np.uint8(0x03)) << np.uint8(4))
    sc = (sc.astype(np.int8) - np.int8(32)).astype(np.float32)
    dl = (d * sc).reshape((n, 16, 1))
    ql = qs.reshape((n, -1, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))
    qh = hmask.reshape((n, -1, 1, 32)) >> np.arange(8, dtype=np.uint8).reshape((1, 1, 8, 1))
    ql = ql.reshape((n, 16, 16)) & np.uint8(3)
    qh = (qh.reshape((n, 16, 16)) & np.uint8(1)) ^ np.uint8(1)  # subtract 4 where the mask bit is clear
    q = (ql.astype(np.int8) - (qh << np.uint8(2)).astype(np.int8)).astype(np.float32)
    return (dl * q).reshape((n, QK_K))


def scale_min_k4(scales):
    n = scales.shape[0]
    s = scales.reshape((n, 3, 4))
    d, m, md = s[:, 0, :], s[:, 1, :], s[:, 2, :]
    sc = np.concatenate([d & 0x3F, (md & 0x0F) | ((d >> 2) & 0x30)], axis=-1)
    mn = np.concatenate([m & 0x3F, (md >> 4) | ((m >> 2) & 0x30)], axis=-1)
    return sc, mn


def dq_q4_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    dd = (d * sc.astype(np.float32)).reshape((n, -1, 1))
    dm = (dmin * mn.astype(np.float32)).reshape((n, -1, 1))
    q = b[:, 16:144].reshape((n, -1, 1, 32)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 1, 2, 1))
    q = (q & np.uint8(0x0F)).reshape((n, -1, 32)).astype(np.float32)
    return (dd * q - dm).reshape((n, QK_K))


def dq_q5_k(b):
    n = b.shape[0]
    d, dmin = f16(b[:, 0:2]), f16(b[:, 2:4])
    sc, mn = scale_min_k4(b[:, 4:16])
    qh, qs = b[:, 16:48], b[:, 48:176]
    dd = (d * sc.astype(np.float32)).reshape((n, -1, 1))
    dm = (dmin * mn.astype(np.float32)).reshape((n, -1, 1))
    ql = qs.reshape((n, -1, 1, 32)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 1, 2, 1))
    qh = qh.reshape((n, -1, 1, 32)) >> np.arange(8, dtype=np.uint8).reshape((1, 1, 8, 1))
    ql = (ql & np.uint8(0x0F)).reshape((n, -1, 32))
    qh = (qh & np.uint8(0x01)).reshape((n, -1, 32))
    q = (ql | (qh << np.uint8(4))).astype(np.float32)
    return (dd * q - dm).reshape((n, QK_K))


def dq_q6_k(b):
    n = b.shape[0]
    ql, qh, scales, d = b[:, 0:128], b[:, 128:192], b[:, 192:208], f16(b[:, 208:210])
    scales = scales.copy().view(np.int8).astype(np.float32)
    d = (d * scales).reshape((n, 16, 1))
    ql = ql.reshape((n, -1, 1, 64)) >> np.array([0, 4], dtype=np.uint8).reshape((1, 1, 2, 1))
    ql = (ql & np.uint8(0x0F)).reshape((n, -1, 32))
    qh = qh.reshape((n, -1, 1, 32)) >> np.array([0, 2, 4, 6], dtype=np.uint8).reshape((1, 1, 4, 1))
    qh = (qh & np.uint8(0x03)).reshape((n, -1, 32))
    q = (ql | (qh << np.uint8(4))).astype(np.int8) - np.int8(32)
    q = q.reshape((n, 16, -1)).astype(np.float32)
    return (d * q).reshape((n, QK_K))


def dq_q8_k(b):
    d = b[:, 0:4].copy().view(np.float32)
    return d * b[:, 4:260].copy().view(np.int8).astype(np.float32)


DEQUANT = {
    "Q4_0": dq_q4_0, "Q4_1": dq_q4_1, "Q5_0": dq_q5_0, "Q5_1": dq_q5_1, "Q8_0": dq_q8_0,
    "Q8_1": dq_q8_1, "Q2_K": dq_q2_k, "Q3_K": dq_q3_k, "Q4_K": dq_q4_k, "Q5_K": dq_q5_k,
    "Q6_K": dq_q6_k, "Q8_K": dq_q8_k,
}


# ---------------------------------------------------------------- GGUF writer

class Writer:
    def __init__(self, version=3, endian="<"):
        self.version, self.e = version, endian
        self.kv, self.tensors = [], []

    def p(self, fmt, *v):
        return struct.pack(self.e + fmt, *v)

    def string(self, s):
        b = s.encode() if isinstance(s, str) else s
        return self.p("Q", len(b)) + b

    def value(self, t, v):
        fmts = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
        if t == 8:
            return self.string(v)
        if t == 9:
            et, items = v
            return self.p("IQ", et, len(items)) + b"".join(self.value(et, x) for x in items)
        return self.p(fmts[t], v)

    def add_kv(self, key, t, v):
        self.kv.append(self.string(key) + self.p("I", t) + self.value(t, v))

    def add_tensor(self, name, ne, typ, data):
        # ne: dimensions in ggml order (innermost first)
        self.tensors.append((name, ne, typ, bytes(data)))

    def bytes(self, alignment=32):
        out = b"GGUF" + self.p("I", self.version) + self.p("QQ", len(self.tensors), len(self.kv)) + b"".join(self.kv)
        off, datas = 0, []
        for name, ne, typ, data in self.tensors:
            out += self.string(name) + self.p("I", len(ne)) + b"".join(self.p("Q", d) for d in ne)
            out += self.p("IQ", TYPES[typ][0], off)
            datas.append((off, data))
            off += (len(data) + alignment - 1) // alignment * alignment
        out += b"\0" * ((-len(out)) % alignment)
        blob = bytearray(off)
        for o, d in datas:
            blob[o:o + len(d)] = d
        # the last tensor's padding is not needed in the file
        end = max([o + len(d) for o, d in datas], default=0)
        return out + bytes(blob[:end])


def sha(dtype, arr):
    a = np.ascontiguousarray(arr).astype(dtype.newbyteorder("<"), copy=True)
    if a.dtype.kind == "f":
        canon = {2: 0x7E00, 4: 0x7FC00000, 8: 0x7FF8000000000000}[a.dtype.itemsize]
        u = a.view({2: "<u2", 4: "<u4", 8: "<u8"}[a.dtype.itemsize])
        u[np.isnan(a)] = canon
    return hashlib.sha256(a.tobytes()).hexdigest()


def bf16_sha(bits):
    u = bits.astype("<u2", copy=True)
    u[((u & 0x7F80) == 0x7F80) & ((u & 0x7F) != 0)] = 0x7FC0
    return hashlib.sha256(u.tobytes()).hexdigest()


def first(vals, k=4):
    out = []
    for v in np.asarray(vals).reshape(-1)[:k]:
        v = v.item()
        out.append(None if isinstance(v, float) and not np.isfinite(v) else v)
    return out


def quant_file(exp):
    rng = np.random.default_rng(20240601)
    w = Writer(3)
    w.add_kv("general.architecture", 8, "test")
    w.add_kv("general.alignment", 4, 64)
    w.add_kv("general.quantization_version", 4, 2)
    tensors = []
    for name, fn in DEQUANT.items():
        _, blck, size = TYPES[name]
        # ggml dims: rows of two blocks for 32-value types, one super-block for k-quants
        ne = [64, 3] if blck == 32 else [256, 3]
        if name == "Q4_0":
            ne = [32, 2, 3]  # a 3-d tensor: row-major shape [3, 2, 32]
        nblocks = int(np.prod(ne)) // blck
        blocks = rng.integers(0, 256, size=(nblocks, size), dtype=np.uint8)
        for b in range(nblocks - 1):  # the last block stays random throughout
            for off in F16_FIELDS.get(name, []):
                blocks[b, off:off + 2] = np.frombuffer(np.float16(rng.normal(0, 0.05)).tobytes(), np.uint8)
            if name == "Q8_K":
                blocks[b, 0:4] = np.frombuffer(np.float32(rng.normal(0, 0.01)).tobytes(), np.uint8)
        if name in SPECIAL:
            off, bits = SPECIAL[name]
            blocks[-1, off:off + 2] = np.frombuffer(np.uint16(bits).tobytes(), np.uint8)
        vals = fn(blocks).astype(np.float32).reshape(list(reversed(ne)))
        tname = f"blk.0.{name.lower()}.weight"
        w.add_tensor(tname, ne, name, blocks.tobytes())
        tensors.append({"name": tname, "dtype": name.lower(), "shape": list(reversed(ne)),
                        "sha256": sha(np.dtype(np.float32), vals), "first": first(vals)})
    with open("quant.gguf", "wb") as f:
        f.write(w.bytes(64))
    exp["quant.gguf"] = {"version": 3, "alignment": 64, "tensors": tensors}


def native_tensors(rng):
    out = []
    f32 = rng.normal(size=(3, 5)).astype(np.float32)
    f32[0, 0], f32[0, 1], f32[0, 2] = np.nan, np.inf, -0.0
    out.append(("token_embd.weight", "F32", f32, "float32"))
    out.append(("blk.0.attn_norm.weight", "F16", rng.normal(size=(7,)).astype(np.float16), "float16"))
    bf = rng.integers(0, 1 << 16, size=(2, 3), dtype=np.uint16)
    bf[0, 0] = 0x7F81  # a signalling NaN payload: hashed canonical
    out.append(("blk.0.ffn_up.weight", "BF16", bf, "bfloat16"))
    out.append(("blk.0.ffn_down.weight", "F64", rng.normal(size=(2, 2, 3)), "float64"))
    out.append(("pos.i8", "I8", rng.integers(-128, 128, size=(4,), dtype=np.int8), "int8"))
    out.append(("pos.i16", "I16", rng.integers(-30000, 30000, size=(2, 3), dtype=np.int16), "int16"))
    out.append(("pos.i32", "I32", rng.integers(-2**31, 2**31, size=(3,), dtype=np.int32), "int32"))
    out.append(("pos.i64", "I64", rng.integers(-2**62, 2**62, size=(2, 1), dtype=np.int64), "int64"))
    out.append(("scalar", "F32", np.array(1.5, dtype=np.float32), "float32"))
    out.append(("empty.weight", "F32", np.zeros((0, 4), dtype=np.float32), "float32"))
    out.append(("blk.1.four_d", "F32", rng.normal(size=(2, 1, 3, 2)).astype(np.float32), "float32"))
    return out


def native_file(path, version, endian, exp, extra_q8=False):
    rng = np.random.default_rng(7)
    w = Writer(version, endian)
    w.add_kv("general.architecture", 8, "test")
    w.add_kv("general.name", 8, "native " + path)
    w.add_kv("test.array", 9, (5, [1, -2, 3]))
    tensors = []
    for name, typ, arr, dt in native_tensors(rng):
        ne = list(reversed(arr.shape))
        data = arr.astype(arr.dtype.newbyteorder(endian)).tobytes()
        w.add_tensor(name, ne, typ, data)
        if typ == "BF16":
            h = bf16_sha(arr)
            fv = first((arr.astype(np.uint32) << 16).view(np.float32))
        else:
            h, fv = sha(arr.dtype, arr), first(arr)
        tensors.append({"name": name, "dtype": dt, "shape": list(arr.shape), "sha256": h, "first": fv})
    skipped = []
    if extra_q8:
        w.add_tensor("blk.0.q8", [32], "Q8_0", bytes(34))
        skipped.append("blk.0.q8")
    with open(path, "wb") as f:
        f.write(w.bytes(32))
    exp[path] = {"version": version, "alignment": 32, "tensors": tensors, "skipped": skipped}


def main():
    np.seterr(all="ignore")  # random scales overflow to Inf and NaN on purpose
    exp = {}
    quant_file(exp)
    native_file("native_v2.gguf", 2, "<", exp)
    native_file("native_be.gguf", 3, ">", exp, extra_q8=True)
    with open("expected.json", "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
