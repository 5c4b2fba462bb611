#!/usr/bin/python3
"""Writes the Keras test fixtures with h5py, mirroring Keras's own saving code
(Keras itself is not installed here), and expected.json with numpy's sha256 of
every tensor's values (C order, little-endian).

Run with Debian's /usr/bin/python3 (h5py 3.7, numpy 1.24) from this folder:

    /usr/bin/python3 generate.py

Legacy HDF5 files follow keras/saving/hdf5_format.py (Keras 2.2-2.15, tf.keras)
and keras/src/legacy/saving/legacy_h5_format.py (Keras 3):
save_attributes_to_hdf5_group (lists over HDF5_OBJECT_HEADER_LIMIT split into
NAME0, NAME1, ...), save_weights_to_hdf5_group (layer_names, then one group per
layer, sorted by name, with weight_names and a dataset per weight at
<layer>/<weight name>), save_model_to_hdf5 (model_weights, optimizer_weights,
model_config and training_config). Keras 2 encodes names to bytes, so h5py
stores them as fixed-length |S arrays (h5py 2 and 3 alike); Keras 3 and
tf.keras's root attributes pass str, which h5py 3 stores as variable-length.

Keras 3 files follow keras/src/saving/saving_lib.py: _save_state walks a
model's layers first, then its attributes sorted by name (private last);
_save_container_state names list members by to_snake_case(class name) with
_1, _2 ... counters; H5IOStore/H5Entry put each saveable's variables in
<path>/vars/<i> (newer releases add a "name" attribute on the vars group).
Keras 2.13-2.15 .keras files keep the model's layers under
_layer_checkpoint_dependencies instead (keras213.keras).

Also written: ../internal/hdf5/testdata (every HDF5 storage layout h5py
makes, for the reader's own tests, and small seeds for its fuzz target) and
../../../testdata/hostile/keras-* (bad inputs with the message each must give).
Objects are written without timestamps, so every run gives identical bytes.
"""

import hashlib
import io
import json
import os
import re
import shutil
import zipfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))

# Objects are created without timestamps (HDF5 records creation and
# modification times in libver="latest" object headers) so that the files
# come out byte-identical on every run. Keras's layout is otherwise untouched.
_create_dataset = h5py.Group.create_dataset


def _create_dataset_untimed(self, name, *args, **kw):
    kw.setdefault("track_times", False)
    if name is not None and "/" in name.strip("/"):
        self.create_group(name.rsplit("/", 1)[0])
    return _create_dataset(self, name, *args, **kw)


def _create_group_untimed(self, name, track_order=None):
    g = self
    for part in name.strip("/").split("/"):
        if part not in g:
            gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
            gcpl.set_obj_track_times(False)
            h5py.h5g.create(g.id, part.encode(), gcpl=gcpl)
        g = g[part]
    return g


h5py.Group.create_dataset = _create_dataset_untimed
h5py.Group.create_group = _create_group_untimed


def h5file(path, libver="earliest", userblock_size=0):
    """h5py.File(path, "w", libver=...) whose root group has no timestamps."""
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    fcpl.set_obj_track_times(False)
    if userblock_size:
        fcpl.set_userblock(userblock_size)
    fapl = h5py.h5p.create(h5py.h5p.FILE_ACCESS)
    bounds = {"earliest": h5py.h5f.LIBVER_EARLIEST, "latest": h5py.h5f.LIBVER_LATEST}
    fapl.set_libver_bounds(bounds[libver], h5py.h5f.LIBVER_LATEST)
    if isinstance(path, str):
        fid = h5py.h5f.create(path.encode(), h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    else:
        fapl.set_fileobj_driver(h5py.h5fd.fileobj_driver, path)
        fid = h5py.h5f.create(b"in-memory", h5py.h5f.ACC_TRUNC, fcpl=fcpl, fapl=fapl)
    return h5py.File(fid)


def untimed_dcpl():
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(False)
    return dcpl


def zwrite(z, name, data, method=zipfile.ZIP_STORED):
    """ZipFile.writestr with a fixed timestamp, for byte-identical archives."""
    z.writestr(zipfile.ZipInfo(name, date_time=(2025, 5, 19, 18, 57, 43)), data, compress_type=method)
RS = np.random.RandomState(20241125)
EXPECTED = {}


def arr(shape, dtype="float32", scale=1.0):
    a = RS.standard_normal(shape) * scale
    return a.astype(dtype)


def sha(a):
    a = np.ascontiguousarray(a)
    if a.dtype.kind in "fiu" and a.dtype.itemsize > 1:
        a = a.astype(a.dtype.newbyteorder("<"))
    if a.dtype.kind == "f":
        # SPEC: every NaN hashes as its dtype's canonical quiet NaN
        a = a.copy()
        a[np.isnan(a)] = np.nan
    return hashlib.sha256(a.tobytes()).hexdigest()


def dtname(a):
    return "bool" if a.dtype.kind == "b" else a.dtype.newbyteorder("=").name


def expect(fname, name, a, layer_type="", path=""):
    EXPECTED.setdefault(fname, {"tensors": [], "skipped": []})["tensors"].append(
        {"name": name, "dtype": dtname(a), "shape": list(a.shape), "sha256": sha(a),
         "layer_type": layer_type, "path": path})


# ---------------------------------------------------------------- legacy HDF5

HDF5_OBJECT_HEADER_LIMIT = 64512


def save_attributes_to_hdf5_group(group, name, data):
    """hdf5_format.save_attributes_to_hdf5_group."""
    bad = [x for x in data if len(x) > HDF5_OBJECT_HEADER_LIMIT]
    if bad:
        raise RuntimeError("attribute too large")
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked_data = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > HDF5_OBJECT_HEADER_LIMIT for x in chunked_data):
        num_chunks += 1
        chunked_data = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for chunk_id, chunk_data in enumerate(chunked_data):
            group.attrs["%s%d" % (name, chunk_id)] = chunk_data
    else:
        group.attrs[name] = data


