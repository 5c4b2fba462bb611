#!/usr/bin/python3
"""Writes the scikit-learn / joblib test fixtures for convert/sklearn.

Run with Debian's interpreter (it has sklearn, joblib, numpy, pandas):

    cd convert/sklearn/testdata && /usr/bin/python3 generate.py

Every model is fitted on a tiny deterministic dataset and saved with
pickle.dump (protocols 0, 2, 4, 5 as listed) and joblib.dump (compress 0 and 3,
and one file per compressor). expected.json records, per file, every tensor the
Go reader must export: its attribute-path name, dtype, shape and the sha256 of
its values (C order, little-endian, NaN canonicalised), plus the names that
must be skipped. The names follow the same walk the reader does (see
walk() below and convert/sklearn/walk.go). The hostile cases go to
../../../testdata/hostile/.
"""

import bz2
import collections
import hashlib
import io
import json
import lzma
import os
import pickle
import struct
import sys
import types
import warnings
import zlib

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.ensemble import (GradientBoostingClassifier, HistGradientBoostingClassifier,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import (Lasso, LinearRegression, LogisticRegression,
                                  Ridge, SGDClassifier, SGDRegressor)
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import VotingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import GridSearchCV
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import BallTree, KDTree, KNeighborsClassifier
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import FunctionTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

warnings.filterwarnings("ignore")

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.normpath(os.path.join(HERE, "..", "..", "..", "testdata", "hostile"))
# The hostile payloads would create this file if anything ever ran them.
MARKER = "/tmp/ckpt2csv-sklearn-payload-ran"

DTYPES = {
    "f8": "float64", "f4": "float32", "f2": "float16",
    "i8": "int64", "i4": "int32", "i2": "int16", "i1": "int8",
    "u8": "uint64", "u4": "uint32", "u2": "uint16", "u1": "uint8", "b1": "bool",
}
QNAN = {"float64": (np.uint64, 0x7FF8000000000000), "float32": (np.uint32, 0x7FC00000),
        "float16": (np.uint16, 0x7E00)}


def dtype_name(dt):
    return DTYPES.get(dt.kind + str(dt.itemsize))


def checksum(a, name):
    """SPEC §5 checksum: C order, little-endian, every NaN the canonical quiet NaN."""
    a = np.ascontiguousarray(a)
    a = a.astype(a.dtype.newbyteorder("<"), copy=True)
    if name in QNAN:
        ut, q = QNAN[name]
        bits = a.view(ut)
        bits[np.isnan(a)] = q
    return hashlib.sha256(a.tobytes()).hexdigest()


# The name of a top-level array (a pickle of one bare array).
ROOT = "array"


def join(path, key):
    return f"{path}.{key}" if path else str(key)


def is_estimatorish(v):
    """A class instance walked by its state: not a number, string, container or array."""
    return not isinstance(v, (np.ndarray, np.generic, np.dtype, dict, list, tuple,
                              str, bytes, bytearray, int, float, complex, bool, type(None), type,
                              types.FunctionType, types.BuiltinFunctionType, np.ufunc))


# BinaryTree.__getstate__'s tuple (sklearn/neighbors/_binary_tree.pxi).
BINARY_TREE_STATE = ["data", "idx_array", "node_data", "node_bounds", "leaf_size", "n_levels",
                     "n_nodes", "n_trims", "n_leaves", "n_splits", "n_calls", "dist_metric", "sample_weight"]


def holds_arrays(x):
    return isinstance(x, (np.ndarray, np.generic, dict, list, tuple)) or is_estimatorish(x)


class Walk:
    """Mirrors convert/sklearn/walk.go: the tensors a file exports, in pickle order."""

    def __init__(self):
        self.tensors = []
        self.skipped = []
        self.stack = []

    def array(self, a, path):
        dt = a.dtype
        if dt.fields is not None:
            for field in dt.names:
                self.array(a[field], join(path, field))
            return
        path = path or ROOT
        if dt.subdtype is not None:  # never held by an array itself; kept for symmetry
            raise ValueError("subarray dtype")
        name = dtype_name(dt)
        if name is None:
            self.skipped.append(path)
            return
        self.tensors.append({"name": path, "dtype": name, "shape": list(a.shape),
                             "sha256": checksum(a, name)})

    def walk(self, v, path):
        if isinstance(v, np.ma.MaskedArray):
            self.skipped.append(path or ROOT)
            return
        if isinstance(v, np.ndarray) and v.dtype.hasobject and v.dtype.fields is None and any(
                holds_arrays(x) for x in v.flat):
            # an object array of estimators (GradientBoosting's estimators_): by index
            if v.ndim == 0:
                self.walk(v[()], path)
                return
            for idx in np.ndindex(v.shape):
                self.walk(v[idx], join(path, ".".join(map(str, idx))))
            return
        if isinstance(v, np.ndarray):
            self.array(v, path)
            return
        if isinstance(v, np.generic):
            self.array(np.asarray(v), path)
            return
        if isinstance(v, (str, bytes, bytearray, int, float, complex, bool, type(None), type, np.dtype,
                          types.FunctionType, types.BuiltinFunctionType, np.ufunc)):
            return  # plain values, and functions and classes pickled by name
        if id(v) in self.stack:  # a container that contains itself is walked once
            return
        self.stack.append(id(v))
        try:
            if isinstance(v, dict):
                for k, x in v.items():
                    self.walk(x, join(path, k))
            elif isinstance(v, (list, tuple)):
                if isinstance(v, tuple) and len(v) >= 2 and isinstance(v[0], str) and is_estimatorish(v[1]):
                    # (name, estimator, ...): Pipeline steps, ColumnTransformer transformers.
                    self.walk(v[1], path)
                    for i, x in enumerate(v[2:], 2):
                        self.walk(x, join(path, i))
                else:
                    for i, x in enumerate(v):
                        self.walk(x, join(path, i))
            elif isinstance(v, (np.random.RandomState, np.random.Generator, np.random.BitGenerator,
                                pd.DataFrame, pd.Series, pd.Index)):
                self.skipped.append(path or ROOT)
            elif isinstance(v, (KDTree, BallTree)):
                state = v.__reduce__()[2]
                for name, x in zip(BINARY_TREE_STATE, state):
                    self.walk(x, join(path, name))
            elif isinstance(v, sklearn.tree._tree.Tree):
                _, args, state = v.__reduce__()
                self.walk(args[1], join(path, "n_classes"))
                self.walk(state, path)
            else:
                r = v.__reduce_ex__(4)
                state = r[2] if len(r) > 2 else None
                if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], dict):
                    # (dict, slots)
                    if state[0]:
                        self.walk(state[0], path)
                    self.walk(state[1], path)
                elif state is not None:
                    self.walk(state, path)
        finally:
            self.stack.pop()


