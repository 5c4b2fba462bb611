"""Writes the PyTorch test fixtures with real torch (Debian's python3-torch).

Run from this folder with /usr/bin/python3 (not pyenv's python3); seeds are
fixed, so the values are reproducible (legacy files name their storages by
memory address, so their bytes differ from run to run). expected.json lists, per file, every
tensor our reader must export, in order: name, dtype, shape and the sha256
of its logical values as torch sees them (t.contiguous(), little-endian,
bfloat16 as its raw 2 bytes, NaN canonical), plus the skipped names.

Files the installed torch cannot write (big-endian byte order, float8, a
deflated archive) are made by rewriting torch's own output with zipfile.
Hostile files go to ../../../testdata/hostile/ (the end-to-end test runs them);
they are crafted from bytes and never loaded here.
"""
import collections
import hashlib
import io
import json
import os
import struct
import zipfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
HOSTILE = os.path.join(HERE, "..", "..", "..", "testdata", "hostile")
os.chdir(HERE)

expected = {}

FLOAT_NAN = {
    torch.float32: 0x7FC00000,
    torch.float64: 0x7FF8000000000000,
    torch.float16: 0x7E00,
    torch.bfloat16: 0x7FC0,
}
DTYPE_NAMES = {
    torch.float32: "float32", torch.float64: "float64", torch.float16: "float16",
    torch.bfloat16: "bfloat16", torch.int8: "int8", torch.int16: "int16",
    torch.int32: "int32", torch.int64: "int64", torch.uint8: "uint8", torch.bool: "bool",
}


def sha(t):
    t = t.detach().contiguous()
    if t.dtype in FLOAT_NAN:
        nan = torch.isnan(t)
        if nan.any():
            t = t.clone()
            t[nan] = float("nan")  # torch's NaN is the canonical quiet NaN
    raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
    return hashlib.sha256(raw).hexdigest()


def entry(name, t, layer_type=""):
    e = {"name": name, "dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "sha256": sha(t)}
    if layer_type:
        e["layer_type"] = layer_type
    return e


def walk(obj, prefix, out, seen):
    """Names as SPEC §4 gives them: dict keys and list positions joined by '.'."""
    if isinstance(obj, torch.Tensor):
        out.append(entry(prefix, obj))
        return
    if isinstance(obj, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(obj).astype(obj.dtype.newbyteorder("<")))
        out.append(entry(prefix, t))
        return
    if id(obj) in seen:
        return
    if isinstance(obj, dict):
        seen.add(id(obj))
        for k, v in obj.items():
            walk(v, f"{prefix}.{k}" if prefix else str(k), out, seen)
    elif isinstance(obj, (list, tuple)):
        seen.add(id(obj))
        for i, v in enumerate(obj):
            walk(v, f"{prefix}.{i}" if prefix else str(i), out, seen)


def module_tensors(m, prefix, out):
    """A pickled module's tensors: own parameters, own buffers (persistent or
    not), then children, as state_dict orders them."""
    p = prefix + "." if prefix else ""
    for n, t in m._parameters.items():
        if t is not None:
            out.append(entry(p + n, t, type(m).__name__))
    for n, t in m._buffers.items():
        if t is not None:
            out.append(entry(p + n, t, type(m).__name__))
    for n, c in m._modules.items():
        if c is not None:
            module_tensors(c, p + n, out)


def save(name, obj, tensors=None, skipped=(), legacy=False, **kw):
    torch.manual_seed(0)
    if legacy:
        torch.save(obj, name, _use_new_zipfile_serialization=False, **kw)
    else:
        torch.save(obj, name, **kw)
    if tensors is None:
        tensors = []
        walk(obj, "", tensors, set())
    expected[name] = {"tensors": tensors, "skipped": list(skipped)}


# --- models -------------------------------------------------------------------

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU())
        self.embed = torch.nn.Embedding(5, 3)
        self.heads = torch.nn.ModuleList([torch.nn.Linear(3, 2) for _ in range(2)])
        self.fc = torch.nn.Linear(2, 3, bias=False)
        self.fc.weight = torch.nn.Parameter(self.embed.weight[:3, :2].clone())
        self.decoder = torch.nn.Linear(3, 5, bias=False)
        self.decoder.weight = self.embed.weight  # tied
        self.register_buffer("tril", torch.tril(torch.ones(3, 3)))
        self.register_buffer("scratch", torch.arange(4.0), persistent=False)

    def forward(self, x):
        return x


