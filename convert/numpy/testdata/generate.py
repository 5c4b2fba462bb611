#!/usr/bin/python3
"""Writes the NumPy test fixtures with numpy itself, and expected.json with
numpy's own reading of every array: name, dtype, shape and the sha256 of its
values (C order, little-endian, every NaN as the canonical quiet NaN).

Run with Debian's python3-numpy: /usr/bin/python3 generate.py (from this folder).
Deterministic: fixed seeds, no timestamps in the expected values.
"""
import hashlib
import io
import json
import os
import zipfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
NPY = os.path.join(HERE, "npy")
NPZ = os.path.join(HERE, "npz")
rng = np.random.default_rng(20240601)

DTYPE_NAMES = {
    "f2": "float16", "f4": "float32", "f8": "float64",
    "i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
    "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
    "b1": "bool",
}


def values(n, dt):
    """n values of dtype dt, with the edge cases of its kind first."""
    want = np.dtype(dt)
    return _values(n, want.newbyteorder("=")).astype(want)


def _values(n, dt):
    if dt.kind == "f":
        info = np.finfo(dt)
        special = [np.nan, np.inf, -np.inf, 0.0, -0.0, info.tiny, -info.tiny,
                   info.smallest_subnormal, -info.smallest_subnormal, info.max, info.min,
                   info.eps, 1.0, -1.0, 0.1, 1 / 3]
        a = np.array(special, dtype=dt)
        rest = rng.standard_normal(max(n - len(a), 0)).astype(dt)
        a = np.concatenate([a, rest])[:n]
        if dt.itemsize >= 4:
            # a NaN with a payload and a negative NaN: checksums canonicalise both
            u = a.view({4: np.uint32, 8: np.uint64}[dt.itemsize])
            u[-1] = {4: 0x7FC00001, 8: 0x7FF8000000000001}[dt.itemsize]
            u[-2] = {4: 0xFFC00000, 8: 0xFFF8000000000000}[dt.itemsize]
        return a
    if dt.kind in "iu":
        info = np.iinfo(dt)
        special = np.array([info.min, info.max, 0, 1, info.max - 1], dtype=dt)
        rest = rng.integers(info.min, info.max, size=max(n - len(special), 0), dtype=dt, endpoint=True)
        return np.concatenate([special, rest])[:n]
    if dt.kind == "b":
        return rng.integers(0, 2, size=n).astype(bool)
    raise ValueError(dt)


def canonical_sha(a):
    """sha256 of a's values as the reader must stream them."""
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=True)
    if a.dtype.kind == "f":
        a[np.isnan(a)] = np.nan
    return hashlib.sha256(a.tobytes()).hexdigest()


def describe(name, a):
    return {"name": name, "dtype": DTYPE_NAMES[a.dtype.str[1:]], "shape": list(a.shape),
            "sha256": canonical_sha(a)}


expected = {"npy": {}, "npz": {}}


def save_npy(fname, arr, version=None):
    path = os.path.join(NPY, fname)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=True)
    return path


def record_npy(fname, skipped_reason=None):
    """Read the file back with numpy and record what it holds."""
    path = os.path.join(NPY, fname)
    a = np.load(path, allow_pickle=False)
    stem = fname[:-4]
    if skipped_reason:
        expected["npy"][fname] = {"tensors": [], "skipped": [stem]}
    else:
        expected["npy"][fname] = {"tensors": [describe(stem, a)], "skipped": []}


def raw_npy(fname, header_text, data, version=(1, 0)):
    """Write an .npy with a hand-made header dict text (padded as numpy pads it)."""
    hdr = header_text.encode("latin1")
    pre = 10 if version == (1, 0) else 12
    pad = 64 - (pre + len(hdr) + 1) % 64
    hdr = hdr + b" " * pad + b"\n"
    with open(os.path.join(NPY, fname), "wb") as f:
        f.write(b"\x93NUMPY" + bytes(version))
        if version == (1, 0):
            f.write(len(hdr).to_bytes(2, "little"))
        else:
            f.write(len(hdr).to_bytes(4, "little"))
        f.write(hdr)
        f.write(data)


