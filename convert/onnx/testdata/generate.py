#!/usr/bin/python3
"""Writes the ONNX test fixtures and expected.json (run with Debian's /usr/bin/python3, onnx 1.12).

Every storage the reader handles: raw_data of every type, the typed repeated
fields (as onnx.helper writes them: packed), the same fields unpacked (protobuf
allows both; hand-encoded here because the Python runtime always packs),
float16/bfloat16/bool/int8/float8/int4 in int32_data, Constant nodes, If/Loop
subgraphs, external data with offset/length, sparse initializers, and
attribute-only models like skl2onnx's. Hostile models go to
../../../testdata/hostile/ with the error text they must produce.

expected.json holds, per model, the tensors the reader must list (name, dtype,
shape, layer_type) with the sha256 of their values as onnx.numpy_helper reads
them (C order, little-endian, NaN canonical), and the names it must skip.
Types numpy_helper 1.12 cannot read (bfloat16 bits, float8, 4- and 2-bit) are
decoded here from their bit layouts. Deterministic: fixed seeds.
"""
import hashlib
import json
import math
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "testdata", "hostile"))
rng = np.random.default_rng(20261125)
expected = {}

NAN32 = struct.unpack("<f", struct.pack("<I", 0x7FC00000))[0]


def canon(dtype, b):
    """SPEC §5: every NaN hashed as its dtype's canonical quiet NaN."""
    if dtype == "float32":
        a = np.frombuffer(b, "<u4").copy()
        a[(a & 0x7F800000 == 0x7F800000) & (a & 0x7FFFFF != 0)] = 0x7FC00000
        return a.tobytes()
    if dtype == "float64":
        a = np.frombuffer(b, "<u8").copy()
        a[(a & 0x7FF0000000000000 == 0x7FF0000000000000) & (a & 0xFFFFFFFFFFFFF != 0)] = 0x7FF8000000000000
        return a.tobytes()
    if dtype == "float16":
        a = np.frombuffer(b, "<u2").copy()
        a[(a & 0x7C00 == 0x7C00) & (a & 0x3FF != 0)] = 0x7E00
        return a.tobytes()
    if dtype == "bfloat16":
        a = np.frombuffer(b, "<u2").copy()
        a[(a & 0x7F80 == 0x7F80) & (a & 0x7F != 0)] = 0x7FC0
        return a.tobytes()
    if dtype == "float8_e4m3fn":
        return bytes(0x7F if v & 0x7F == 0x7F else v for v in b)
    if dtype == "float8_e5m2":
        return bytes(0x7E if (v & 0x7C == 0x7C and v & 3) else v for v in b)
    return b


def sha(dtype, b):
    return hashlib.sha256(canon(dtype, b)).hexdigest()


NP_DTYPE = {
    np.dtype("float32"): "float32", np.dtype("float64"): "float64", np.dtype("float16"): "float16",
    np.dtype("int8"): "int8", np.dtype("int16"): "int16", np.dtype("int32"): "int32", np.dtype("int64"): "int64",
    np.dtype("uint8"): "uint8", np.dtype("uint16"): "uint16", np.dtype("uint32"): "uint32",
    np.dtype("uint64"): "uint64", np.dtype("bool"): "bool",
}


def want(model, name, arr=None, dtype=None, data=None, shape=None, layer_type=""):
    """Records an expected tensor: from a numpy array read by numpy_helper, or raw value bytes."""
    if arr is not None:
        arr = np.array(arr, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        dtype = dtype or NP_DTYPE[arr.dtype]
        data = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        shape = list(arr.shape)
    expected.setdefault(model, {"tensors": [], "skipped": []})["tensors"].append(
        {"name": name, "dtype": dtype, "shape": [int(d) for d in shape], "sha256": sha(dtype, data), "layer_type": layer_type})


def skipped(model, name):
    expected.setdefault(model, {"tensors": [], "skipped": []})["skipped"].append(name)


def f32(vals):
    return np.asarray(vals, dtype=np.float32).tobytes()


# Bit-level decoders for types numpy_helper 1.12 cannot read.
def dec_e4m3fnuz(b):
    if b == 0x80:
        return NAN32
    s = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 15, b & 7
    return s * (m * 2.0 ** -10 if e == 0 else (1 + m / 8) * 2.0 ** (e - 8))


def dec_e5m2fnuz(b):
    if b == 0x80:
        return NAN32
    s = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 2) & 31, b & 3
    return s * (m * 2.0 ** -17 if e == 0 else (1 + m / 4) * 2.0 ** (e - 16))