torch.manual_seed(0)
net = Net()
net.features[1].running_mean.uniform_()
net.features[1].num_batches_tracked += 7

save("state_dict.pt", net.state_dict())

full = []
module_tensors(net, "", full)
save("full_model.pt", net, tensors=full)
save("full_model_legacy.pt", net, tensors=full, legacy=True)

# --- optimizer checkpoint (Adam) ----------------------------------------------
torch.manual_seed(1)
small = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
opt = torch.optim.Adam(small.parameters(), lr=1e-2)
for _ in range(2):
    opt.zero_grad()
    small(torch.randn(5, 3)).pow(2).sum().backward()
    opt.step()
save("optimizer.pt", {"epoch": 3, "model": small.state_dict(), "optimizer": opt.state_dict(), "loss": 0.25})

# --- views sharing one storage -------------------------------------------------
base = torch.arange(24, dtype=torch.float32)
grid = base.view(4, 6)
img = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
views = collections.OrderedDict([
    ("base", base),
    ("offset", base[6:12]),
    ("transposed", grid.t()),
    ("sliced", grid[1:, 1::2]),
    ("column", grid[:, 2]),
    ("scalar_view", base[5]),
    ("expand", torch.tensor([1.0, 2.0, 3.0]).expand(4, 3)),
    ("expand_scalar", torch.tensor(7, dtype=torch.int64).expand(2, 3)),
    ("channels_last", img.to(memory_format=torch.channels_last)),
    ("permuted", img.permute(3, 1, 0, 2)),
    ("narrow_3d", img[1:, :, 1:3, ::2]),
])
save("views.pt", views)
save("views_legacy.pt", views, legacy=True)

