#!/usr/bin/env python3
"""Writes Kiln's hostile-input corpus: small files that once crashed, hung or fooled `kiln`.

    tools/make_hostile_corpus.py [FOLDER]    default Tests/kilnTests/HostileCorpus

Every file is a few hundred bytes (mesh-fuzz-cpu-loop.dae, 300 KB, is a tools/fuzz.sh finding kept
as found, not written here); kilnTests' HostileCorpusTests runs each through the command
line (the cases and the messages they must produce live there). Bulky cases (a 12,000-frame
transforms.json, a 2M-face mesh) are made by the test or by tools/bench_hostile.sh instead.
"""
import json
import math
import os
import struct
import sys

NAN, INF = float("nan"), float("inf")


def splat_ply(path, rows, extra_header=""):
    """A degree-0 INRIA 3DGS PLY; rows are (x, y, z, log_scale, opacity_logit)."""
    names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
             "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    header = "ply\nformat binary_little_endian 1.0\n" + extra_header + f"element vertex {len(rows)}\n"
    header += "".join(f"property float {n}\n" for n in names) + "end_header\n"
    body = b""
    for x, y, z, s, o in rows:
        body += struct.pack("<17f", x, y, z, 0, 0, 0, 0.5, 0.2, 0.1, o, s, s, s, 1, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(header.encode() + body)


def ball(n=24, radius=0.5):
    """n splats spread over a sphere (a sane cloud the hostile one hides in)."""
    rows = []
    for i in range(n):
        t = math.acos(1 - 2 * (i + 0.5) / n)
        p = math.pi * (1 + 5 ** 0.5) * i
        rows.append((radius * math.sin(t) * math.cos(p), radius * math.cos(t), radius * math.sin(t) * math.sin(p), -3.0, 2.0))
    return rows


def splat_file(path, rows):
    """antimatter15 .splat: position, linear scale, RGBA, quaternion bytes."""
    with open(path, "wb") as f:
        for x, y, z, s in rows:
            f.write(struct.pack("<6f", x, y, z, s, s, s) + bytes([200, 100, 50, 255, 255, 128, 128, 128]))


def obj(path, vertices, faces, mtl=None):
    lines = [f"mtllib {os.path.basename(mtl)}"] if mtl else []
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in vertices]
    if mtl:
        lines += ["vt 0 0", "vt 1 0", "vt 0 1", "usemtl skin"]
        lines += [f"f {a}/1 {b}/2 {c}/3" for a, b, c in faces]
    else:
        lines += [f"f {a} {b} {c}" for a, b, c in faces]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


TETRA_V = [(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1)]
TETRA_F = [(1, 3, 2), (1, 2, 4), (1, 4, 3), (2, 3, 4)]


def views_folder(folder, matrices, paths=None, png=None):
    """A transforms.json with one frame per matrix, and a tiny PNG per frame."""
    os.makedirs(folder, exist_ok=True)
    frames = []
    for i, m in enumerate(matrices):
        name = paths[i] if paths else f"view_{i:03d}.png"
        frames.append({"file_path": name, "transform_matrix": m})
        if png and not paths:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(png)
    with open(os.path.join(folder, "transforms.json"), "w") as f:
        json.dump({"camera_angle_x": 0.69, "frames": frames}, f, indent=1, allow_nan=True)