def dec_e8m0(b):
    return NAN32 if b == 0xFF else 2.0 ** (b - 127)


def dec_fp4(v):
    s = -1.0 if v & 8 else 1.0
    e, m = (v >> 1) & 3, v & 1
    return s * (m * 0.5 if e == 0 else (1 + m / 2) * 2.0 ** (e - 1))


def pack(vals, bits):
    """Packs unsigned codes LSB first, as onnx.proto says for 4- and 2-bit types."""
    per = 8 // bits
    out = bytearray((len(vals) + per - 1) // per)
    for i, v in enumerate(vals):
        out[i // per] |= (v & ((1 << bits) - 1)) << (bits * (i % per))
    return bytes(out)


def raw_tensor(name, dtype_code, dims, data):
    t = TensorProto()
    t.name, t.data_type, t.raw_data = name, dtype_code, data
    t.dims.extend(dims)
    return t


def model_of(nodes, inits, name, sparse=(), opsets=(("", 13),), **kw):
    g = helper.make_graph(nodes, name, [], [], initializer=inits, sparse_initializer=list(sparse))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets], producer_name="ckpt2csv-tests", producer_version="1")
    m.ir_version = 8
    for k, v in kw.items():
        e = m.metadata_props.add()
        e.key, e.value = k, v
    return m


def save(m, fname):
    onnx.save_model(m, os.path.join(HERE, fname))