def expected_for(obj):
    w = Walk()
    w.walk(obj, "")
    out = {"tensors": w.tensors, "skipped": w.skipped}
    ver = getattr(obj, "__getstate__", None) and isinstance(obj, sklearn.base.BaseEstimator) and obj.__getstate__().get("_sklearn_version")
    if ver:
        out["sklearn_version"] = ver
    return out


# ---------------------------------------------------------------- models

def data(n=24, d=4, seed=0):
    rs = np.random.RandomState(seed)
    X = rs.normal(size=(n, d))
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.int64)
    yr = X @ np.arange(1, d + 1) + 0.1 * rs.normal(size=n)
    return X, y, yr


def models():
    X, y, yr = data()
    y3 = (np.digitize(X[:, 0], [-0.5, 0.5])).astype(np.int64)
    X32 = X.astype(np.float32)
    m = collections.OrderedDict()
    m["logreg"] = LogisticRegression(max_iter=200).fit(X, y3)
    m["linreg"] = LinearRegression().fit(X, yr)
    m["ridge"] = Ridge(alpha=0.5).fit(X, yr)
    m["lasso"] = Lasso(alpha=0.05).fit(X, yr)
    m["sgdclf"] = SGDClassifier(random_state=0, max_iter=20).fit(X, y3)
    m["sgdreg"] = SGDRegressor(random_state=0, max_iter=20).fit(X, yr)
    m["svc"] = SVC(probability=True, random_state=0).fit(X, y)
    m["svr"] = SVR(kernel="linear").fit(X, yr)
    m["mlpclf"] = MLPClassifier(hidden_layer_sizes=(5, 3), max_iter=30, random_state=0).fit(X32, y3)
    m["mlpreg"] = MLPRegressor(hidden_layer_sizes=(4,), max_iter=30, random_state=0).fit(X, yr)
    m["stdscaler"] = StandardScaler().fit(X)
    m["minmax"] = MinMaxScaler().fit(X32)
    m["pca"] = PCA(n_components=2).fit(X)
    m["tree"] = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y3)
    m["treereg"] = DecisionTreeRegressor(max_depth=2, random_state=0).fit(X, yr)
    m["forest"] = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(X, y3)
    m["forestreg"] = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0).fit(X, yr)
    m["gboost"] = GradientBoostingClassifier(n_estimators=2, max_depth=2, random_state=0).fit(X, y3)
    m["histgb"] = HistGradientBoostingClassifier(max_iter=2, max_depth=2, min_samples_leaf=3, random_state=0).fit(X, y)

    # A Pipeline with a ColumnTransformer fitted on a DataFrame with string labels.
    rs = np.random.RandomState(1)
    df = pd.DataFrame({
        "height": rs.normal(170, 10, 30),
        "weight": rs.normal(70, 8, 30),
        "colour": rs.choice(["red", "green", "blue"], 30),
    })
    labels = np.where(df["height"] > 170, "tall", "short")
    ct = ColumnTransformer([
        ("num", StandardScaler(), ["height", "weight"]),
        ("cat", OneHotEncoder(), ["colour"]),
    ])
    m["pipeline"] = Pipeline([("prep", ct), ("clf", LogisticRegression())]).fit(df, labels)
    gs = GridSearchCV(LogisticRegression(max_iter=200), {"C": [0.1, 1.0]}, cv=2).fit(X, y)
    for k in gs.cv_results_:
        if k.endswith("_time"):  # wall-clock timings: fixed, so the files are reproducible
            gs.cv_results_[k] = np.full_like(gs.cv_results_[k], 0.25)
    gs.refit_time_ = 0.5
    m["gridsearch"] = gs
    m["knn"] = KNeighborsClassifier(n_neighbors=3, algorithm="kd_tree", leaf_size=4).fit(X, y)
    m["balltree"] = BallTree(X, leaf_size=4, metric="minkowski", p=3)
    m["voting"] = VotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())]).fit(X, y)
    m["logtarget"] = Pipeline([("log", FunctionTransformer(np.log1p)), ("ridge", TransformedTargetRegressor(
        Ridge(), func=np.log1p, inverse_func=np.expm1))]).fit(np.abs(X), np.abs(yr))
    sparse = LogisticRegression().fit(X, y)
    sparse.coef_[0, 1] = 0.0
    m["sparse_coef"] = sparse.sparsify()
    m["tfidf"] = TfidfVectorizer().fit(["the cat sat", "the dog sat on the mat", "a cat and a dog"])
    m["coltrans"] = ColumnTransformer([
        ("a", MinMaxScaler(), [0, 1]),
        ("b", PCA(n_components=1), np.array([2, 3])),
    ]).fit(X)
    return m


