"""Checks that an animated GLB (morph targets played by a weights animation) does not tear.

    python3 tools/check_animation.py FILE.glb [--steps 60]

Plays the file's weights animation at `--steps` times over its length (linear interpolation,
as glTF viewers do), rebuilds the vertex positions from the base mesh and the morph targets'
displacements, and prints per sampled time the largest edge stretch (an edge's length against its
length at rest, or the inverse for edges that shrink) and the share of edges stretched over 1.5×.
A mesh that tears shows edges stretched many times over. Needs numpy only.
"""
import json
import struct
import sys

import numpy as np


def read_glb(path):
    data = open(path, "rb").read()
    magic, version, _ = struct.unpack_from("<III", data, 0)
    assert magic == 0x46546C67 and version == 2, "not a glTF 2 binary"
    length, kind = struct.unpack_from("<II", data, 12)
    doc = json.loads(data[20:20 + length])
    offset = 20 + length
    blob = b""
    if offset + 8 <= len(data):
        blen, bkind = struct.unpack_from("<II", data, offset)
        blob = data[offset + 8:offset + 8 + blen]
    return doc, blob


def accessor(doc, blob, index):
    a = doc["accessors"][index]
    view = doc["bufferViews"][a["bufferView"]]
    comps = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}[a["type"]]
    dtype = {5126: np.float32, 5125: np.uint32, 5123: np.uint16, 5121: np.uint8}[a["componentType"]]
    start = view.get("byteOffset", 0) + a.get("byteOffset", 0)
    count = a["count"] * comps
    values = np.frombuffer(blob, dtype=dtype, count=count, offset=start)
    return values.reshape(a["count"], comps) if comps > 1 else values


def main():
    args = sys.argv[1:]
    steps = 60
    if "--steps" in args:
        i = args.index("--steps")
        steps = int(args[i + 1])
        del args[i:i + 2]
    doc, blob = read_glb(args[0])
    prim = doc["meshes"][0]["primitives"][0]
    base = accessor(doc, blob, prim["attributes"]["POSITION"]).astype(np.float64)
    targets = [accessor(doc, blob, t["POSITION"]).astype(np.float64) for t in prim.get("targets", [])]
    faces = accessor(doc, blob, prim["indices"]).reshape(-1, 3)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    rest = np.linalg.norm(base[edges[:, 0]] - base[edges[:, 1]], axis=1)
    keep = rest > 1e-6
    edges, rest = edges[keep], rest[keep]
    anim = doc["animations"][0]["samplers"][0]
    times = accessor(doc, blob, anim["input"])
    weights = accessor(doc, blob, anim["output"]).reshape(len(times), len(targets))
    print("| time (s) | largest stretch | edges over 1.5× |")
    print("| ---: | ---: | ---: |")
    worst = 1.0
    for t in np.linspace(times[0], times[-1], steps):
        w = np.array([np.interp(t, times, weights[:, k]) for k in range(len(targets))])
        p = base + sum(wk * d for wk, d in zip(w, targets))
        length = np.linalg.norm(p[edges[:, 0]] - p[edges[:, 1]], axis=1)
        ratio = np.maximum(length / rest, rest / np.maximum(length, 1e-12))
        worst = max(worst, ratio.max())
        print("| %.3f | %.2f | %.4f |" % (t, ratio.max(), (ratio > 1.5).mean()))
    print("largest stretch over the loop: %.2f" % worst)


main()