class L:
    """A layer as the legacy saver sees it: name, class, weights [(name, array, dataset kwargs)]."""

    def __init__(self, name, cls, weights=(), config=None):
        self.name, self.cls, self.weights = name, cls, list(weights)
        self.config = dict(config or {})


def save_weights_to_hdf5_group(f, layers, keras_version, str_names=False, top_level=None):
    enc = (lambda s: s) if str_names else (lambda s: s.encode("utf8"))
    save_attributes_to_hdf5_group(f, "layer_names", [enc(l.name) for l in layers])
    f.attrs["backend"] = enc("tensorflow")
    f.attrs["keras_version"] = enc(keras_version)
    for layer in sorted(layers, key=lambda x: x.name):
        g = f.create_group(layer.name)
        save_subset(g, layer.weights, enc)
    if top_level is not None:
        save_subset(f.create_group("top_level_model_weights"), top_level, enc)


def save_subset(g, weights, enc):
    save_attributes_to_hdf5_group(g, "weight_names", [enc(w[0]) for w in weights])
    for w in weights:
        name, val = w[0], w[1]
        kw = w[2] if len(w) > 2 else {}
        ds = g.create_dataset(name, val.shape, dtype=val.dtype, **kw)
        if not val.shape:
            ds[()] = val
        else:
            ds[:] = val


def model_config(cls, name, layers):
    return {"class_name": cls, "config": {"name": name, "layers": [
        {"class_name": l.cls, "config": dict({"name": l.name}, **l.config)} for l in layers]}}


def save_model_to_hdf5(path, layers, cfg, opt_weights, keras_version, *, str_names=False,
                       root_str=False, top_level=None, opt_class="Adam", libver="earliest", extra_attrs=0):
    with h5file(path, libver) as f:
        enc = (lambda s: s) if root_str else (lambda s: s.encode("utf8"))
        f.attrs["keras_version"] = enc(keras_version)
        f.attrs["backend"] = enc("tensorflow")
        f.attrs["model_config"] = enc(json.dumps(cfg))
        f.attrs["training_config"] = enc(json.dumps(
            {"optimizer_config": {"class_name": opt_class, "config": {"learning_rate": 0.001}}, "loss": "mse"}))
        mw = f.create_group("model_weights")
        save_weights_to_hdf5_group(mw, layers, keras_version, str_names=str_names, top_level=top_level)
        for i in range(extra_attrs):  # enough attributes to force dense attribute storage
            mw.attrs["note%02d" % i] = np.int64(i)
        if opt_weights:
            og = f.create_group("optimizer_weights")
            names = [w[0] if str_names else w[0].encode("utf8") for w in opt_weights]
            save_attributes_to_hdf5_group(og, "weight_names", names)
            for w in opt_weights:
                ds = og.create_dataset(w[0], w[1].shape, dtype=w[1].dtype)
                if not w[1].shape:
                    ds[()] = w[1]
                else:
                    ds[:] = w[1]


def expect_legacy(fname, layers, cfg_classes=True, opt=(), opt_class="", prefix="model_weights/", top=()):
    for l in layers:
        for w in l.weights:
            expect(fname, w[0], w[1], l.cls if cfg_classes else "", prefix + l.name + "/" + w[0])
    for w in top:
        expect(fname, w[0], w[1], "", prefix + "top_level_model_weights/" + w[0])
    for w in opt:
        expect(fname, w[0], w[1], opt_class, "optimizer_weights/" + w[0])


