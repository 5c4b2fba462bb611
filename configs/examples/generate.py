#!/usr/bin/python3
"""Writes the small example checkpoints that configs/examples/manifest.txt
exports, with the real frameworks (Debian's python3-torch, python3-sklearn,
python3-numpy). Run with /usr/bin/python3 from this folder; the outputs are
committed, so running the examples needs no Python."""
import json
import struct

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
import pickle

torch.manual_seed(0)
rng = np.random.default_rng(0)

# PyTorch: a small CNN state_dict (torch.save, zip format).
net = torch.nn.Sequential(
    torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
    torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10))
torch.save(net.state_dict(), "cnn_state_dict.pt")

# scikit-learn: logistic regression on iris-like data, plain pickle.
X = rng.normal(size=(60, 4))
y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
with open("logreg.pkl", "wb") as f:
    pickle.dump(LogisticRegression(max_iter=500).fit(X, y), f, protocol=4)

# NumPy: weights and biases of a two-layer perceptron.
np.savez("mlp.npz", w1=rng.normal(scale=0.1, size=(8, 4)).astype(np.float32),
         b1=np.zeros(8, np.float32), w2=rng.normal(scale=0.1, size=(3, 8)).astype(np.float32),
         b2=np.array([0.1, -0.2, 0.3], np.float32))

# safetensors (no writer packaged here: the layout from the spec): an
# embedding in bfloat16 and a float16 projection, with __metadata__.
emb = rng.normal(scale=0.02, size=(16, 8)).astype(np.float32)
bf16 = (emb.view(np.uint32) >> 16).astype(np.uint16)  # truncation is a valid bfloat16 value
proj = rng.normal(scale=0.1, size=(8, 8)).astype(np.float16)
tensors = [("embed.weight", "BF16", [16, 8], bf16.tobytes()), ("proj.weight", "F16", [8, 8], proj.tobytes())]
header, data, off = {"__metadata__": {"format": "pt", "source": "ckpt2csv example"}}, b"", 0
for name, dt, shape, raw in tensors:
    header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(raw)]}
    data += raw
    off += len(raw)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * (-len(h) % 8)
with open("tiny.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h + data)