def arrays():
    """Plain containers of arrays: dtypes, byte orders, Fortran order, scalars, structured."""
    rs = np.random.RandomState(2)
    rec = np.zeros(3, dtype=[("a", "<f8"), ("b", ">i4", (2,)), ("c", "u1")])
    rec["a"] = [1.5, -2.0, np.nan]
    rec["b"] = [[1, 2], [3, 4], [5, -6]]
    rec["c"] = [7, 8, 9]
    return collections.OrderedDict([
        ("f64", rs.normal(size=(2, 3))),
        ("f32_fortran", np.asfortranarray(rs.normal(size=(3, 4)).astype(np.float32))),
        ("f16", np.array([0.1, -2.5, 65504, np.inf], dtype=np.float16)),
        ("be_f64", np.array([[1.0, -0.5], [np.nan, 3.25]], dtype=">f8")),
        ("be_i32_fortran", np.asfortranarray(np.arange(12, dtype=">i4").reshape(3, 4))),
        ("i8", np.array([-128, 0, 127], dtype=np.int8)),
        ("u64", np.array([0, 2**64 - 1], dtype=np.uint64)),
        ("bool", np.array([True, False, True])),
        ("i16_3d", np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
        ("empty", np.zeros((0, 3))),
        ("zero_d", np.array(4.5)),
        ("scalar_f64", np.float64(-1.25)),
        ("scalar_i64", np.int64(-7)),
        ("scalar_f32", np.float32(3.5)),
        ("scalar_bool", np.bool_(True)),
        ("structured", rec),
        ("nested", {"list": [np.arange(3.0), (np.arange(2, dtype=np.int32), 5)], 7: np.ones(2)}),
        ("strings", np.array(["a", "bc"])),
        ("objects", np.array(["x", 1], dtype=object)),
        ("object_of_arrays", np.array([np.arange(2.0), None, {"k": np.int32(3)}], dtype=object)),
        ("complex", np.array([1 + 2j])),
        ("plain_float", 2.5),
    ])


# ---------------------------------------------------------------- writers

expected = collections.OrderedDict()


def record(fname, obj, exp=None):
    expected[fname] = exp if exp is not None else expected_for(obj)


def dump_pickle(fname, obj, protocol):
    with open(os.path.join(HERE, fname), "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    record(fname, obj)


def dump_joblib(fname, obj, **kw):
    joblib.dump(obj, os.path.join(HERE, fname), **kw)
    record(fname, obj)


def numpy2_paths(fname, src):
    """A protocol-2 pickle as numpy 2 writes it: numpy._core.* module paths."""
    with open(os.path.join(HERE, src), "rb") as f:
        b = f.read()
    b2 = b.replace(b"cnumpy.core.multiarray\n", b"cnumpy._core.multiarray\n")
    assert b2 != b
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(b2)
    expected[fname] = expected[src]


def old_style(fname, obj, renames):
    """A joblib file as joblib < 1.2 inside scikit-learn 0.20-0.22 wrote it:
    protocol 2, no alignment padding before the arrays, the vendored
    sklearn.externals.joblib module and the old public module paths."""
    from joblib.numpy_pickle import NumpyArrayWrapper
    orig = NumpyArrayWrapper.__init__

    def init(self, *a, **k):
        orig(self, *a, **k)
        del self.numpy_array_alignment_bytes

    NumpyArrayWrapper.__init__ = init
    try:
        buf = io.BytesIO()
        joblib.dump(obj, buf, protocol=2)
    finally:
        NumpyArrayWrapper.__init__ = orig
    b = buf.getvalue()
    assert b"numpy_array_alignment_bytes" not in b
    joblib.load(io.BytesIO(b))  # joblib still reads it
    for old, new in renames:
        assert old in b, old
        b = b.replace(old, new)
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(b)
    record(fname, obj)


def joblib09(fname, obj, compress):
    """joblib < 0.10 (scikit-learn <= 0.17): every array in a file of its own
    beside the pickle, written as joblib 0.9's NumpyPickler did: np.save and
    an NDArrayWrapper, or (compress) a zlib "ZF" file of the raw bytes and a
    ZNDArrayWrapper; the main pickle itself a ZF file when compressed."""
    from joblib.numpy_pickle_compat import NDArrayWrapper, ZNDArrayWrapper, write_zfile
    base = os.path.join(HERE, fname)
    counter = [0]

    class OldPickler(pickle._Pickler):
        def save(self, o, save_persistent_id=True):
            if type(o) is np.ndarray and not o.dtype.hasobject:
                counter[0] += 1
                fn = "%s_%02i.npy" % (base, counter[0])
                if not compress:
                    np.save(fn, o)
                    o = NDArrayWrapper(os.path.basename(fn), type(o), allow_mmap=not o.dtype.hasobject)
                else:
                    fn += ".z"
                    _, init_args, state = o.__reduce__()
                    with open(fn, "wb") as f:
                        write_zfile(f, state[-1], compress=compress)
                    o = ZNDArrayWrapper(os.path.basename(fn), init_args, state[:-1])
            pickle._Pickler.save(self, o, save_persistent_id)

    buf = io.BytesIO()
    OldPickler(buf, protocol=2).dump(obj)
    with open(base, "wb") as f:
        if compress:
            write_zfile(f, buf.getvalue(), compress=compress)
        else:
            f.write(buf.getvalue())
    joblib.load(base)  # joblib still reads it
    record(fname, obj)


class Py2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: bytes as raw (SHORT_)BINSTRING, not
    _codecs.encode(str, 'latin1')."""
    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes_py2(self, obj):
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes_py2


def dump_py2(fname, obj):
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    assert b"_codecs" not in buf.getvalue()
    pickle.loads(buf.getvalue(), encoding="latin1")  # Python 3 reads it
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(buf.getvalue())
    record(fname, obj)


def dump_many(fname, objs, protocol):
    """Several pickle.dump calls on one file: each object named by its position."""
    with open(os.path.join(HERE, fname), "wb") as f:
        for o in objs:
            pickle.dump(o, f, protocol=protocol)
    w = Walk()
    for i, o in enumerate(objs):
        w.walk(o, str(i))
    expected[fname] = {"tensors": w.tensors, "skipped": w.skipped,
                       "sklearn_version": objs[0].__getstate__()["_sklearn_version"]}


def zfile(fname, obj):
    """joblib < 0.10's compressed container: "ZF", the length in hex, zlib."""
    data = pickle.dumps(obj, protocol=2)
    with open(os.path.join(HERE, fname), "wb") as f:
        f.write(b"ZF" + ("0x%x" % len(data)).ljust(19).encode() + zlib.compress(data, 3))
    record(fname, obj)


def hostile():
    os.makedirs(HOSTILE, exist_ok=True)

    def put(name, data, err):
        with open(os.path.join(HOSTILE, name), "wb") as f:
            f.write(data)
        with open(os.path.join(HOSTILE, name + ".err"), "w") as f:
            f.write(err + "\n")

    class System:
        def __reduce__(self):
            return (os.system, ("touch " + MARKER,))

    class Eval:
        def __reduce__(self):
            return (eval, ("open(%r, 'w')" % MARKER,))

    # os.system inside an estimator's attributes (protocol 4).
    lr = LinearRegression().fit(*data()[::2])
    state = lr.__getstate__()
    state["coef_"] = System()
    lr2 = LinearRegression()
    lr2.__dict__.update(state)
    put("sklearn-os-system.pkl", pickle.dumps(lr2, protocol=4), "posix.system")

    # builtins.eval in a joblib stream with an array after it.
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(4.0), "x": Eval()}, buf)
    put("sklearn-eval.joblib", buf.getvalue(), "builtins.eval")

    # A joblib array declaring far more bytes than the file holds.
    buf = io.BytesIO()
    joblib.dump({"w": np.arange(512.0)}, buf)
    b = buf.getvalue()
    cut = b[: len(b) - 2048]
    put("sklearn-joblib-short.joblib", cut, "past the end")

    # Only an object array: nothing numeric to export.
    put("sklearn-object-array.pkl", pickle.dumps(np.array(["x", None, 3], dtype=object), protocol=2),
        "no numeric arrays")

    # A joblib < 0.10 array file name that climbs out of the folder.
    from joblib.numpy_pickle_compat import NDArrayWrapper
    put("sklearn-joblib-traversal.pkl", pickle.dumps({"w": NDArrayWrapper("../../../etc/passwd", np.ndarray)}, protocol=2),
        "bad file name")

    # A bz2 decompression bomb: a valid pickle start, then 64 MiB of zeros.
    head = pickle.dumps({"w": np.zeros(8 << 20)}, protocol=4)
    put("sklearn-bomb.joblib", bz2.compress(head, 9), "decompress")