# --- every dtype, special values -----------------------------------------------
specials = [0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan")]
dtypes = collections.OrderedDict()
dtypes["f32"] = torch.tensor(specials + [1e-45, 1.17549435e-38, 3.4028235e38], dtype=torch.float32)
dtypes["f64"] = torch.tensor(specials + [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308], dtype=torch.float64)
dtypes["f16"] = torch.tensor(specials + [6e-8, 6.1e-5, 65504.0], dtype=torch.float16)
dtypes["bf16"] = torch.tensor(specials + [9.2e-41, 1.2e-38, 3.0e38], dtype=torch.bfloat16)
dtypes["i8"] = torch.tensor([-128, -1, 0, 127], dtype=torch.int8)
dtypes["i16"] = torch.tensor([-32768, -1, 0, 32767], dtype=torch.int16)
dtypes["i32"] = torch.tensor([-2**31, -1, 0, 2**31 - 1], dtype=torch.int32)
dtypes["i64"] = torch.tensor([-2**63, -1, 0, 2**63 - 1, 1 << 40], dtype=torch.int64)
dtypes["u8"] = torch.tensor([0, 1, 128, 255], dtype=torch.uint8)
dtypes["bool"] = torch.tensor([True, False, True])
dtypes["zero_d"] = torch.tensor(3.5)
dtypes["zero_d_int"] = torch.tensor(-9, dtype=torch.int64)
dtypes["empty"] = torch.zeros(0, 3)
dtypes["empty_1d"] = torch.zeros(0, dtype=torch.int32)
dtypes["complex"] = torch.tensor([1 + 2j], dtype=torch.complex64)
dtypes["quantized"] = torch.quantize_per_tensor(torch.tensor([0.5, 1.0]), 0.1, 0, torch.qint8)
dt_tensors = []
walk({k: v for k, v in dtypes.items() if k not in ("complex", "quantized")}, "", dt_tensors, set())
save("dtypes.pt", dtypes, tensors=dt_tensors, skipped=["complex", "quantized"])
save("dtypes_legacy.pt", dtypes, tensors=dt_tensors, skipped=["complex", "quantized"], legacy=True)

# --- protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE...) ---------------------------
save("protocol4.pt", net.state_dict(), pickle_protocol=4)

# --- tied weights and self-containing containers --------------------------------
w = torch.randn(2, 2)
tied = {"a": w, "b": w, "nested": {"c": w}}
loop = [w]
loop.append(loop)
tied["loop"] = loop
tied["self"] = tied
tied_tensors = [entry("a", w), entry("b", w), entry("nested.c", w), entry("loop.0", w)]
save("tied.pt", tied, tensors=tied_tensors)

# --- odd key names -------------------------------------------------------------
odd = collections.OrderedDict()
for k in ["comma,name", 'quote"d', "single'q", "new\nline", "=SUM(A1)", "+1", "-x", "@x",
          "../../etc/passwd", "tab\tkey", "unicode\u00e9\u2603", "", "dots.in.key"]:
    odd[k] = torch.arange(2, dtype=torch.int16) + len(k)
odd[7] = torch.ones(1)
save("odd_keys.pt", odd)

# --- Lightning-shaped checkpoint -----------------------------------------------
lightning = {
    "epoch": 4,
    "global_step": 120,
    "pytorch-lightning_version": "2.1.0",
    "state_dict": small.state_dict(),
    "loops": {"fit_loop": {"state_dict": {}, "epoch_progress": {"total": {"ready": 5}}}},
    "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {
        "best_model_score": torch.tensor(0.125), "best_model_path": "/tmp/x.ckpt"}},
    "optimizer_states": [opt.state_dict()],
    "lr_schedulers": [{"step_size": 10, "gamma": 0.1, "_last_lr": [0.01]}],
    "hparams_name": "kwargs",
    "hyper_parameters": {"lr": 0.01, "hidden": [4, 4], "name": "small"},
}
save("lightning.ckpt", lightning)

# --- numpy arrays inside a checkpoint --------------------------------------------
arrs = {"np_f8": np.linspace(0, 1, 5), "np_i4_fortran": np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
        "np_be": np.arange(3, dtype=">f4"), "t": torch.ones(2)}
save("numpy_inside.pt", arrs)

# --- TorchScript ---------------------------------------------------------------
SCRIPT_SRC = '''
import torch
class Scripted(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 2)
        self.bn = torch.nn.BatchNorm2d(2)
        self.fc = torch.nn.Linear(2, 3)
        self.register_buffer("scale", torch.tensor([0.5, 2.0]))
    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean((2, 3)) * self.scale)
'''
with open(os.path.join(HERE, "scripted_model.py"), "w") as f:  # torch.jit.script needs the source on disk
    f.write(SCRIPT_SRC)
import importlib.util
spec = importlib.util.spec_from_file_location("scripted_model", os.path.join(HERE, "scripted_model.py"))
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
torch.manual_seed(2)
sm = mod.Scripted()
scripted = torch.jit.script(sm)
torch.jit.save(scripted, "scripted.pt")
os.remove(os.path.join(HERE, "scripted_model.py"))
ts_tensors = [entry(k, v) for k, v in scripted.state_dict().items()]
expected["scripted.pt"] = {"tensors": ts_tensors, "skipped": []}

torch.manual_seed(3)
traced = torch.jit.trace(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), torch.randn(1, 2))
torch.jit.save(traced, "traced.pt")
expected["traced.pt"] = {"tensors": [entry(k, v) for k, v in traced.state_dict().items()], "skipped": []}


# --- rewritten archives ------------------------------------------------------------

