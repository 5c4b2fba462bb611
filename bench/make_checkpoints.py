#!/usr/bin/python3
"""Writes the benchmark checkpoints with real PyTorch (Debian's python3-torch):
  resnet18.pt  a ResNet-18-shaped state_dict (11.7M values, random init)
  big60m.pt    a 60M-value state_dict whose embedding alone is 200 MB
Usage: make_checkpoints.py OUTDIR"""
import os
import sys

import torch

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)


def block(cin, cout, stride):
    layers = {
        "conv1": torch.nn.Conv2d(cin, cout, 3, stride, 1, bias=False), "bn1": torch.nn.BatchNorm2d(cout),
        "conv2": torch.nn.Conv2d(cout, cout, 3, 1, 1, bias=False), "bn2": torch.nn.BatchNorm2d(cout),
    }
    if stride != 1 or cin != cout:
        layers["downsample"] = torch.nn.Sequential(torch.nn.Conv2d(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout))
    return torch.nn.ModuleDict(layers)


if not os.path.exists(f"{out}/resnet18.pt"):
    m = torch.nn.ModuleDict({"conv1": torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False), "bn1": torch.nn.BatchNorm2d(64)})
    cin = 64
    for i, cout in enumerate([64, 128, 256, 512], 1):
        m[f"layer{i}"] = torch.nn.Sequential(block(cin, cout, 1 if i == 1 else 2), block(cout, cout, 1))
        cin = cout
    m["fc"] = torch.nn.Linear(512, 1000)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.05)
    torch.save(m.state_dict(), f"{out}/resnet18.pt")

if not os.path.exists(f"{out}/big60m.pt"):
    sd = {"embed.weight": torch.randn(50_000_000) * 0.02}
    for i in range(10):
        sd[f"layers.{i}.weight"] = torch.randn(1000, 1000) * 0.05
    torch.save(sd, f"{out}/big60m.pt")
