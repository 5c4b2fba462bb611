"""Writes the pickle test fixtures with CPython's own pickler (and numpy).

Run with Debian's /usr/bin/python3 from this folder; deterministic.
values_pN.pkl: the same plain-data object at protocols 0-5.
numpy_pN.pkl: numpy arrays (C, Fortran, big-endian, bool, scalar, object) at protocols 2, 4 and 5.
expected.json: sha256 of each numpy array's values (C order, little-endian).
"""
import collections, hashlib, json, pickle
import numpy as np

shared = [7, 8]
def values():
    d = collections.OrderedDict()
    d["a"] = 1
    d["b"] = [2, 3]
    cyc = []
    cyc.append(cyc)
    return {
        "int": 1, "neg": -5, "i32": 2**31 - 1, "i64": -2**63, "big": 2**70, "bigneg": -2**70,
        "float": 1.5, "inf": float("inf"), "str": "h\u00e9llo \u2603", "bytes": b"\x00\xff\n",
        "bytearray": bytearray(b"ab"), "none": None, "t": True, "f": False,
        "tuple": (1, 2, 3), "empty": (), "list": [1, [2]], "set": {1}, "frozenset": frozenset([2]),
        "od": d, "shared": [shared, shared], "cycle": cyc, 3: "int key", (1, 2): "tuple key",
    }

for proto in range(0, 6):
    with open(f"values_p{proto}.pkl", "wb") as f:
        pickle.dump(values(), f, protocol=proto)

def sha(a):
    a = np.ascontiguousarray(a)
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()

rng = np.random.default_rng(0)
arrays = {
    "c_f8": rng.standard_normal((3, 4)),
    "fortran_f4": np.asfortranarray(rng.standard_normal((2, 3, 4)).astype(np.float32)),
    "be_i4": np.arange(6, dtype=">i4").reshape(2, 3),
    "bool": np.array([True, False, True]),
    "u1": np.arange(5, dtype=np.uint8),
    "f2": np.array([1.5, -0.0, 65504], dtype=np.float16),
    "empty": np.zeros((0, 3), dtype=np.float64),
    "scalar_f4": np.float32(1.5),
    "scalar_i8": np.int64(-3),
    "obj": np.array(["x", 1], dtype=object),
    "big": np.arange(8300, dtype=np.float64),  # over 64 KiB: left in place
}
expected = {}
for name, a in arrays.items():
    if a.dtype != object:
        expected[name] = {"dtype": a.dtype.str, "shape": list(np.shape(a)), "sha256": sha(np.asarray(a))}
for proto in (2, 4, 5):
    with open(f"numpy_p{proto}.pkl", "wb") as f:
        pickle.dump(arrays, f, protocol=proto)
with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