def main():
    os.chdir(HERE)
    for f in os.listdir(HERE):
        if f.endswith((".pkl", ".joblib", ".sav", ".ckpt", ".gz", ".z", ".npy", ".bz2", ".xz", ".lzma", ".lz4")):
            os.remove(f)

    for name, obj in models().items():
        for proto in (2, 4, 5):
            dump_pickle(f"{name}_p{proto}.pkl", obj, proto)
        dump_joblib(f"{name}_j0.joblib", obj, compress=0)
        dump_joblib(f"{name}_j3.joblib", obj, compress=3)

    m = models()
    dump_pickle("linreg_p0.pkl", m["linreg"], 0)
    dump_pickle("linreg_p1.sav", m["linreg"], 1)
    dump_pickle("svc_p3.ckpt", m["svc"], 3)
    dump_joblib("logreg_jp2.joblib", m["logreg"], protocol=2)
    numpy2_paths("logreg_np2paths_p2.pkl", "logreg_p2.pkl")

    compressors = [("zlib", "zlib"), ("gzip", "gzip"), ("bz2", "bz2"), ("xz", "xz"), ("lzma", "lzma")]
    try:
        import lz4  # noqa: F401
        compressors.append(("lz4", "lz4"))
    except ImportError:
        print("python3-lz4 not installed: no lz4 fixture", file=sys.stderr)
    for method, ext in compressors:
        dump_joblib(f"forest_{ext}.joblib", m["forest"], compress=(method, 3))
    dump_joblib("pipeline.joblib.gz", m["pipeline"])  # compression chosen by the extension

    old_style("logreg_old.joblib", m["logreg"], [
        (b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n", b"csklearn.externals.joblib.numpy_pickle\nNumpyArrayWrapper\n"),
        (b"csklearn.linear_model._logistic\n", b"csklearn.linear_model.logistic\n")])
    old_style("forest_old.joblib", m["forest"], [
        (b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n", b"csklearn.externals.joblib.numpy_pickle\nNumpyArrayWrapper\n"),
        (b"csklearn.ensemble._forest\n", b"csklearn.ensemble.forest\n"),
        (b"csklearn.tree._classes\n", b"csklearn.tree.tree\n")])
    zfile("svr_zfile.pkl", m["svr"])
    dump_py2("mlpreg_py2.pkl", m["mlpreg"])
    dump_many("two_pickles.pkl", [m["stdscaler"], m["ridge"]], 4)
    joblib09("logreg09.pkl", m["logreg"], 0)
    joblib09("pipeline09z.pkl", m["pipeline"], 3)

    arr = arrays()
    for proto in (2, 4, 5):
        dump_pickle(f"arrays_p{proto}.pkl", arr, proto)
    dump_joblib("arrays_j0.joblib", arr, compress=0)
    dump_py2("arrays_py2.pkl", arr)
    dump_joblib("arrays_j3.joblib", arr, compress=3)

    hostile()

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"generator": {"sklearn": sklearn.__version__, "joblib": joblib.__version__,
                                 "numpy": np.__version__, "python": sys.version.split()[0]},
                   "files": expected}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