def legacy_files():
    # Keras 2.2 functional model, h5py-2-style attributes (every string fixed-length).
    fn = "legacy_keras22.h5"
    inner = [("dense_3/kernel:0", arr((6, 4))), ("dense_3/bias:0", arr((4,))),
             ("dense_4/kernel:0", arr((4, 2)))]
    layers = [
        L("input_1", "InputLayer"),
        L("embedding_1", "Embedding", [("embedding_1/embeddings:0", arr((10, 3)))]),
        L("lstm_1", "LSTM", [("lstm_1/kernel:0", arr((3, 16))), ("lstm_1/recurrent_kernel:0", arr((4, 16))),
                             ("lstm_1/bias:0", arr((16,)))]),
        L("dropout_1", "Dropout"),
        L("batch_normalization_1", "BatchNormalization",
          [("batch_normalization_1/gamma:0", arr((4,))), ("batch_normalization_1/beta:0", arr((4,))),
           ("batch_normalization_1/moving_mean:0", arr((4,))), ("batch_normalization_1/moving_variance:0", np.abs(arr((4,))))]),
        L("dense_1", "Dense", [("dense_1/kernel:0", arr((4, 6)))], {"use_bias": False}),  # 1-element weight_names
        L("model_1", "Model", inner),  # nested model: weights point into model_1/dense_3/...
        L("flatten_1", "Flatten"),
    ]
    cfg = model_config("Model", "model_2", layers)
    cfg["config"]["layers"][6]["config"]["layers"] = [
        {"class_name": "Dense", "config": {"name": "dense_3"}}, {"class_name": "Dense", "config": {"name": "dense_4"}}]
    opt = [("training/Adam/Variable:0", arr((10, 3))), ("training/Adam/Variable_1:0", arr((3, 16))),
           ("training/Adam/iterations:0", np.array(1234, dtype="int64"))]
    save_model_to_hdf5(os.path.join(HERE, fn), layers, cfg, opt, "2.2.0")
    classes = {"dense_3": "Dense", "dense_4": "Dense"}
    for l in layers:
        for w in l.weights:
            expect(fn, w[0], w[1], classes.get(w[0].split("/")[0], l.cls), "model_weights/" + l.name + "/" + w[0])
    for w in opt:
        expect(fn, w[0], w[1], "Adam", "optimizer_weights/" + w[0])

    # tf.keras 2.x with h5py 3: root attributes are str (variable-length),
    # names bytes (fixed-length); LSTM cell names; top_level_model_weights.
    fn = "legacy_tfkeras.h5"
    layers = [
        L("conv2d", "Conv2D", [("conv2d/kernel:0", arr((3, 3, 1, 4))), ("conv2d/bias:0", arr((4,)))]),
        L("lstm", "LSTM", [("lstm/lstm_cell/kernel:0", arr((4, 8))), ("lstm/lstm_cell/recurrent_kernel:0", arr((2, 8))),
                           ("lstm/lstm_cell/bias:0", arr((8,)))]),
        L("layer_normalization", "LayerNormalization",
          [("layer_normalization/gamma:0", arr((2,))), ("layer_normalization/beta:0", arr((2,)))]),
        L("dense", "Dense", [("dense/kernel:0", arr((2, 3))), ("dense/bias:0", arr((3,)))]),
    ]
    cfg = model_config("Sequential", "sequential", layers)
    opt = [("Adam/iter:0", np.array(7, dtype="int64"))] + [
        ("Adam/%s/%s:0" % (w[0][:-2], m), arr(w[1].shape)) for l in layers for w in l.weights for m in ("m",)]
    save_model_to_hdf5(os.path.join(HERE, fn), layers, cfg, opt, "2.15.0", root_str=True, top_level=[])
    expect_legacy(fn, layers, opt=opt, opt_class="Adam")

    # Keras 3 legacy .h5: names are str (variable-length), no ':0'.
    fn = "legacy_keras3.h5"
    layers = [
        L("dense_6", "Dense", [("sequential_2/dense_6/kernel", arr((5, 4))), ("sequential_2/dense_6/bias", arr((4,)))]),
        L("dropout", "Dropout"),
        L("dense_7", "Dense", [("sequential_2/dense_7/kernel", arr((4, 1))), ("sequential_2/dense_7/bias", arr((1,)))]),
    ]
    cfg = model_config("Sequential", "sequential_2", layers)
    opt = [("adam/iteration", np.array(3, dtype="int64")), ("adam/learning_rate", np.array(0.001, dtype="float32"))] + [
        ("adam/%s_momentum" % w[0].replace("/", "_"), arr(w[1].shape)) for l in layers for w in l.weights]
    save_model_to_hdf5(os.path.join(HERE, fn), layers, cfg, opt, "3.8.0", str_names=True, root_str=True, top_level=[])
    expect_legacy(fn, layers, opt=opt, opt_class="Adam")

    # Weights only (save_weights), with every dtype and storage Keras files
    # can hold: float16 (contiguous and chunked gzip+shuffle), float64,
    # integers, bool, a big-endian float, chunked with fletcher32.
    fn = "legacy_weights_dtypes.h5"
    g = {"compression": "gzip", "shuffle": True}
    layers = [
        L("dense_f16", "Dense", [("dense_f16/kernel:0", arr((40, 30), "float16")),
                                 ("dense_f16/bias:0", arr((30,), "float16"), dict(chunks=(7,), **g))]),
        L("dense_chunked", "Dense", [("dense_chunked/kernel:0", arr((50, 33), "float16"), dict(chunks=(16, 8), **g)),
                                     ("dense_chunked/bias:0", arr((33,)), dict(chunks=(10,), compression="gzip"))]),
        L("dense_f64", "Dense", [("dense_f64/kernel:0", arr((3, 2), "float64")),
                                 ("dense_f64/bias:0", arr((2,), ">f4"))]),
        L("counters", "Custom", [("counters/steps:0", np.array([1, -2, 3 << 40], dtype="int64")),
                                 ("counters/seen:0", np.array([[1, 2], [3, 4]], dtype="int32")),
                                 ("counters/bytes:0", np.arange(6, dtype="uint8").reshape(2, 3)),
                                 ("counters/mask:0", np.array([True, False, True])),
                                 ("counters/big:0", np.array([2 ** 63 - 1, 2 ** 53 + 1], dtype="int64")),
                                 ("counters/checked:0", arr((20, 5)), dict(chunks=(6, 5), fletcher32=True))]),
        L("activation", "Activation"),
    ]
    with h5file(os.path.join(HERE, fn)) as f:
        save_weights_to_hdf5_group(f, layers, "2.4.0")
    for l in layers:
        for w in l.weights:
            expect(fn, w[0], w[1], "", l.name + "/" + w[0])

    # layer_names and weight_names over 64 KB: split into NAME0, NAME1, ...
    fn = "legacy_split_names.h5"
    layers = [L("layer_%03d_" % i + "x" * 480, "Activation") for i in range(140)]
    big = L("big_" + "y" * 20, "Dense", [("big/w%03d_" % i + "z" * 470 + ":0", np.array([i], dtype="float32")) for i in range(140)])
    layers.insert(70, big)
    with h5file(os.path.join(HERE, fn)) as f:
        save_weights_to_hdf5_group(f, layers, "2.3.1")
        assert "layer_names0" in f.attrs and "layer_names1" in f.attrs and "layer_names" not in f.attrs
        assert "weight_names0" in f[big.name].attrs
    for w in big.weights:
        expect(fn, w[0], w[1], "", big.name + "/" + w[0])

    # libver="latest" with more than 8 attributes on model_weights: they are
    # stored densely (fractal heap + B-tree v2), and groups use link messages.
    fn = "legacy_dense_attrs.h5"
    layers = [L("dense", "Dense", [("dense/kernel:0", arr((3, 2))), ("dense/bias:0", arr((2,)))])]
    cfg = model_config("Sequential", "sequential", layers)
    save_model_to_hdf5(os.path.join(HERE, fn), layers, cfg, [], "2.15.0", libver="latest", extra_attrs=12)
    expect_legacy(fn, layers)