def main():
    os.makedirs(NPY, exist_ok=True)
    os.makedirs(NPZ, exist_ok=True)

    # Every numeric dtype, little- and big-endian, 2-D C order.
    for code in DTYPE_NAMES:
        a = values(24, "<" + code if code != "b1" else "|b1").reshape(4, 6)
        save_npy(f"{code}.npy", a)
        record_npy(f"{code}.npy")
        if code not in ("i1", "u1", "b1"):
            save_npy(f"be_{code}.npy", a.astype(">" + code))
            record_npy(f"be_{code}.npy")

    # Fortran order: 2-D, 3-D, 4-D, big-endian Fortran, and one big enough for tiles.
    save_npy("fortran_2d.npy", np.asfortranarray(values(35, "<f4").reshape(5, 7)))
    record_npy("fortran_2d.npy")
    save_npy("fortran_3d.npy", np.asfortranarray(values(60, "<f8").reshape(3, 4, 5)))
    record_npy("fortran_3d.npy")
    save_npy("fortran_4d_i2.npy", np.asfortranarray(values(120, "<i2").reshape(2, 3, 4, 5)))
    record_npy("fortran_4d_i2.npy")
    save_npy("fortran_be_3d.npy", np.asfortranarray(values(60, ">i4").reshape(5, 4, 3)))
    record_npy("fortran_be_3d.npy")
    save_npy("fortran_large.npy", np.asfortranarray(rng.standard_normal((300, 170)).astype("<f4")))
    record_npy("fortran_large.npy")
    # fortran_order True on a 1-D array: the same bytes either way.
    raw_npy("fortran_1d.npy", "{'descr': '<i4', 'fortran_order': True, 'shape': (5,), }",
            np.arange(5, dtype="<i4").tobytes())
    record_npy("fortran_1d.npy")

    # 0-d and empty arrays.
    save_npy("scalar_f8.npy", np.array(3.25, dtype="<f8"))
    record_npy("scalar_f8.npy")
    save_npy("scalar_be_i8.npy", np.array(-7, dtype=">i8"))
    record_npy("scalar_be_i8.npy")
    save_npy("empty_1d.npy", np.zeros((0,), dtype="<f4"))
    record_npy("empty_1d.npy")
    save_npy("empty_3d.npy", np.zeros((3, 0, 2), dtype="<i8"))
    record_npy("empty_3d.npy")

    # Header versions 2.0 and 3.0.
    save_npy("v2.npy", values(10, "<f4"), version=(2, 0))
    record_npy("v2.npy")
    save_npy("v3.npy", values(10, "<u2").reshape(2, 5), version=(3, 0))
    record_npy("v3.npy")
    # Version 2.0 chosen by numpy itself for a header over 65535 bytes
    # (a structured dtype with many fields: skipped, but it must parse).
    wide = np.zeros(2, dtype=[(f"field_{i:05d}", "<f4") for i in range(4000)])
    path = os.path.join(NPY, "v2_wide_structured.npy")
    np.save(path, wide)
    with open(path, "rb") as f:
        assert f.read(8)[6] == 2, "numpy did not choose version 2"
    expected["npy"]["v2_wide_structured.npy"] = {"tensors": [], "skipped": ["v2_wide_structured"]}

    # A Python 2 header: long integers with an L suffix.
    raw_npy("py2_long.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (2L, 3L), }",
            np.arange(6, dtype="<i4").tobytes())
    record_npy("py2_long.npy")

    # Dtypes that are not exported: skipped with a reason.
    save_npy("complex.npy", (values(6, "<f4") + 1j).astype("<c8"))
    record_npy("complex.npy", skipped_reason="complex")
    save_npy("unicode.npy", np.array(["a", "bc", "def"]))
    record_npy("unicode.npy", skipped_reason="unicode")
    save_npy("datetime.npy", np.array(["2024-01-01", "2024-06-01"], dtype="datetime64[D]"))
    record_npy("datetime.npy", skipped_reason="datetime")
    # An object array: a pickle inside, refused (not in expected: the test checks the error).
    np.save(os.path.join(NPY, "object.npy"), np.array([{"w": 1}, None], dtype=object), allow_pickle=True)

    # .npz: stored (np.savez) and deflated (np.savez_compressed), keys with odd characters.
    arrays = {
        "weights": values(12, "<f4").reshape(3, 4),
        "layer.0/bias": values(3, "<f8"),
        "with space": values(5, "<i8"),
        "ünïcode": values(4, "<u2"),
        "=formula": values(2, "<i4"),
        "be_f8": values(6, ">f8").reshape(2, 3),
        "fortran": np.asfortranarray(values(20, "<f4").reshape(4, 5)),
        "fortran_be_big": np.asfortranarray(rng.standard_normal((64, 48)).astype(">f8")),
        "half": values(8, "<f2"),
        "flags": values(7, "|b1"),
        "scalar": np.array(2.5, dtype="<f4"),
        "empty": np.zeros((2, 0), dtype="<f4"),
        "cplx": np.array([1 + 2j], dtype="<c16"),
    }
    # np.savez also names positional arrays arr_0, arr_1, ...
    positional = [values(3, "<i2")]
    for fname, save in (("stored.npz", np.savez), ("deflated.npz", np.savez_compressed)):
        path = os.path.join(NPZ, fname)
        save(path, *positional, **arrays)
        tensors, skipped = [], []
        with np.load(path) as z:
            for key in z.files:
                a = z[key]
                if a.dtype.kind == "c":
                    skipped.append(key)
                else:
                    tensors.append(describe(key, a))
            with zipfile.ZipFile(path) as zf:
                methods = sorted({i.compress_type for i in zf.infolist()})
        expected["npz"][fname] = {"tensors": tensors, "skipped": skipped, "zip_methods": methods}

    # An all-zero array compresses about 1030:1, deflate's limit: not a bomb.
    path = os.path.join(NPZ, "zeros.npz")
    np.savez_compressed(path, zeros=np.zeros(10_000_000, dtype="<f4"))
    with np.load(path) as z:
        expected["npz"]["zeros.npz"] = {"tensors": [describe("zeros", z["zeros"])], "skipped": [], "zip_methods": [8]}

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, ensure_ascii=False, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
