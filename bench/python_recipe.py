#!/usr/bin/python3
"""The recipe users run today: torch.load, then csv.writer, one row per value,
with the same columns as ckpt2csv's CSV so both do the same work.
Usage: python_recipe.py CHECKPOINT OUT.csv"""
import csv
import sys

import torch

sd = torch.load(sys.argv[1], map_location="cpu")
with open(sys.argv[2], "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["layer_index", "layer_name", "param_type", "tensor", "flat_index", "value"])
    layers = {}
    for name, t in sd.items():
        layer, _, param = name.rpartition(".")
        li = layers.setdefault(layer, len(layers))
        for i, v in enumerate(t.flatten().tolist()):
            w.writerow([li, layer, param, name, i, v])