# ------------------------------------------------------------------- Keras 3

def to_snake_case(name):
    """keras.src.utils.naming.to_snake_case."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


class S:
    """A saveable: class, name, own variables [(var name, array)], attributes, config."""

    def __init__(self, cls, name, variables=(), attrs=None, config=None, layers=None):
        self.cls, self.name = cls, name
        self.variables = list(variables)
        self.attrs = dict(attrs or {})
        self.config = dict(config or {})
        self.layers = layers  # Sequential/Functional: model.layers (Sequential without its InputLayer)


def name_key(name):
    return "~" + name if name.startswith("_") else name


def save_state(s, store, path, visited, out, display, names):
    """saving_lib._save_state with H5IOStore: vars at <path>/vars/<i>."""
    if id(s) in visited:
        return
    grp = store.create_group(path + "/vars" if path else "vars")
    if names:
        grp.attrs["name"] = s.name
    for i, (vname, val) in enumerate(s.variables):
        grp[str(i)] = val
        out.append((s, path, i, vname, val, display))
    visited.add(id(s))
    children = []
    if getattr(s, "keras213", False):
        # Keras 2.13-2.15 walked sorted(dir(model)): the Keras 2 property
        # _layer_checkpoint_dependencies (an OrderedDict holding each layer
        # under "layer_with_weights-<i>" and "layer-<j>") came first, and the
        # container naming counted every entry, visited or not.
        deps = []
        for l in s.layers:
            if l.variables or any(getattr(c, "variables", None) for c in l.attrs.values()):
                deps.append(l)
            deps.append(l)
        children.append(("_layer_checkpoint_dependencies", deps))
    elif s.layers is not None:
        children.append(("layers", s.layers))
    for k in sorted(s.attrs, key=name_key):
        children.append((k, s.attrs[k]))
    for attr, child in children:
        cpath = path + "/" + attr if path else attr
        if isinstance(child, list):
            used = {}
            for c in child:
                n = to_snake_case(c.cls)
                if n in used:
                    used[n] += 1
                    n = "%s_%d" % (n, used[n])
                else:
                    used[n] = 0
                sub = display + "/" + c.name if display else c.name
                save_state(c, store, cpath + "/" + n, visited, out, sub, names)
        else:
            save_state(child, store, cpath, visited, out, display + "/" + attr if display else attr, names)


def layer_config(s):
    c = {"module": "keras.layers", "class_name": s.cls, "config": dict({"name": s.name}, **s.config), "registered_name": None}
    if s.layers is not None:
        c["config"]["layers"] = [layer_config(l) for l in s.config_layers]
    for k in ("layer", "backward_layer"):
        if k in s.attrs_config:
            c["config"][k] = layer_config(s.attrs_config[k])
    return c


def keras3_model():
    """A Sequential with the layers whose variable names the reader knows,
    a nested Functional, an LSTM, a Bidirectional GRU, a Lambda, a custom layer."""
    def layer(cls, name, variables=(), config=None, attrs=None, layers=None, config_layers=None, attrs_config=None):
        s = S(cls, name, variables, attrs, config, layers)
        s.config_layers = config_layers if config_layers is not None else (layers or [])
        s.attrs_config = attrs_config or {}
        return s

    inp = layer("InputLayer", "input_layer", config={"batch_shape": [None, 6]})
    emb = layer("Embedding", "embedding", [("embeddings", arr((10, 4)))])
    conv = layer("Conv1D", "conv1d", [("kernel", arr((3, 4, 5)))], {"use_bias": False})
    bn = layer("BatchNormalization", "batch_normalization",
               [("gamma", arr((5,))), ("beta", arr((5,))), ("moving_mean", arr((5,))), ("moving_variance", np.abs(arr((5,))))])
    lstm_cell = layer("LSTMCell", "lstm_cell", [("kernel", arr((5, 12))), ("recurrent_kernel", arr((3, 12))), ("bias", arr((12,)))])
    lstm = layer("LSTM", "lstm", config={"units": 3, "return_sequences": True}, attrs={"cell": lstm_cell})
    gru_f = layer("GRU", "forward_gru", config={"units": 2, "use_bias": False}, attrs={"cell": layer(
        "GRUCell", "gru_cell", [("kernel", arr((3, 6))), ("recurrent_kernel", arr((2, 6)))])})
    gru_b = layer("GRU", "backward_gru", config={"units": 2, "use_bias": False}, attrs={"cell": layer(
        "GRUCell", "gru_cell_1", [("kernel", arr((3, 6))), ("recurrent_kernel", arr((2, 6)))])})
    bidi = layer("Bidirectional", "bidirectional", attrs={"forward_layer": gru_f, "backward_layer": gru_b},
                 attrs_config={"layer": gru_f, "backward_layer": gru_b})
    lam = layer("Lambda", "lambda", config={"function": {"class_name": "__lambda__", "config": {
        "code": "4wEAAAAAAAAAAAAAAAEAAAADAAAAQwAAAHMMAAAAdABqAXwAgwFTACkBTikC2gJvc9oGc3lzdGVtKQHaAXipAHIEAAAA",
        "defaults": None, "closure": None}}})
    flat = layer("Flatten", "flatten")
    d_in = layer("InputLayer", "inner_input", config={"batch_shape": [None, 4]})
    d1 = layer("Dense", "inner_dense", [("kernel", arr((4, 4))), ("bias", arr((4,)))])
    ln = layer("LayerNormalization", "inner_norm", [("gamma", arr((4,)))], {"center": False})
    sub = layer("Functional", "encoder", layers=[d_in, d1, ln])
    custom = layer("MyScale", "my_scale", [("scale", arr((4,))), ("offset", arr((4,)))], {"units": 4})
    dense = [layer("Dense", "dense%s" % ("" if i == 0 else "_%d" % i), [("kernel", arr((4, 4))), ("bias", arr((4,)))])
             for i in range(11)]
    out = layer("Dense", "head", [("kernel", arr((4, 2))), ("bias", arr((2,)))])
    body = [emb, conv, bn, lstm, bidi, lam, flat, sub, custom] + dense + [out]
    model = layer("Sequential", "sequential", layers=body, config_layers=[inp] + body)
    nvars = sum(len(l.variables) for l in [emb, conv, bn, lstm_cell, d1, ln, custom, out] + dense) + 4
    opt = S("Adam", "adam", [("iteration", np.array(42, dtype="int64")), ("learning_rate", np.array(0.01, dtype="float32"))] +
            [("v%d" % i, arr((2,))) for i in range(nvars)])
    model.attrs["optimizer"] = opt
    return model, opt


# The variable names the reader derives from config.json (SPEC: LAYER/VAR).
KNOWN = {"Embedding", "Conv1D", "BatchNormalization", "LSTMCell", "GRUCell", "Dense", "LayerNormalization"}


def keras3_expect(fname, out, with_config, names_attr):
    for s, path, i, vname, val, display in out:
        h5path = (path + "/vars/%d" % i) if path else "vars/%d" % i
        if s.cls == "Adam":
            expect(fname, "optimizer/vars/%d" % i, val, "Adam" if with_config else "", h5path)
            continue
        if with_config:
            owner = s.owner_cls if hasattr(s, "owner_cls") else s.cls
            if s.cls in KNOWN:
                expect(fname, display + "/" + vname, val, owner, h5path)
            else:
                expect(fname, display + "/vars/%d" % i, val, owner, h5path)
            continue
        # no config: the path without "layers" elements, a layer's key
        # replaced by the vars group's name attribute when there is one
        parts = path.split("/")
        disp = []
        for j, p in enumerate(parts):
            if p == "layers" and j + 1 < len(parts):
                continue
            if names_attr and j > 0 and parts[j - 1] == "layers" and j == len(parts) - 1:
                p = s.name
            disp.append(p)
        expect(fname, "/".join(disp) + "/vars/%d" % i, val, "", h5path)


def keras3_files():
    model, opt = keras3_model()
    # the cells' tensors are named under the RNN layer's path: lstm/cell/kernel
    for l in model.layers:
        if l.cls == "LSTM":
            l.attrs["cell"].owner_cls = "LSTM"
        if l.cls == "Bidirectional":
            for k in ("forward_layer", "backward_layer"):
                l.attrs[k].attrs["cell"].owner_cls = "GRU"

    def write(path, names_attr):
        out = []
        with h5file(path) as f:
            save_state(model, f, "", set(), out, "", names_attr)
        return out

    # standalone .weights.h5 (save_weights), newer Keras: vars groups carry "name"
    fn = "keras3_named.weights.h5"
    out = write(os.path.join(HERE, fn), True)
    keras3_expect(fn, out, False, True)
    # older Keras 3 (no "name" attributes)
    fn = "keras3_plain.weights.h5"
    out = write(os.path.join(HERE, fn), False)
    keras3_expect(fn, out, False, False)

    # .keras archives: metadata.json, config.json, model.weights.h5
    cfg = layer_config(model)
    cfg["module"] = "keras"
    cfg["compile_config"] = {"optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {"name": "adam"}}, "loss": "mse"}
    cfg["config"]["layers"][9]["registered_name"] = "custom>MyScale"
    buf = io.BytesIO()
    out = []
    with h5file(buf) as f:
        save_state(model, f, "", set(), out, "", True)
    weights = buf.getvalue()
    meta = json.dumps({"keras_version": "3.9.2", "date_saved": "2025-05-19@18:57:43"})
    for fn, method in (("keras3_stored.keras", zipfile.ZIP_STORED), ("keras3_deflated.keras", zipfile.ZIP_DEFLATED)):
        with zipfile.ZipFile(os.path.join(HERE, fn), "w", compression=method) as z:
            zwrite(z, "metadata.json", meta, method)
            zwrite(z, "config.json", json.dumps(cfg), method)
            zwrite(z, "model.weights.h5", weights, method)
        keras3_expect(fn, out, True, True)


# --------------------------------------------- HDF5 layouts (internal/hdf5)

LAYOUTS = os.path.join(HERE, "..", "internal", "hdf5", "testdata")


def layouts_file(path, libver, userblock=0):
    """Every storage the reader supports, with small data: each dataset's
    sha256 is of its bytes as stored (file byte order), C order."""
    exp = {"datasets": {}, "attrs": {}}
    RS = np.random.RandomState(7)  # its own stream: fixtures elsewhere can change without moving these
    with h5file(path, libver, userblock) as f:
        def ds(name, data, **kw):
            d = f.create_dataset(name, data=data, **kw)
            exp["datasets"][name] = {"shape": list(data.shape), "sha256": hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()}
            return d

        for dt in ["<f2", "<f4", ">f8", "<i1", ">i2", "<u4", "<i8", "?"]:
            ds("types/" + dt.replace("<", "le").replace(">", "be").replace("?", "bool"), (RS.standard_normal((3, 4)) * 50).astype(dt))
        ds("types/scalar", np.float64(2.5))
        ds("types/empty", np.zeros((0, 3), "f4"))
        a = RS.standard_normal((37, 23)).astype("f4")
        ds("chunked/gzip_shuffle", a, chunks=(8, 5), compression="gzip", shuffle=True)
        ds("chunked/fletcher32", a, chunks=(8, 5), fletcher32=True)
        ds("chunked/plain", a, chunks=(8, 5))
        ds("chunked/single", a, chunks=(37, 23), compression="gzip")
        ds("chunked/rank3", RS.standard_normal((5, 6, 7)), chunks=(2, 3, 4), compression="gzip")
        ds("chunked/many", RS.standard_normal(1100).astype("f4"), chunks=(1,))
        ds("chunked/unlimited", a, chunks=(8, 5), maxshape=(None, None), compression="gzip")
        ds("chunked/maxshape", a, chunks=(8, 5), maxshape=(40, 30))
        # one unlimited dimension: an extensible array index under "latest",
        # past its index block's data blocks into super blocks
        ds("chunked/unlimited_rows", np.arange(600, dtype="<i2"), chunks=(1,), maxshape=(None,))
        ds("chunked/unlimited_cols", RS.standard_normal((5, 40)).astype("<f4"), chunks=(2, 3), maxshape=(5, None), compression="gzip")
        d = f.create_dataset("chunked/sparse", shape=(10, 10), dtype="f4", chunks=(4, 4), fillvalue=7.5)
        d[0:4, 0:4] = 1
        full = np.full((10, 10), 7.5, "f4")
        full[0:4, 0:4] = 1
        exp["datasets"]["chunked/sparse"] = {"shape": [10, 10], "sha256": hashlib.sha256(full.tobytes()).hexdigest()}
        f.create_dataset("contiguous/unwritten", shape=(2, 3), dtype="i4", fillvalue=-3)
        exp["datasets"]["contiguous/unwritten"] = {"shape": [2, 3], "sha256": hashlib.sha256(np.full((2, 3), -3, "<i4").tobytes()).hexdigest()}
        dcpl = untimed_dcpl()
        dcpl.set_layout(h5py.h5d.COMPACT)
        c = np.arange(12, dtype="<f4").reshape(4, 3)
        h5py.h5d.create(f.id, b"compact", h5py.h5t.NATIVE_FLOAT, h5py.h5s.create_simple((4, 3)), dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, c)
        exp["datasets"]["compact"] = {"shape": [4, 3], "sha256": hashlib.sha256(c.tobytes()).hexdigest()}
        dcpl = untimed_dcpl()
        dcpl.set_chunk((4, 4))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        c = np.arange(100, dtype="<f8").reshape(10, 10)
        h5py.h5d.create(f.id, b"implicit", h5py.h5t.NATIVE_DOUBLE, h5py.h5s.create_simple((10, 10)), dcpl=dcpl).write(h5py.h5s.ALL, h5py.h5s.ALL, c)
        exp["datasets"]["implicit"] = {"shape": [10, 10], "sha256": hashlib.sha256(c.tobytes()).hexdigest()}
        g = f.create_group("attrs")
        vals = {"fixed": [b"alpha", b"beta"], "vlen": ["gamma", "d\u00e9lta", ""], "one": [b"solo"],
                "scalar_bytes": b"bytes", "scalar_str": "str", "empty": np.asarray([]),
                "big": [("n%05d" % i).encode() for i in range(3000)]}
        for k, v in vals.items():
            g.attrs[k] = v
            if isinstance(v, (bytes, str)):
                v = [v]
            exp["attrs"]["attrs@" + k] = [x.decode() if isinstance(x, bytes) else x for x in v]
        for i in range(12):  # past 8 attributes: dense storage with libver latest
            g.attrs["n%02d" % i] = np.array([b"v%d" % i])
            exp["attrs"]["attrs@n%02d" % i] = ["v%d" % i]
        kids = f.create_group("kids")
        for i in range(120):  # multi-level B-tree (v0), dense links (latest)
            ds("kids/k%03d" % i, np.array([i], dtype="<i2"))
    return exp


def layouts_files():
    os.makedirs(LAYOUTS, exist_ok=True)
    exp = {}
    for name, libver, ub in (("layouts_earliest.h5", "earliest", 0), ("layouts_latest.h5", "latest", 0), ("layouts_userblock.h5", "latest", 1024)):
        exp[name] = layouts_file(os.path.join(LAYOUTS, name), libver, ub)
    # hard-link cycles: valid HDF5 that must not make a walk loop
    for name, libver in (("cycle_earliest.h5", "earliest"), ("cycle_latest.h5", "latest")):
        with h5file(os.path.join(LAYOUTS, name), libver) as f:
            g = f.create_group("layers/dense/vars")
            g["0"] = np.arange(4, dtype="<f4")
            f["layers/dense/loop"] = f["layers"]
            f["layers/dense/vars/back"] = f["/"]
        exp[name] = {"datasets": {"layers/dense/vars/0": {"shape": [4], "sha256": hashlib.sha256(np.arange(4, dtype="<f4").tobytes()).hexdigest()}}, "attrs": {}}
    # small seeds for the fuzz target: one of each structure, a few KB each
    for name, libver in (("seed_earliest.h5", "earliest"), ("seed_latest.h5", "latest")):
        with h5file(os.path.join(LAYOUTS, name), libver) as f:
            f.create_dataset("c", data=np.arange(16, dtype="<f4").reshape(4, 4), chunks=(2, 3), compression="gzip", shuffle=True)
            f.create_dataset("d", data=np.arange(6, dtype=">i2"))
            f.create_dataset("e", data=np.arange(12, dtype="<f2"), chunks=(5,), fletcher32=True)
            f.create_dataset("u", data=np.arange(40, dtype="<i2"), chunks=(2,), maxshape=(None,))
            g = f.create_group("g")
            g.attrs["layer_names"] = [b"a", b"bb"]
            g.attrs["v"] = ["x", "yz"]
            for i in range(9):
                g.attrs["n%d" % i] = np.int8(i)
            for i in range(9):
                g.create_group("k%d" % i)
    with open(os.path.join(LAYOUTS, "expected.json"), "w") as f:
        json.dump(exp, f, indent=1, sort_keys=True)
        f.write("\n")


# ------------------------------------------------------------ hostile inputs

HOSTILE = os.path.join(HERE, "..", "..", "..", "testdata", "hostile")


def hostile(name, data, err):
    with open(os.path.join(HOSTILE, name), "wb") as f:
        f.write(data)
    with open(os.path.join(HOSTILE, name + ".err"), "w") as f:
        f.write(err + "\n")


def hostile_files():
    global RS
    RS = np.random.RandomState(11)  # its own stream, as for the layouts
    os.makedirs(HOSTILE, exist_ok=True)
    tmp = os.path.join(HERE, "tmp.h5")
    # a legacy file cut short
    with open(os.path.join(HERE, "legacy_tfkeras.h5"), "rb") as f:
        data = f.read()
    hostile("keras-truncated.h5", data[: len(data) * 2 // 3], "truncated")
    # weight_names lists a weight that has no dataset
    with h5file(tmp) as f:
        save_weights_to_hdf5_group(f, [L("dense", "Dense", [("dense/kernel:0", arr((2, 2)))])], "2.4.0")
        f["dense"].attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    with open(tmp, "rb") as f:
        hostile("keras-missing-weight.h5", f.read(), "no dataset at dense/dense/bias:0")
    # a model_weights group without layer_names (attributes lost or not Keras)
    with h5file(tmp) as f:
        f.attrs["keras_version"] = b"2.4.0"
        g = f.create_group("model_weights")
        g.create_group("dense").create_dataset("dense/kernel:0", data=arr((2, 2)))
    with open(tmp, "rb") as f:
        hostile("keras-no-layer-names.h5", f.read(), "no layer_names attribute")
    # a tiny file declaring a never-written 4 TiB weight: refused, not streamed as fill
    with h5file(tmp) as f:
        save_weights_to_hdf5_group(f, [L("dense", "Dense")], "2.4.0")
        f["dense"].attrs["weight_names"] = [b"dense/kernel:0"]
        f["dense"].create_dataset("dense/kernel:0", shape=(1 << 20, 1 << 20), dtype="f4")
    with open(tmp, "rb") as f:
        hostile("keras-unwritten-huge.h5", f.read(), "declares 4398046511104 bytes of values")
    # a compression filter the reader does not have (h5py's built-in LZF)
    with h5file(tmp) as f:
        save_weights_to_hdf5_group(f, [L("dense", "Dense", [("dense/kernel:0", np.zeros((8, 8), "f4"), dict(chunks=(4, 4), compression="lzf"))])], "2.4.0")
    with open(tmp, "rb") as f:
        hostile("keras-lzf-filter.h5", f.read(), "compression filter 32000 (lzf) is not supported")
    # a libver="latest" file with a damaged object header: its checksum fails
    with h5file(tmp, "latest") as f:
        save_weights_to_hdf5_group(f, [L("dense", "Dense", [("dense/kernel:0", arr((2, 2)))])], "2.4.0")
    with open(tmp, "rb") as f:
        data = bytearray(f.read())
    i = data.index(b"OHDR", data.index(b"OHDR") + 4)  # the second object header
    data[i + 12] ^= 0xFF
    hostile("keras-bad-checksum.h5", bytes(data), "checksum mismatch")
    os.remove(tmp)
    meta = json.dumps({"keras_version": "3.9.2", "date_saved": "2025-05-19@18:57:43"})
    cfg = json.dumps({"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": []}})
    # a .keras without its weights file
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        zwrite(z, "metadata.json", meta)
        zwrite(z, "config.json", cfg)
    hostile("keras-no-weights.keras", buf.getvalue(), "has no weights file")
    # two members of the same name, the second a pickle that would call os.system
    payload = b"\x80\x02cposix\nsystem\nq\x00X\x0b\x00\x00\x00echo pwned!q\x01\x85q\x02Rq\x03."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        zwrite(z, "metadata.json", meta)
        zwrite(z, "config.json", cfg)
        zwrite(z, "model.weights.h5", b"")
        with __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore")
            zwrite(z, "config.json", payload)
    hostile("keras-duplicate-member.keras", buf.getvalue(), "appears twice")
    # a member name that climbs out of the extraction folder
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        zwrite(z, "metadata.json", meta)
        zwrite(z, "config.json", cfg)
        zwrite(z, "../../model.weights.h5", b"")
    hostile("keras-path-escape.keras", buf.getvalue(), "escapes the archive")


def keras213_files():
    """A .keras from Keras 2.13-2.15 (tf.keras): layers under
    _layer_checkpoint_dependencies, with gaps in their numbering."""
    def layer(cls, name, variables=(), config=None):
        l = S(cls, name, variables, None, config)
        l.config_layers, l.attrs_config = [], {}
        return l
    inp = layer("InputLayer", "input_1", config={"batch_input_shape": [None, 3]})
    a = layer("Dense", "dense_a", [("kernel", arr((3, 4))), ("bias", arr((4,)))])
    drop = layer("Dropout", "dropout", config={"rate": 0.5})
    b = layer("Dense", "dense_b", [("kernel", arr((4, 2)))], {"use_bias": False})
    bn = layer("BatchNormalization", "bn", [("gamma", arr((2,))), ("beta", arr((2,))), ("moving_mean", arr((2,))), ("moving_variance", np.abs(arr((2,))))])
    model = S("Sequential", "sequential", layers=[a, drop, b, bn])
    model.config_layers, model.attrs_config, model.keras213 = [inp, a, drop, b, bn], {}, True
    opt = S("Adam", "Adam", [("iteration", np.array(5, dtype="int64"))] + [("v%d" % i, arr((2,))) for i in range(10)])
    model.attrs["optimizer"] = opt
    cfg = layer_config(model)
    cfg["compile_config"] = {"optimizer": {"class_name": "Adam", "config": {"name": "Adam"}}}
    buf = io.BytesIO()
    out = []
    with h5file(buf) as f:
        save_state(model, f, "", set(), out, "", False)
        keys = sorted(f["_layer_checkpoint_dependencies"].keys())
        assert keys == ["batch_normalization", "dense", "dense_2", "dropout"], keys
    fn = "keras213.keras"
    with zipfile.ZipFile(os.path.join(HERE, fn), "w") as z:
        zwrite(z, "metadata.json", json.dumps({"keras_version": "2.13.1", "date_saved": "2023-07-10@10:00:00"}))
        zwrite(z, "config.json", json.dumps(cfg))
        zwrite(z, "model.weights.h5", buf.getvalue())
    keras3_expect(fn, out, True, False)


def keras3_bfloat16():
    """H5Entry.__setitem__ stores a bfloat16 variable (an ml_dtypes array,
    which h5py writes as 2-byte opaque data) with a "dtype" attribute."""
    fn = "keras3_bfloat16.weights.h5"
    rs = np.random.RandomState(3)
    f32 = rs.standard_normal((3, 4)).astype("<f4")
    bf16 = (f32.view("<u4") >> 16).astype("<u2")  # truncated to bfloat16 bits
    bias = rs.standard_normal(4).astype("<f4")
    with h5file(os.path.join(HERE, fn)) as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "dense"
        ds = g.create_dataset("0", data=bf16.view("V2"))
        ds.attrs["dtype"] = "bfloat16"
        g["1"] = bias
        f.create_group("vars")
    EXPECTED[fn] = {"skipped": [], "tensors": [
        {"name": "dense/vars/0", "dtype": "bfloat16", "shape": [3, 4], "sha256": hashlib.sha256(bf16.tobytes()).hexdigest(),
         "layer_type": "", "path": "layers/dense/vars/0"},
        {"name": "dense/vars/1", "dtype": "float32", "shape": [4], "sha256": sha(bias), "layer_type": "", "path": "layers/dense/vars/1"}]}


def main():
    for f in os.listdir(HERE):
        if f.endswith((".h5", ".keras")):
            os.remove(os.path.join(HERE, f))
    legacy_files()
    keras3_files()
    keras213_files()
    keras3_bfloat16()
    hostile_files()
    layouts_files()
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(EXPECTED, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