def tiny_png():
    """A valid 4×4 white RGB PNG (zlib, CRC by hand so that no library is needed)."""
    import zlib
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xff" * 12 for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pose(tx, ty, tz):
    return [[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "Tests", "kilnTests", "HostileCorpus")
    os.makedirs(out, exist_ok=True)
    p = lambda *names: os.path.join(out, *names)

    # Splats far away, huge, tiny or degenerate (render / eval).
    for name, row in [("splat-far-1e7", (1e7, 0, 0, -3.0, 2.0)), ("splat-far-1e30", (1e30, -1e30, 1e30, -3.0, 2.0)),
                      ("splat-scale-1e30", (0, 0, 0, 69.0, 2.0)), ("splat-scale-neg-1e30", (0, 0, 0, -1e30, 2.0)),
                      ("splat-opacity-1e30", (0, 0, 0, -3.0, 1e30))]:
        splat_ply(p(name + ".ply"), ball() + [row])
    splat_ply(p("splat-all-far-1e7.ply"), [(1e7 + x, y, z, s, o) for x, y, z, s, o in ball()])
    splat_ply(p("splat-one-at-1e7.ply"), [(1e7, 1e7, 1e7, -3.0, 2.0)])
    splat_file(p("splat-one-at-1e7.splat"), [(1e7, 1e7, 1e7, 1e7)])
    # Non-finite values: the reader must name the Gaussian and the property.
    splat_ply(p("splat-nan.ply"), ball() + [(NAN, 0, 0, -3.0, 2.0)])
    splat_ply(p("splat-inf.ply"), ball() + [(0, INF, 0, -3.0, 2.0)])
    splat_ply(p("splat-neg-inf.ply"), ball() + [(0, 0, -INF, -3.0, 2.0)])
    # .splat with zero and 1e30 linear scales.
    splat_file(p("splat-zero-scale.splat"), [(x, y, z, 0.0) for x, y, z, _, _ in ball()])
    splat_file(p("splat-scale-1e30.splat"), [(x, y, z, 1e30) for x, y, z, _, _ in ball()])
    # Empty and truncated splat files.
    open(p("splat-empty.ply"), "wb").close()
    with open(p("splat-nan.ply"), "rb") as f:
        whole = f.read()
    with open(p("splat-truncated.ply"), "wb") as f:
        f.write(whole[: len(whole) - 30])

    # A 3DGS PLY whose header is longer than 4 KB (comments first): still splats, not a mesh.
    splat_ply(p("splat-long-header.ply"), ball(), extra_header="".join(f"comment padding line {i:04d} {'x' * 40}\n" for i in range(120)))

    # Meshes: a vertex at 1e30 (render), every vertex equal (eval), an empty file.
    obj(p("mesh-vertex-1e30.obj"), TETRA_V[:3] + [(1e30, 1e30, 1e30)], TETRA_F)
    obj(p("mesh-vertex-3e38.obj"), TETRA_V[:3] + [(3e38, 0, 0)], TETRA_F)
    obj(p("mesh-zero-size.obj"), [(0.5, 0.5, 0.5)] * 4, TETRA_F)
    open(p("mesh-empty.obj"), "wb").close()
    # A PLY without end_header (70 bytes): Assimp's reader spun forever on it.
    with open(p("mesh-no-end-header.ply"), "wb") as f:
        f.write(b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n")
    with open(p("mesh-header-only-ascii.ply"), "wb") as f:
        f.write(b"ply\nformat ascii 1.0\nelement vertex 300\nproperty float x\nend_header\n0 0\n")
    with open(p("mesh-header-only-binary.ply"), "wb") as f:
        f.write(b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000\nproperty float x\nend_header\n")
    # An OBJ whose material reads a texture outside its folder.
    os.makedirs(p("mesh-texture-outside"), exist_ok=True)
    with open(p("mesh-texture-outside", "escape.mtl"), "w") as f:
        f.write("newmtl skin\nKd 1 1 1\nmap_Kd ../outside-texture.png\n")
    obj(p("mesh-texture-outside", "escape.obj"), TETRA_V, TETRA_F, mtl="escape.mtl")
    with open(p("outside-texture.png"), "wb") as f:
        f.write(tiny_png())

    # Posed image folders (eval-views / fit).
    png = tiny_png()
    ring = [pose(3 * math.sin(a), 0, 3 * math.cos(a)) for a in [0, 1.5, 3, 4.5]]
    views_folder(p("views-zero-transform"), ring[:3] + [[[0] * 4 for _ in range(4)]], png=png)
    views_folder(p("views-1e30-transform"), ring[:3] + [pose(1e30, 1e30, 1e30)], png=png)
    views_folder(p("views-scale-1e30-transform"), ring[:3] + [[[1e30, 0, 0, 0], [0, 1e30, 0, 0], [0, 0, 1e30, 3], [0, 0, 0, 1]]], png=png)
    views_folder(p("views-nan-transform"), ring[:3] + [pose(NAN, 0, 3)], png=png)
    views_folder(p("views-dotdot-path"), ring, paths=["../outside-texture.png"] * 4)
    views_folder(p("views-absolute-path"), ring, paths=["/etc/hostname"] * 4)
    # Cameras that all look away from the object (fit would keep nothing).
    away = [[[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 100 + 3 * i], [0, 0, 0, 1]] for i in range(4)]
    views_folder(p("views-see-nothing"), away, png=png)
    os.makedirs(p("views-empty"), exist_ok=True)
    open(p("views-empty", "transforms.json"), "w").close()
    os.makedirs(p("views-truncated"), exist_ok=True)
    with open(p("views-truncated", "transforms.json"), "w") as f:
        f.write('{"camera_angle_x": 0.69, "frames": [{"file_path": "a.png", "transform_matrix": [[1,0,0')

    # kiln generate --config files.
    configs = {
        "config-min-above-max.json": {"sds": {"min_step": 0.9, "max_step": 0.1}},
        "config-negative-lr.json": {"gaussians": {"position_learning_rate": -0.001}},
        "config-zero-lr.json": {"nerf": {"learning_rate": 0}, "gaussians": {"feature_learning_rate": 0}},
        "config-unknown-key.json": {"sds": {"guidance": 7}},
        "config-wrong-type.json": {"views": {"views_per_step": "four"}},
    }
    for name, value in configs.items():
        with open(p(name), "w") as f:
            json.dump(value, f, indent=1)
    with open(p("config-syntax-error.json"), "w") as f:
        f.write('{\n  "steps": 10,\n  "sds": {"min_step": 0.1,,}\n}\n')


if __name__ == "__main__":
    main()