def rewrite(src, dst, fn, compress=zipfile.ZIP_STORED, add=()):
    zin = zipfile.ZipFile(src)
    with zipfile.ZipFile(dst, "w", compression=compress) as zout:
        for info in zin.infolist():
            data = fn(info.filename, zin.read(info.filename))
            zi = zipfile.ZipInfo(info.filename, date_time=(2020, 1, 1, 0, 0, 0))
            zi.compress_type = compress
            zout.writestr(zi, data)
        for name, data in add:
            zout.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data)


def swap(itemsize):
    def f(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(data, dtype=f"<u{itemsize}").byteswap().tobytes()
        return data
    return f


# big-endian: torch on this machine cannot write it; swap every storage of a
# float32 + int64 file separately (one itemsize per file)
be32 = collections.OrderedDict([("w", torch.randn(2, 3)), ("t", torch.randn(3, 2).t())])
save("be_src32.pt", be32)
rewrite("be_src32.pt", "bigendian_f32.pt", swap(4), add=[("be_src32/byteorder", b"big")])
expected["bigendian_f32.pt"] = expected.pop("be_src32.pt")
be64 = collections.OrderedDict([("steps", torch.tensor([1, -2, 1 << 40], dtype=torch.int64))])
save("be_src64.pt", be64)
rewrite("be_src64.pt", "bigendian_i64.pt", swap(8), add=[("be_src64/byteorder", b"big")])
expected["bigendian_i64.pt"] = expected.pop("be_src64.pt")
os.remove("be_src32.pt")
os.remove("be_src64.pt")

# deflated members (torch always stores; other zip tools may not)
rewrite("views.pt", "deflated.pt", lambda n, d: d, compress=zipfile.ZIP_DEFLATED)
expected["deflated.pt"] = expected["views.pt"]

# any archive root name
zin = zipfile.ZipFile("state_dict.pt")
with zipfile.ZipFile("renamed_root.pt", "w") as zout:
    for info in zin.infolist():
        zi = zipfile.ZipInfo("some root-name/" + info.filename.split("/", 1)[1], date_time=(2020, 1, 1, 0, 0, 0))
        zout.writestr(zi, zin.read(info.filename))
expected["renamed_root.pt"] = expected["state_dict.pt"]

# float8 (torch >= 2.1 writes _rebuild_tensor_v3 with an UntypedStorage and a
# dtype global); crafted in the layout torch 2.1 uses
def craft_v3(fname, items):
    """items: list of (name, dtype_global_name, raw bytes, shape)."""
    out = io.BytesIO()
    p = bytearray(b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(")
    for i, (name, dname, raw, shape) in enumerate(items):
        nb = name.encode()
        p += b"X" + struct.pack("<I", len(nb)) + nb
        p += b"ctorch._utils\n_rebuild_tensor_v3\n("
        key = str(i).encode()
        p += b"(X\x07\x00\x00\x00storagectorch\nUntypedStorage\nX" + struct.pack("<I", len(key)) + key
        p += b"X\x03\x00\x00\x00cpuJ" + struct.pack("<i", len(raw)) + b"tQ"
        p += b"K\x00(" + b"".join(b"J" + struct.pack("<i", d) for d in shape) + b"t("
        strides, s = [], 1
        for d in reversed(shape):
            strides.insert(0, s)
            s *= d
        p += b"".join(b"J" + struct.pack("<i", d) for d in strides) + b"t\x89ccollections\nOrderedDict\n)R"
        p += b"ctorch\n" + dname.encode() + b"\ntR"
    p += b"u."
    with zipfile.ZipFile(fname, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(2020, 1, 1, 0, 0, 0)), bytes(p))
        z.writestr(zipfile.ZipInfo("archive/byteorder", date_time=(2020, 1, 1, 0, 0, 0)), b"little")
        for i, (_, _, raw, _) in enumerate(items):
            z.writestr(zipfile.ZipInfo(f"archive/data/{i}", date_time=(2020, 1, 1, 0, 0, 0)), raw)
        z.writestr(zipfile.ZipInfo("archive/version", date_time=(2020, 1, 1, 0, 0, 0)), b"3\n")


f8a = bytes([0x00, 0x80, 0x38, 0xB8, 0x7E, 0xFE, 0x7F, 0x01])   # 0, -0, 1, -1, 448, -448, NaN, min subnormal
f8b = bytes([0x00, 0x80, 0x3C, 0xBC, 0x7B, 0x7C, 0xFC, 0x7E, 0x01])  # e5m2: 0, -0, 1, -1, 57344, inf, -inf, NaN, subnormal
u16 = struct.pack("<4H", 0, 1, 40000, 65535)
craft_v3("float8.pt", [("e4m3", "float8_e4m3fn", f8a, [2, 4]), ("e5m2", "float8_e5m2", f8b, [9]), ("u16", "uint16", u16, [4])])


def rawsha(b, canon=None):
    return hashlib.sha256(b).hexdigest()


# NaN canonical: e4m3fn 0x7f, e5m2 0x7e (already canonical above)
expected["float8.pt"] = {"tensors": [
    {"name": "e4m3", "dtype": "float8_e4m3fn", "shape": [2, 4], "sha256": rawsha(f8a)},
    {"name": "e5m2", "dtype": "float8_e5m2", "shape": [9], "sha256": rawsha(f8b)},
    {"name": "u16", "dtype": "uint16", "shape": [4], "sha256": rawsha(u16)},
], "skipped": []}

# --- sharded checkpoint (pytorch_model.bin.index.json) --------------------------------
os.makedirs("sharded", exist_ok=True)
sd = small.state_dict()
keys = list(sd)
shards = {"pytorch_model-00001-of-00002.bin": keys[:2], "pytorch_model-00002-of-00002.bin": keys[2:]}
wm = {}
for fn, ks in shards.items():
    torch.save({k: sd[k] for k in ks}, os.path.join("sharded", fn))
    wm.update({k: fn for k in ks})
with open(os.path.join("sharded", "pytorch_model.bin.index.json"), "w") as f:
    json.dump({"metadata": {"total_size": sum(v.numel() * 4 for v in sd.values())}, "weight_map": wm}, f, indent=1)
expected["sharded/pytorch_model.bin.index.json"] = {"tensors": [entry(k, sd[k]) for k in keys], "skipped": []}

# --- hostile files (crafted bytes; never loaded) -------------------------------------
MARKER = "/tmp/ckpt2csv-pytorch-pwned"  # the payloads would create it; tests check it never exists


class P:
    """A tiny pickle emitter: enough opcodes to craft hostile data.pkl records."""

    def __init__(self, proto=2):
        self.b = bytearray(b"\x80" + bytes([proto]))

    def raw(self, b):
        self.b += b
        return self

    def int(self, v):
        if 0 <= v < 256:
            return self.raw(b"K" + bytes([v]))
        if -2**31 <= v < 2**31:
            return self.raw(b"J" + struct.pack("<i", v))
        n = (v.bit_length() + 8) // 8
        return self.raw(b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True))

    def str(self, s):
        e = s.encode()
        return self.raw(b"X" + struct.pack("<I", len(e)) + e)

    def glob(self, mod, name):
        return self.raw(b"c" + mod.encode() + b"\n" + name.encode() + b"\n")

    def tuple(self, *items):
        self.raw(b"(")
        for it in items:
            it(self)
        return self.raw(b"t")

    def stop(self):
        return bytes(self.b + b".")


def I(v):
    return lambda p: p.int(v)


def S(v):
    return lambda p: p.str(v)


def T(*items):
    return lambda p: p.tuple(*items)


def G(m, n):
    return lambda p: p.glob(m, n)


def tensor_dict(key="0", numel=6, shape=(2, 3), stride=(3, 1), stype="FloatStorage", name="w"):
    """{name: _rebuild_tensor_v2(storage key, 0, shape, stride, False, OrderedDict())}"""
    p = P().raw(b"}(").str(name)
    p.glob("torch._utils", "_rebuild_tensor_v2").raw(b"(")
    p.tuple(S("storage"), G("torch", stype), S(key), S("cpu"), I(numel)).raw(b"Q")
    p.int(0).tuple(*[I(d) for d in shape]).tuple(*[I(d) for d in stride])
    p.raw(b"\x89").glob("collections", "OrderedDict").raw(b")Rt")
    p.raw(b"Ru")
    return p.stop()


def torch_zip(path, pkl, data=None, extra=(), compress=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", date_time=(2020, 1, 1, 0, 0, 0)), pkl, compress_type=compress)
        for k, v in (data or {}).items():
            z.writestr(zipfile.ZipInfo("archive/data/" + k, date_time=(2020, 1, 1, 0, 0, 0)), v)
        for k, v in extra:
            z.writestr(zipfile.ZipInfo("archive/" + k, date_time=(2020, 1, 1, 0, 0, 0)), v)
        z.writestr(zipfile.ZipInfo("archive/version", date_time=(2020, 1, 1, 0, 0, 0)), b"3\n")


def legacy(path, obj_pkl, keys, storages):
    out = bytearray()
    out += P().int(0x1950A86A20F9469CFC6C).stop()
    out += P().int(1001).stop()
    out += P().raw(b"}(").str("protocol_version").int(1001).str("little_endian").raw(b"\x88u").stop()
    out += obj_pkl
    out += P().raw(b"(" + b"".join(b"X" + struct.pack("<I", len(k)) + k.encode() for k in keys) + b"l").stop()
    for raw, numel in storages:
        out += struct.pack("<q", numel) + raw
    with open(path, "wb") as f:
        f.write(out)


def payload(mod, name, arg=f"touch {MARKER}"):
    """{'w': mod.name(arg)}: a REDUCE on a callable that runs code."""
    return P().raw(b"}(").str("w").glob(mod, name).tuple(S(arg)).raw(b"Ru").stop()


def hostile(name, err, write):
    path = os.path.join(HOSTILE, name)
    write(path)
    with open(path + ".err", "w") as f:
        f.write(err + "\n")


os.makedirs(HOSTILE, exist_ok=True)
f32 = struct.pack("<6f", *range(6))
hostile("pytorch-reduce-os-system.pt", "os.system", lambda p: torch_zip(p, payload("os", "system")))
hostile("pytorch-reduce-posix-system.pt", "posix.system", lambda p: torch_zip(p, payload("posix", "system")))
hostile("pytorch-reduce-eval.pt", "builtins.eval", lambda p: torch_zip(p, payload("builtins", "eval", f"__import__('os').system('touch {MARKER}')")))
hostile("pytorch-subprocess-popen.pt", "subprocess.Popen", lambda p: torch_zip(p, payload("subprocess", "Popen")))
hostile("pytorch-posixsubprocess.pt", "_posixsubprocess.fork_exec", lambda p: torch_zip(p, payload("_posixsubprocess", "fork_exec")))
hostile("pytorch-inst-opcode.pt", "os.system", lambda p: torch_zip(p, b"\x80\x02}(X\x01\x00\x00\x00w(S'touch " + MARKER.encode() + b"'\nios\nsystem\nu."))
# protocol 4: module and name strings memoized, then combined by STACK_GLOBAL from the memo
hostile("pytorch-stack-global-memo.pt", "os.system", lambda p: torch_zip(p,
        b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00\x8c\x05torch\x94\x8c\x02os\x94\x8c\x06system\x94h\x01h\x02\x93\x94\x8c\x04true\x85R."))
hostile("pytorch-build-setstate.pt", "__setstate__", lambda p: torch_zip(p,
        b"\x80\x02ccollections\nOrderedDict\n)R}X\x0c\x00\x00\x00__setstate__cmymodule\nhook\nsb."))
hostile("pytorch-legacy-os-system.pt", "os.system", lambda p: legacy(p, payload("os", "system"), [], []))
hostile("pytorch-ext-opcode.pt", "EXT", lambda p: torch_zip(p, b"\x80\x02\x82\x01."))
hostile("pytorch-lfs-pointer.pth", "Git LFS pointer", lambda p: open(p, "w").write(
    "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 132489\n"))


def truncated(p):
    with open("state_dict.pt", "rb") as f:
        b = f.read()
    with open(p, "wb") as f:
        f.write(b[: len(b) // 2])


hostile("pytorch-truncated-zip.pt", "truncated", truncated)
hostile("pytorch-short-storage.pt", "needs 24 bytes", lambda p: torch_zip(p, tensor_dict(), {"0": f32[:12]}))
hostile("pytorch-shape-2e40.pt", "too many elements", lambda p: torch_zip(p, tensor_dict(shape=(2**40, 2**40), stride=(2**40, 1)), {"0": f32}))
hostile("pytorch-expand-2e62.pt", "expands a storage", lambda p: torch_zip(p, tensor_dict(stype="BoolStorage", numel=1, shape=(2**31, 2**31), stride=(0, 0)), {"0": b"\x01"}))
hostile("pytorch-view-past-storage.pt", "past the end of its storage", lambda p: torch_zip(p, tensor_dict(shape=(3, 3), stride=(3, 1)), {"0": f32}))
hostile("pytorch-storage-key-traversal.pt", "not a plain name", lambda p: torch_zip(p, tensor_dict(key="../../x"), {"0": f32}))
hostile("pytorch-bad-byteorder.pt", "byteorder", lambda p: torch_zip(p, tensor_dict(), {"0": f32}, extra=[("byteorder", b"middle")]))
hostile("pytorch-legacy-short-storage.pt", "past the end of the file", lambda p: legacy(p, tensor_dict(), ["0"], [(f32[:8], 6)]))


def zip_bomb(p):
    # data/0 declares 1 GiB inflated from 1 KiB of deflate data: sizes patched in both headers
    torch_zip(p, tensor_dict(numel=1 << 28, shape=(1 << 28,), stride=(1,)))
    with zipfile.ZipFile(p, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("archive/data/0", date_time=(2020, 1, 1, 0, 0, 0)), b"\0" * (1 << 20), compress_type=zipfile.ZIP_DEFLATED)
    b = bytearray(open(p, "rb").read())
    i = b.rfind(b"PK\x01\x02")  # central entry of data/0 (the last member)
    struct.pack_into("<I", b, i + 24, 1 << 30)
    lo = struct.unpack_from("<I", b, i + 42)[0]
    struct.pack_into("<I", b, lo + 22, 1 << 30)
    open(p, "wb").write(bytes(b))


hostile("pytorch-zip-bomb.pt", "ratio", zip_bomb)


def reference_bomb():
    # l[i+1] = [l[i], l[i]], 100 levels, then {'w': l[100]}
    b = bytearray(b"\x80\x04]\x94")
    for i in range(100):
        b += b"]\x94(" + b"j" + struct.pack("<I", 2 * i) + b"j" + struct.pack("<I", 2 * i) + b"e\x94" + b"0"
    return bytes(b + b"0}X\x01\x00\x00\x00wj" + struct.pack("<I", 200) + b"s.")


hostile("pytorch-reference-bomb.pt", "reference bomb", lambda p: torch_zip(p, reference_bomb()))


def deep_nesting():
    b = bytearray(b"\x80\x02]q\x00")
    b += b"]h\x00aq\x000" * 3000
    return bytes(b + b"0}X\x01\x00\x00\x00wh\x00s.")


hostile("pytorch-deep-nesting.pt", "nested deeper than", lambda p: torch_zip(p, deep_nesting(), compress=zipfile.ZIP_DEFLATED))

with open("expected.json", "w") as f:
    json.dump(expected, f, indent=1, sort_keys=True)
print("wrote", len(expected), "fixtures")