# ---- raw.onnx: raw_data of every type ----
def gen_raw():
    M = "raw.onnx"
    inits = []
    arrays = {
        "f32": rng.standard_normal((3, 4)).astype(np.float32),
        "f64": rng.standard_normal(5),
        "f16": rng.standard_normal((2, 3)).astype(np.float16),
        "i8": np.array([-128, -1, 0, 1, 127, 5, -7], np.int8),
        "i16": np.array([-32768, 0, 32767], np.int16),
        "i32": np.array([-2**31, -1, 0, 2**31 - 1], np.int32),
        "i64": np.array([[-2**63, -1], [0, 2**63 - 1]], np.int64),
        "u8": np.array([0, 1, 128, 255, 7], np.uint8),
        "u16": np.array([0, 1, 65535], np.uint16),
        "u32": np.array([0, 1, 2**32 - 1], np.uint32),
        "u64": np.array([0, 2**64 - 1], np.uint64),
        "bool": np.array([True, False, True, True, False]),
        "scalar": np.array(3.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    arrays["f32"][0, 0] = np.nan
    layer = {"f32": "MatMul", "f64": "Add"}
    for name, a in arrays.items():
        t = numpy_helper.from_array(a, name)
        inits.append(t)
        want(M, name, numpy_helper.to_array(t), layer_type=layer.get(name, ""))
    bf = np.array([0x3F80, 0xC040, 0x7F80, 0x0001, 0x7FC1], np.uint16)  # 1, -3, inf, tiny, NaN with payload
    inits.append(raw_tensor("bf16", TensorProto.BFLOAT16, [5], bf.tobytes()))
    want(M, "bf16", dtype="bfloat16", data=bf.tobytes(), shape=[5])
    all8 = bytes(range(256))
    inits.append(raw_tensor("e4m3fn", 17, [16, 16], all8))
    want(M, "e4m3fn", dtype="float8_e4m3fn", data=all8, shape=[16, 16])
    inits.append(raw_tensor("e5m2", 19, [256], all8))
    want(M, "e5m2", dtype="float8_e5m2", data=all8, shape=[256])
    inits.append(raw_tensor("e4m3fnuz", 18, [256], all8))
    want(M, "e4m3fnuz", dtype="float8_e4m3fnuz", data=f32([dec_e4m3fnuz(b) for b in all8]), shape=[256])
    inits.append(raw_tensor("e5m2fnuz", 20, [256], all8))
    want(M, "e5m2fnuz", dtype="float8_e5m2fnuz", data=f32([dec_e5m2fnuz(b) for b in all8]), shape=[256])
    inits.append(raw_tensor("e8m0", 24, [256], all8))
    want(M, "e8m0", dtype="float8_e8m0", data=f32([dec_e8m0(b) for b in all8]), shape=[256])
    i4 = [-8, -1, 0, 1, 7, 3, -5]  # odd count: the last byte is half used
    inits.append(raw_tensor("int4", 22, [7], pack(i4, 4)))
    want(M, "int4", dtype="int4", data=f32(i4), shape=[7])
    u4 = list(range(16)) + [9]
    inits.append(raw_tensor("uint4", 21, [17], pack(u4, 4)))
    want(M, "uint4", dtype="uint4", data=f32(u4), shape=[17])
    fp4 = list(range(16))
    inits.append(raw_tensor("fp4", 23, [4, 4], pack(fp4, 4)))
    want(M, "fp4", dtype="float4_e2m1", data=f32([dec_fp4(v) for v in fp4]), shape=[4, 4])
    i2 = [-2, -1, 0, 1, 1]
    inits.append(raw_tensor("int2", 26, [5], pack(i2, 2)))
    want(M, "int2", dtype="int2", data=f32(i2), shape=[5])
    u2 = [0, 1, 2, 3, 3, 2]
    inits.append(raw_tensor("uint2", 25, [6], pack(u2, 2)))
    want(M, "uint2", dtype="uint2", data=f32(u2), shape=[6])
    inits.append(numpy_helper.from_array(np.array([1 + 2j], np.complex64), "c64"))
    skipped(M, "c64")
    inits.append(numpy_helper.from_array(np.array([b"ab", b"c"], object), "strings"))
    skipped(M, "strings")
    inits.append(raw_tensor("future_type", 99, [1], b"\x00"))
    skipped(M, "future_type")
    nodes = [helper.make_node("MatMul", ["x", "f32"], ["y"], name="mm"),
             helper.make_node("Add", ["y", "f64"], ["z"], name="add")]
    save(model_of(nodes, inits, "raw", author="tests"), M)
    expected[M]["metadata"] = {"ir_version": 8, "producer_name": "ckpt2csv-tests", "graph_name": "raw"}


# ---- typed.onnx: typed repeated fields as onnx.helper writes them (packed) ----
def gen_typed():
    M = "typed.onnx"
    specs = [
        ("t_float", TensorProto.FLOAT, [2, 3], rng.standard_normal(6).astype(np.float32).tolist()),
        ("t_double", TensorProto.DOUBLE, [3], [1.5, -2.25, 1e300]),
        ("t_int32", TensorProto.INT32, [4], [-2**31, -1, 0, 2**31 - 1]),
        ("t_int16", TensorProto.INT16, [3], [-32768, -2, 32767]),
        ("t_int8", TensorProto.INT8, [4], [-128, -1, 0, 127]),
        ("t_uint8", TensorProto.UINT8, [3], [0, 200, 255]),
        ("t_uint16", TensorProto.UINT16, [2], [0, 65535]),
        ("t_bool", TensorProto.BOOL, [4], [True, False, False, True]),
        ("t_f16", TensorProto.FLOAT16, [3], [1.0, -2.5, 65504.0]),
        ("t_int64", TensorProto.INT64, [3], [-2**63, -1, 2**63 - 1]),
        ("t_uint32", TensorProto.UINT32, [2], [0, 2**32 - 1]),
        ("t_uint64", TensorProto.UINT64, [2], [2**64 - 1, 2**63]),
    ]
    inits = []
    for name, code, dims, vals in specs:
        t = helper.make_tensor(name, code, dims, vals)
        assert not t.raw_data
        inits.append(t)
        want(M, name, numpy_helper.to_array(t))
    t = helper.make_tensor("t_bf16", TensorProto.BFLOAT16, [3], [1.0, 2.5, -3.0])
    inits.append(t)
    want(M, "t_bf16", dtype="bfloat16", data=np.array([v & 0xFFFF for v in t.int32_data], np.uint16).tobytes(), shape=[3])
    # float8, int4 and e8m0 in int32_data: one storage byte per int32 (two 4-bit values)
    t = TensorProto(name="t_e4m3fn", data_type=17, dims=[4])
    t.int32_data.extend([0x38, 0xB8, 0x7E, 0x01])
    inits.append(t)
    want(M, "t_e4m3fn", dtype="float8_e4m3fn", data=bytes([0x38, 0xB8, 0x7E, 0x01]), shape=[4])
    t = TensorProto(name="t_int4", data_type=22, dims=[5])
    i4 = [-8, 7, -1, 2, 5]
    t.int32_data.extend(pack(i4, 4))
    inits.append(t)
    want(M, "t_int4", dtype="int4", data=f32(i4), shape=[5])
    t = TensorProto(name="t_e8m0", data_type=24, dims=[3])
    t.int32_data.extend([127, 0, 254])
    inits.append(t)
    want(M, "t_e8m0", dtype="float8_e8m0", data=f32([dec_e8m0(b) for b in (127, 0, 254)]), shape=[3])
    save(model_of([], inits, "typed"), M)


# ---- unpacked.onnx: the same fields unpacked, hand-encoded ----
def varint(v):
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(num, wt):
    return varint(num << 3 | wt)


def ld(num, payload):
    return tag(num, 2) + varint(len(payload)) + payload


def unpacked_tensor(name, code, dims, field, vals, kind):
    b = b"".join(tag(1, 0) + varint(d) for d in dims) + tag(2, 0) + varint(code) + ld(8, name.encode())
    for v in vals:
        if kind == "f32":
            b += tag(field, 5) + struct.pack("<f", v)
        elif kind == "f64":
            b += tag(field, 1) + struct.pack("<d", v)
        else:
            b += tag(field, 0) + varint(v)
    return b


def gen_unpacked():
    M = "unpacked.onnx"
    m = model_of([], [numpy_helper.from_array(np.arange(3, dtype=np.float32), "packed_first")], "unpacked")
    frag = b""
    specs = [
        ("u_float", 1, [2, 2], 4, [1.5, -2.0, 3.25, 1e-40], "f32"),
        ("u_double", 11, [2], 10, [math.pi, -0.0], "f64"),
        ("u_int32", 6, [3], 5, [-5, 0, 2**31 - 1], "int"),
        ("u_int8", 3, [3], 5, [-128, 127, -1], "int"),
        ("u_f16", 10, [2], 5, [0x3C00, 0xFC00], "int"),
        ("u_bool", 9, [3], 5, [1, 0, 1], "int"),
        ("u_int64", 7, [2], 7, [-2**63, 12345678901234], "int"),
        ("u_uint64", 13, [2], 11, [2**64 - 1, 1], "int"),
        ("u_uint32", 12, [1], 11, [2**32 - 1], "int"),
    ]
    for s in specs:
        frag += ld(5, unpacked_tensor(*s))
    # one float tensor with a packed run then unpacked values
    mixed = tag(1, 0) + varint(5) + tag(2, 0) + varint(1) + ld(8, b"u_mixed") + ld(4, f32([1, 2, 3])) + tag(4, 5) + f32([4]) + tag(4, 5) + f32([5])
    frag += ld(5, mixed)
    # dims packed in one tensor, unpacked elsewhere
    pdims = ld(1, varint(2) + varint(1)) + tag(2, 0) + varint(1) + ld(8, b"u_packed_dims") + ld(9, f32([7, 8]))
    frag += ld(5, pdims)
    data = m.SerializeToString() + ld(7, frag)  # a second graph field merges into the first
    with open(os.path.join(HERE, M), "wb") as f:
        f.write(data)
    loaded = onnx.load(os.path.join(HERE, M))
    for t in loaded.graph.initializer:
        want(M, t.name, numpy_helper.to_array(t))


# ---- constants.onnx: Constant nodes and If/Loop subgraphs ----
def gen_constants():
    M = "constants.onnx"
    ct = rng.standard_normal((2, 2)).astype(np.float32)
    sp = helper.make_sparse_tensor(numpy_helper.from_array(np.array([5.0, 6.0], np.float32), "sv"),
                                   numpy_helper.from_array(np.array([1, 3], np.int64), "si"), [2, 2])
    nodes = [
        helper.make_node("Constant", [], ["c_tensor"], value=numpy_helper.from_array(ct, "ignored_name")),
        helper.make_node("Add", ["c_tensor", "w0"], ["s0"]),
        helper.make_node("Constant", [], ["c_float"], value_float=0.25),
        helper.make_node("Constant", [], ["c_floats"], value_floats=[1.0, -2.5, 3.0]),
        helper.make_node("Constant", [], ["c_int"], value_int=-42),
        helper.make_node("Constant", [], ["c_ints"], value_ints=[1, -2, 3, 2**40]),
        helper.make_node("Constant", [], ["c_string"], value_string="hello"),
        helper.make_node("Constant", [], ["c_sparse"], sparse_value=sp),
        helper.make_node("Transpose", ["s0"], ["s1"], perm=[1, 0], name="transpose"),
    ]
    then_g = helper.make_graph(
        [helper.make_node("Constant", [], ["then_const"], value=numpy_helper.from_array(np.array([1, 2, 3], np.int32))),
         helper.make_node("Add", ["then_const", "then_init"], ["then_out"])],
        "then", [], [], initializer=[numpy_helper.from_array(np.array([10, 20, 30], np.int32), "then_init")])
    else_g = helper.make_graph(
        [helper.make_node("Constant", [], ["else_const"], value=numpy_helper.from_array(np.array([[7.0]], np.float64)))],
        "else", [], [])
    nodes.append(helper.make_node("If", ["cond"], ["if_out"], then_branch=then_g, else_branch=else_g))
    deep_then = helper.make_graph([helper.make_node("Constant", [], ["deep_a"], value_floats=[9.5])], "deep_then", [], [])
    deep_else = helper.make_graph([helper.make_node("Constant", [], ["deep_b"], value_ints=[8])], "deep_else", [], [])
    body = helper.make_graph(
        [helper.make_node("Constant", [], ["loop_const"], value=numpy_helper.from_array(np.array([0.5, 1.5], np.float16))),
         helper.make_node("If", ["c"], ["o"], then_branch=deep_then, else_branch=deep_else)],
        "body", [], [])
    nodes.append(helper.make_node("Loop", ["M", "cond"], ["loop_out"], body=body))
    inits = [numpy_helper.from_array(rng.standard_normal((2, 2)).astype(np.float32), "w0")]
    save(model_of(nodes, inits, "constants"), M)

    m = onnx.load(os.path.join(HERE, M))
    # in file order: main-graph nodes (subgraphs as their node is read), then initializers
    want(M, "c_tensor", ct, layer_type="Add")
    want(M, "c_float", np.array(0.25, np.float32))
    want(M, "c_floats", np.array([1.0, -2.5, 3.0], np.float32))
    want(M, "c_int", np.array(-42, np.int64))
    want(M, "c_ints", np.array([1, -2, 3, 2**40], np.int64))
    skipped(M, "c_string")
    dense = np.zeros((2, 2), np.float32)
    dense.flat[[1, 3]] = [5.0, 6.0]
    want(M, "c_sparse", dense)
    # onnx.helper sorts attributes by name: else_branch is stored before then_branch
    want(M, "else_const", np.array([[7.0]], np.float64))
    want(M, "then_const", np.array([1, 2, 3], np.int32), layer_type="Add")
    want(M, "then_init", np.array([10, 20, 30], np.int32), layer_type="Add")
    want(M, "loop_const", np.array([0.5, 1.5], np.float16))
    want(M, "deep_b", np.array([8], np.int64))
    want(M, "deep_a", np.array([9.5], np.float32))
    want(M, "w0", numpy_helper.to_array(m.graph.initializer[0]), layer_type="Add")


# ---- external.onnx: weights in external.bin under a subfolder ----
def gen_external():
    M = "external.onnx"
    arrays = {
        "ext_a": rng.standard_normal((16, 8)).astype(np.float32),
        "ext_b": rng.standard_normal(10).astype(np.float16),
        "ext_c": np.array([1, -2, 3], np.int64),
    }
    inits = [numpy_helper.from_array(a, n) for n, a in arrays.items()]
    inits.append(helper.make_tensor("inline_typed", TensorProto.FLOAT, [2], [1.0, 2.0]))  # float_data stays inline
    m = model_of([helper.make_node("Gemm", ["x", "ext_a", "ext_b"], ["y"])], inits, "external")
    os.makedirs(os.path.join(HERE, "weights"), exist_ok=True)
    binpath = os.path.join(HERE, "weights", "external.bin")
    if os.path.exists(binpath):
        os.remove(binpath)
    onnx.save_model(m, os.path.join(HERE, M), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights/external.bin", size_threshold=0)
    # drop "length" from the last tensor in the file: it then runs to the end of the file
    m = onnx.load(os.path.join(HERE, M), load_external_data=False)
    for t in m.graph.initializer:
        if t.name == "ext_c":
            kept = [(e.key, e.value) for e in t.external_data if e.key != "length"]
            del t.external_data[:]
            for k, v in kept:
                t.external_data.add(key=k, value=v)
    onnx.save_model(m, os.path.join(HERE, M))
    m = onnx.load(os.path.join(HERE, M))
    for t in m.graph.initializer:
        want(M, t.name, numpy_helper.to_array(t), layer_type="Gemm" if t.name in ("ext_a", "ext_b") else "")


# ---- sparse.onnx: sparse initializers, linear and coordinate indices ----
def gen_sparse():
    M = "sparse.onnx"
    lin_vals = np.array([1.5, -2.0, 3.0, 4.5], np.float32)
    lin_idx = np.array([0, 7, 8, 19], np.int64)
    s1 = helper.make_sparse_tensor(numpy_helper.from_array(lin_vals, "sp_linear"), numpy_helper.from_array(lin_idx, "i1"), [4, 5])
    co_vals = np.array([5, -6, 7], np.int32)
    co_idx = np.array([[0, 1], [1, 3], [2, 0]], np.int64)
    s2 = helper.make_sparse_tensor(numpy_helper.from_array(co_vals, "sp_coords"), numpy_helper.from_array(co_idx, "i2"), [3, 4])
    s3 = helper.make_sparse_tensor(numpy_helper.from_array(np.zeros(0, np.float64), "sp_empty"),
                                   numpy_helper.from_array(np.zeros(0, np.int64), "i3"), [2, 2])
    dense_init = numpy_helper.from_array(np.array([1.0, 2.0], np.float32), "dense")
    save(model_of([helper.make_node("MatMul", ["x", "sp_linear"], ["y"])], [dense_init], "sparse", sparse=[s1, s2, s3]), M)
    want(M, "dense", np.array([1.0, 2.0], np.float32))
    d1 = np.zeros((4, 5), np.float32)
    d1.flat[lin_idx] = lin_vals
    want(M, "sp_linear", d1, layer_type="MatMul")
    d2 = np.zeros((3, 4), np.int32)
    d2[tuple(co_idx.T)] = co_vals
    want(M, "sp_coords", d2)
    want(M, "sp_empty", np.zeros((2, 2), np.float64))


# ---- linear_classifier.onnx: no initializers, weights in ai.onnx.ml attributes (skl2onnx style) ----
def gen_linear_classifier():
    M = "linear_classifier.onnx"
    coef = rng.standard_normal(12).astype(np.float32)
    icpt = rng.standard_normal(3).astype(np.float32)
    nodes = [
        helper.make_node("Cast", ["X"], ["Xf"], to=TensorProto.FLOAT, name="Cast"),
        helper.make_node("Transpose", ["Xf"], ["Xt"], perm=[0, 1], name="Transpose"),
        helper.make_node("LinearClassifier", ["Xt"], ["label", "probability_tensor"], name="LinearClassifier", domain="ai.onnx.ml",
                         classlabels_ints=[0, 1, 2], coefficients=coef.tolist(), intercepts=icpt.tolist(), multi_class=1,
                         post_transform="LOGISTIC"),
        helper.make_node("Normalizer", ["probability_tensor"], ["probabilities"], name="Normalizer", domain="ai.onnx.ml", norm="L1"),
        helper.make_node("TreeEnsembleClassifier", ["Xt"], ["l2", "p2"], name="Tree", domain="ai.onnx.ml",
                         classlabels_strings=["a", "b"], nodes_featureids=[0, 1, 0], nodes_values=[0.5, 1.5, 0.0],
                         nodes_modes=["BRANCH_LEQ", "LEAF", "LEAF"], nodes_nodeids=[0, 1, 2], nodes_treeids=[0, 0, 0],
                         class_weights=[0.25, 0.75], class_ids=[0, 1]),
    ]
    save(model_of(nodes, [], "linear_classifier", opsets=(("", 13), ("ai.onnx.ml", 1))), M)
    want_attributes(M, onnx.load(os.path.join(HERE, M)))


def want_attributes(M, m):
    """Expected attribute tensors in file order, as onnx.helper reads them back."""
    for n in m.graph.node:
        for a in n.attribute:
            v = helper.get_attribute_value(a)
            name = n.name + "." + a.name
            if a.type == onnx.AttributeProto.FLOATS:
                want(M, name, np.array(v, np.float32), layer_type=n.op_type)
            elif a.type == onnx.AttributeProto.INTS:
                want(M, name, np.array(v, np.int64), layer_type=n.op_type)
            elif a.type == onnx.AttributeProto.STRINGS and n.domain == "ai.onnx.ml":
                skipped(M, name)


# ---- mixed_ml.onnx: initializers plus an ai.onnx.ml Scaler: standard-op attributes stay out ----
def gen_mixed_ml():
    M = "mixed_ml.onnx"
    w = rng.standard_normal((2, 2)).astype(np.float32)
    nodes = [
        helper.make_node("Scaler", ["X"], ["Xs"], name="Scaler", domain="ai.onnx.ml", offset=[0.5, -1.0], scale=[2.0, 4.0]),
        helper.make_node("Transpose", ["Xs"], ["Xt"], perm=[1, 0], name="Transpose"),
        helper.make_node("MatMul", ["Xt", "W"], ["Y"], name="MatMul"),
    ]
    save(model_of(nodes, [numpy_helper.from_array(w, "W")], "mixed_ml", opsets=(("", 13), ("ai.onnx.ml", 1))), M)
    want(M, "Scaler.offset", np.array([0.5, -1.0], np.float32), layer_type="Scaler")
    want(M, "Scaler.scale", np.array([2.0, 4.0], np.float32), layer_type="Scaler")
    want(M, "W", w, layer_type="MatMul")  # Transpose.perm is not exported: the model has initializers


# ---- hostile models, one file each ----
def gen_hostile():
    os.makedirs(HOSTILE, exist_ok=True)

    def ext_model(location, offset="0", length="16"):
        t = TensorProto(name="w", data_type=1, dims=[4], data_location=TensorProto.EXTERNAL)
        for k, v in (("location", location), ("offset", offset), ("length", length)):
            t.external_data.add(key=k, value=v)
        return model_of([], [t], "hostile")

    cases = {
        "onnx-external-traversal": (ext_model("../../etc/passwd"), "leaves the model's directory"),
        "onnx-external-absolute": (ext_model("/etc/passwd"), "is an absolute path"),
        "onnx-external-backslash": (ext_model("..\\..\\secret.bin"), "backslash"),
        # a location that exists (the model itself) with data past its end
        "onnx-external-past-eof": (ext_model("onnx-external-past-eof.onnx", offset="0", length="1048576"), "past the end of"),
        "onnx-raw-length": (model_of([], [raw_tensor("w", 1, [4, 4], b"\x00" * 12)], "hostile"), "raw_data is 12 bytes"),
    }
    bad = TensorProto(name="w", data_type=1, dims=[3])
    bad.float_data.extend([1.0, 2.0])
    cases["onnx-typed-count"] = (model_of([], [bad], "hostile"), "holds 2 values")
    for name, (m, msg) in cases.items():
        onnx.save_model(m, os.path.join(HOSTILE, name + ".onnx"))
        with open(os.path.join(HOSTILE, name + ".onnx.err"), "w") as f:
            f.write(msg + "\n")
    full = model_of([], [numpy_helper.from_array(np.arange(64, dtype=np.float32), "w")], "hostile").SerializeToString()
    with open(os.path.join(HOSTILE, "onnx-truncated.onnx"), "wb") as f:
        f.write(full[: len(full) - 100])
    with open(os.path.join(HOSTILE, "onnx-truncated.onnx.err"), "w") as f:
        f.write("truncated protobuf\n")


gen_raw()
gen_typed()
gen_unpacked()
gen_constants()
gen_external()
gen_sparse()
gen_linear_classifier()
gen_mixed_ml()
gen_hostile()
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
    f.write("\n")
