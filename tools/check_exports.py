#!/usr/bin/env python3
"""Checks the files `kiln demo` writes with the Python ecosystem's own readers.

An independent second opinion on Kiln's exports: pygltflib, trimesh, plyfile and Pillow must
read every file, and the formats must agree with each other and with summary.json.

    pip install -r tools/requirements.txt
    kiln demo --out DIR
    python3 tools/check_exports.py DIR          # one PASS/FAIL line per check
    python3 tools/check_exports.py DIR --json   # the same as JSON

Exit status: 0 when every check passes, 1 when any fails, 2 on usage errors.
"""
import argparse
import functools
import io
import json
import math
import sys
from pathlib import Path

import numpy as np
import plyfile
import pygltflib
import trimesh
from PIL import Image

SNOWMAN = ["snowman.glb", "snowman.obj", "snowman.ply", "snowman.stl"]
CRATE = ["crate.glb", "crate.obj"]
PALETTE = {"white": (0.95, 0.95, 0.97), "black": (0.05, 0.05, 0.06),
           "orange": (0.95, 0.45, 0.08), "red": (0.8, 0.1, 0.1)}
SPLAT_PROPERTIES = ("x y z nx ny nz f_dc_0 f_dc_1 f_dc_2 opacity "
                    "scale_0 scale_1 scale_2 rot_0 rot_1 rot_2 rot_3").split()
SH_C0 = 0.28209479177387814


class CheckFailed(Exception):
    pass


def need(condition, message):
    if not condition:
        raise CheckFailed(message)


# ---------------------------------------------------------------- shared readers

@functools.lru_cache(maxsize=None)
def summary(d):
    return json.loads((d / "summary.json").read_text())


def summary_mesh(d, name):
    return {m["file"]: m for m in summary(d)["meshes"]}[name]


@functools.lru_cache(maxsize=None)
def load_mesh(path):
    """One unprocessed trimesh.Trimesh. A scene must hold one geometry at an identity transform
    (copying a mesh to move it would drop glTF vertex colours). Loaded with trimesh's defaults,
    as a user would: its PLY reader shifts colours when a file has unreferenced vertices, which
    Kiln must therefore never write."""
    loaded = trimesh.load(path, process=False)
    if isinstance(loaded, trimesh.Scene):
        need(len(loaded.geometry) == 1, f"{path.name}: expected 1 geometry, got {len(loaded.geometry)}")
        transform, key = loaded.graph[loaded.graph.nodes_geometry[0]]
        need(np.allclose(transform, np.eye(4)), f"{path.name}: mesh node is not at the origin")
        return loaded.geometry[key]
    return loaded


def welded_count(points, decimals=5):
    """Distinct rows after rounding (and folding -0.0 into 0.0)."""
    return len(np.unique(np.round(points, decimals) + 0.0, axis=0))


@functools.lru_cache(maxsize=None)
def splat_ply(d):
    return plyfile.PlyData.read(str(d / "splats.ply"))


# ---------------------------------------------------------------- glTF

GL_DTYPES = {5121: "<u1", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
GL_COMPONENTS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def accessor_data(gltf, blob, index):
    a = gltf.accessors[index]
    view = gltf.bufferViews[a.bufferView]
    dtype, n = np.dtype(GL_DTYPES[a.componentType]), GL_COMPONENTS[a.type]
    need(view.byteStride in (None, dtype.itemsize * n), f"accessor {index} is interleaved")
    need((a.byteOffset or 0) + a.count * n * dtype.itemsize <= view.byteLength,
         f"accessor {index} runs past its bufferView")
    start = (view.byteOffset or 0) + (a.byteOffset or 0)
    return np.frombuffer(blob, dtype, a.count * n, start).reshape(a.count, n)


def check_glb(d, name):
    gltf = pygltflib.GLTF2().load_binary(str(d / name))
    blob = gltf.binary_blob()
    need(gltf.asset.version == "2.0", f"asset.version is {gltf.asset.version!r}")
    need(len(gltf.meshes) == 1 and len(gltf.meshes[0].primitives) == 1, "expected one mesh with one primitive")
    prim = gltf.meshes[0].primitives[0]
    need(prim.mode in (None, 4), f"primitive mode {prim.mode} is not TRIANGLES")
    attrs = {k: v for k, v in vars(prim.attributes).items() if isinstance(v, int)}
    wanted = ["POSITION", "NORMAL"] + (["COLOR_0"] if name.startswith("snowman") else ["TEXCOORD_0"])
    need(all(k in attrs for k in wanted), f"attributes {sorted(attrs)} lack one of {wanted}")
    acc, pos = gltf.accessors[attrs["POSITION"]], accessor_data(gltf, blob, attrs["POSITION"])
    need(acc.min is not None and acc.max is not None, "POSITION accessor has no min/max")
    need(np.allclose(pos.min(0), acc.min, atol=1e-6) and np.allclose(pos.max(0), acc.max, atol=1e-6),
         f"POSITION min/max {acc.min}/{acc.max} differ from the data's {pos.min(0)}/{pos.max(0)}")
    normals = accessor_data(gltf, blob, attrs["NORMAL"])
    need(len(normals) == len(pos) and np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-3),
         "NORMAL is not one unit vector per vertex")
    for key in wanted[2:]:
        need(gltf.accessors[attrs[key]].count == len(pos), f"{key} count differs from POSITION's")
    indices = accessor_data(gltf, blob, prim.indices).ravel()
    triangles = summary_mesh(d, name)["sourceTriangles"]
    need(len(indices) == 3 * triangles, f"{len(indices)} indices for {triangles} triangles")
    need(indices.max() < len(pos), "an index is out of range")
    detail = f"glTF 2.0, {len(pos)} vertices, {triangles} triangles, {'/'.join(wanted)}"
    if name.startswith("crate"):
        pngs = [im for im in gltf.images if im.bufferView is not None and im.mimeType == "image/png"]
        need(len(pngs) == 1, f"expected one embedded image/png, got {len(gltf.images)} images")
        view = gltf.bufferViews[pngs[0].bufferView]
        image = Image.open(io.BytesIO(blob[(view.byteOffset or 0):(view.byteOffset or 0) + view.byteLength]))
        need(image.size == (64, 64), f"embedded texture is {image.size}")
        detail += f", embedded PNG {image.size[0]}x{image.size[1]}"
    return detail


def check_gltf_buffer(d):
    gltf = json.loads((d / "snowman.gltf").read_text())
    need(gltf["asset"]["version"] == "2.0", "asset.version is not 2.0")
    buffers = gltf["buffers"]
    need(len(buffers) == 1 and buffers[0].get("uri") == "snowman.bin", f"buffers {buffers}")
    size = (d / "snowman.bin").stat().st_size
    need(size == buffers[0]["byteLength"], f"snowman.bin is {size} bytes, declared {buffers[0]['byteLength']}")
    return f"snowman.bin, {size} bytes as declared"


# ---------------------------------------------------------------- trimesh

def check_faces(d):
    counts = {n: len(load_mesh(d / n).faces) for n in SNOWMAN + CRATE}
    bad = {n: c for n, c in counts.items() if c != summary_mesh(d, n)["sourceTriangles"]}
    need(not bad, f"triangle counts differ from summary.json: {bad}")
    return ", ".join(f"{n} {c}" for n, c in counts.items())


def check_vertices(d):
    meshes = {n: load_mesh(d / n) for n in SNOWMAN + CRATE}
    details = []
    for group in (SNOWMAN, CRATE):
        used = {n: meshes[n].vertices[np.unique(meshes[n].faces)] for n in group}
        positions = {n: welded_count(v) for n, v in used.items()}
        need(len(set(positions.values())) == 1, f"distinct positions differ: {positions}")
        with_uv = {n: welded_count(np.hstack([meshes[n].vertices, meshes[n].visual.uv])[np.unique(meshes[n].faces)])
                   for n in group if not n.endswith(".stl")}
        need(len(set(with_uv.values())) == 1, f"distinct position+UV pairs differ: {with_uv}")
        details.append(f"{group[0].split('.')[0]}: {positions[group[0]]} positions, {with_uv[group[0]]} with UVs")
    for n in ("snowman.glb", "snowman.obj") + tuple(CRATE):
        need(len(meshes[n].vertices) == summary_mesh(d, n)["vertices"],
             f"{n} has {len(meshes[n].vertices)} vertices, summary.json says {summary_mesh(d, n)['vertices']}")
    for name, mesh in meshes.items():
        unused = len(mesh.vertices) - len(np.unique(mesh.faces))
        if unused:
            raise CheckFailed(f"{name} has {unused} unreferenced vertices")
    return "; ".join(details)


def check_bounds(d):
    for group in (SNOWMAN, CRATE):
        ref = load_mesh(d / group[0]).bounds
        for n in group[1:]:
            diff = np.abs(load_mesh(d / n).bounds - ref).max()
            need(diff < 1e-4, f"{n} bounds differ from {group[0]}'s by {diff:.2e}")
    return f"agree within 1e-4, snowman {np.round(load_mesh(d / SNOWMAN[0]).bounds, 4).tolist()}"


def check_area(d):
    ref = load_mesh(d / "snowman.glb")
    ref_centroid = (ref.triangles_center * ref.area_faces[:, None]).sum(0) / ref.area
    for n in SNOWMAN[1:]:
        m = load_mesh(d / n)
        error = abs(m.area - ref.area) / ref.area
        need(error < 1e-4, f"{n} area {m.area:.6f} vs {ref.area:.6f} (rel. error {error:.2e})")
        centroid = (m.triangles_center * m.area_faces[:, None]).sum(0) / m.area
        need(np.abs(centroid - ref_centroid).max() < 1e-4, f"{n} surface centroid {centroid} vs {ref_centroid}")
    return f"snowman area {ref.area:.6f} and surface centroid agree in {len(SNOWMAN)} formats"


def vertex_colors(mesh):
    """RGB in 0...1 wherever trimesh keeps them: with UVs present the visual is a texture one."""
    if mesh.visual.kind == "vertex":
        colors = mesh.visual.vertex_colors
    else:
        colors = getattr(mesh.visual, "vertex_attributes", {}).get("color")
        if colors is None:
            colors = mesh.vertex_attributes.get("color")
    need(colors is not None and len(colors) == len(mesh.vertices),
         f"no per-vertex colours (visual.kind {mesh.visual.kind!r})")
    colors = np.asarray(colors)
    return (colors / 255.0 if colors.dtype.kind in "ui" else colors.astype(float))[:, :3]


def colour_areas(d, name):
    """Surface area per palette colour; every triangle must be one palette colour."""
    mesh = load_mesh(d / name)
    colors = vertex_colors(mesh)[mesh.faces]  # (faces, 3 corners, rgb)
    palette = np.array(list(PALETTE.values()))
    distance = np.abs(colors[:, :, None, :] - palette).max(axis=3)
    need(distance.min(axis=2).max() < 0.01, f"{name}: colours off the palette")
    nearest = distance.argmin(axis=2)
    need((nearest == nearest[:, :1]).all(), f"{name}: triangles with corners of different colours")
    areas = np.bincount(nearest[:, 0], weights=mesh.area_faces, minlength=len(palette))
    nose = nearest[mesh.triangles[:, :, 2].max(axis=1).argmax(), 0]  # the carrot tip is frontmost
    need(list(PALETTE)[nose] == "orange", f"{name}: the nose tip is {list(PALETTE)[nose]}, not orange")
    return mesh.visual.kind, areas


def check_colors(d, name):
    kind, areas = colour_areas(d, name)
    need(areas.all(), f"palette colours missing: {dict(zip(PALETTE, areas))}")
    _, reference = colour_areas(d, "snowman.glb")
    need(np.abs(areas - reference).max() < 1e-4 * reference.sum(), f"area per colour {areas} vs glb's {reference}")
    shares = ", ".join(f"{k} {a / areas.sum():.1%}" for k, a in zip(PALETTE, areas))
    return f"visual.kind {kind!r}, one palette colour per triangle ({shares}), orange nose"


def check_crate_texture(d, name):
    mesh = load_mesh(d / name)
    need(mesh.visual.kind == "texture", f"visual.kind is {mesh.visual.kind!r}")
    material = mesh.visual.material
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    need(image is not None, f"{type(material).__name__} has no image")
    need(image.size == (64, 64), f"texture is {image.size}")
    uv = mesh.visual.uv
    need(uv is not None and len(uv) == len(mesh.vertices) and uv.min() >= 0 and uv.max() <= 1,
         "UVs missing or outside 0...1")
    reference = np.asarray(Image.open(d / "crate_basecolor.png").convert("RGBA"))
    need(np.array_equal(np.asarray(image.convert("RGBA")), reference), "texture pixels differ from crate_basecolor.png")
    return f"visual.kind 'texture', {image.size[0]}x{image.size[1]} image equal to crate_basecolor.png"


def check_obj_materials(d):
    for stem in ("snowman", "crate"):
        need(f"mtllib {stem}.mtl" in (d / f"{stem}.obj").read_text().splitlines(), f"{stem}.obj lacks mtllib")
        need((d / f"{stem}.mtl").is_file(), f"{stem}.mtl is missing")
    maps = [l.split(None, 1)[1] for l in (d / "crate.mtl").read_text().splitlines() if l.startswith("map_Kd")]
    need(maps == ["crate_basecolor.png"], f"crate.mtl map_Kd entries: {maps}")
    size = Image.open(d / maps[0]).size
    need(size == (64, 64), f"{maps[0]} is {size}")
    return f"mtllib in both .obj files, crate.mtl map_Kd {maps[0]} ({size[0]}x{size[1]})"


# ---------------------------------------------------------------- splats

def check_splat_ply(d):
    ply = splat_ply(d)
    need(not ply.text and ply.byte_order == "<", "not binary_little_endian")
    need([e.name for e in ply.elements] == ["vertex"], f"elements {[e.name for e in ply.elements]}")
    props = [(p.name, p.val_dtype) for p in ply["vertex"].properties]
    need([p for p, _ in props] == SPLAT_PROPERTIES, f"properties {[p for p, _ in props]}")
    need(all(np.dtype(t) == np.float32 for _, t in props), f"types {props}")
    v = ply["vertex"].data
    need(len(v) == summary(d)["splats"], f"{len(v)} splats, summary.json says {summary(d)['splats']}")
    table = np.stack([v[p] for p in SPLAT_PROPERTIES], 1)
    need(np.isfinite(table).all(), "non-finite values")
    need(not table[:, 3:6].any(), "normals are not zero")
    return f"binary_little_endian, {len(v)} splats, 17 float32 properties (SH degree 0), finite"


def check_splat_file(d):
    raw = (d / "splats.splat").read_bytes()
    need(len(raw) % 32 == 0, f"{len(raw)} bytes is not a multiple of 32")
    v = splat_ply(d)["vertex"].data
    rec = np.frombuffer(raw, np.uint8).reshape(-1, 32)
    need(len(rec) == len(v), f"{len(rec)} splats, the PLY has {len(v)}")
    pos, scale = rec[:, 0:12].copy().view("<f4"), rec[:, 12:24].copy().view("<f4")
    rgba, quat = rec[:, 24:28].astype(float), rec[:, 28:32].astype(float)
    col = lambda *names: np.stack([v[n].astype(np.float64) for n in names], 1)
    need(np.array_equal(pos, col("x", "y", "z").astype(np.float32)), "positions differ from the PLY's x y z")
    expected = np.exp(col("scale_0", "scale_1", "scale_2"))
    need(np.abs(scale / expected - 1).max() < 1e-6, "scales are not exp(scale_*)")
    alpha = np.round(255 / (1 + np.exp(-v["opacity"].astype(np.float64))))
    need(np.abs(rgba[:, 3] - alpha).max() <= 1, "alpha is not sigmoid(opacity)·255")
    rgb = np.clip(0.5 + SH_C0 * col("f_dc_0", "f_dc_1", "f_dc_2"), 0, 1) * 255
    need(np.abs(rgba[:, :3] - rgb).max() <= 1, "RGB is not 0.5 + C0·f_dc")
    q = col("rot_0", "rot_1", "rot_2", "rot_3")
    q = np.clip(q / np.linalg.norm(q, axis=1, keepdims=True) * 128 + 128, 0, 255)
    need(np.abs(quat - q).max() <= 1, "rotation is not q/|q|·128+128 (w x y z)")
    return f"{len(rec)} × 32 bytes; positions exact, scales, RGBA and rotations match the PLY"


# ---------------------------------------------------------------- preview and cameras

def check_preview(d):
    image = Image.open(d / "preview.png")
    need(image.format == "PNG" and image.mode == "RGB", f"{image.format} {image.mode}")
    text = getattr(image, "text", None) or image.info
    need(all(k in text for k in ("Software", "prompt", "seed", "kiln")), f"text keys {sorted(text)}")
    need(text["Software"].startswith("Kiln"), f"Software is {text['Software']!r}")
    record = json.loads(text["kiln"])
    need(set(record) >= {"software", "command", "prompt", "seed", "settings"}, f"kiln keys {sorted(record)}")
    need(record["prompt"] == text["prompt"] and str(record["seed"]) == text["seed"], "kiln prompt/seed differ")
    need(record["software"] == text["Software"], "kiln software differs from Software")
    need(record["seed"] == summary(d)["seed"], f"seed {record['seed']}, summary.json says {summary(d)['seed']}")
    settings = record["settings"]
    need(isinstance(settings, dict), f"settings is a {type(settings).__name__}, not a JSON object: {settings!r}")
    tile, views = settings.get("tileSize"), settings.get("views")
    need(tile and views == 8, f"settings {settings} lack tileSize or 8 views")
    need(image.width // tile == 4 and image.height // tile == 2,
         f"{image.width}x{image.height} is not a 4x2 sheet of {tile}px tiles")
    return f"{image.width}x{image.height} RGB, prompt {text['prompt']!r}, seed {text['seed']}, kiln JSON agrees"


def check_transforms(d):
    t = json.loads((d / "transforms.json").read_text())
    frames = t["frames"]
    need(len(frames) == 8, f"{len(frames)} frames")
    fov = 2 * math.atan(t["w"] / (2 * t["fl_x"]))
    need(abs(t["camera_angle_x"] - fov) < 1e-4, f"camera_angle_x {t['camera_angle_x']} is not 2·atan(w/2fl_x)")
    matrices = [np.array(f["transform_matrix"], dtype=float) for f in frames]
    for i, m in enumerate(matrices):
        need(m.shape == (4, 4) and np.allclose(m[3], [0, 0, 0, 1]), f"frame {i}: not a 4x4 rigid transform")
        r = m[:3, :3]
        need(np.allclose(r.T @ r, np.eye(3), atol=1e-5) and abs(np.linalg.det(r) - 1) < 1e-5,
             f"frame {i}: rotation not orthonormal (det {np.linalg.det(r):.6f})")
    positions = np.array([m[:3, 3] for m in matrices])
    centroid = positions.mean(0)
    radii = np.linalg.norm(positions - centroid, axis=1)
    need(np.ptp(radii) < 1e-4 * radii.mean(), f"distances to the centroid {radii}")
    for i, m in enumerate(matrices):  # NeRF/OpenGL cameras look down -Z: toward the orbit axis
        forward, inward = -m[[0, 2], 2], (centroid - positions[i])[[0, 2]]
        need(forward @ inward / (np.linalg.norm(forward) * np.linalg.norm(inward)) > 0.999,
             f"frame {i} does not face the orbit axis")
    return f"8 frames, orthonormal rotations, orbit radius {radii.mean():.4f}, cameras face the axis"


# ---------------------------------------------------------------- driver

def all_checks(d):
    checks = [(f"glb {n}", check_glb, n) for n in ("snowman.glb", "crate.glb")]
    checks += [("gltf buffer", check_gltf_buffer), ("trimesh faces", check_faces),
               ("trimesh vertices", check_vertices), ("trimesh bounds", check_bounds),
               ("trimesh area", check_area)]
    checks += [(f"colours {n}", check_colors, n) for n in ("snowman.glb", "snowman.ply", "snowman.obj")]
    checks += [(f"texture {n}", check_crate_texture, n) for n in CRATE]
    checks += [("obj materials", check_obj_materials), ("splats.ply", check_splat_ply),
               ("splats.splat", check_splat_file), ("preview.png", check_preview),
               ("transforms.json", check_transforms)]
    results = []
    for name, function, *args in checks:
        try:
            results.append({"name": name, "ok": True, "detail": function(d, *args)})
        except CheckFailed as failure:
            results.append({"name": name, "ok": False, "detail": str(failure)})
        except Exception as error:  # a reader rejecting the file is a failure too
            results.append({"name": name, "ok": False, "detail": f"{type(error).__name__}: {error}"})
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check the files `kiln demo --out DIR` writes.")
    parser.add_argument("dir", metavar="DIR", type=Path, help="folder written by kiln demo")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if not (args.dir / "summary.json").is_file():
        parser.error(f"{args.dir} has no summary.json; run `kiln demo --out {args.dir}` first")
    results = all_checks(args.dir.resolve())
    passed = sum(r["ok"] for r in results)
    failed = len(results) - passed
    if args.json:
        print(json.dumps({"checks": results, "passed": passed, "failed": failed}, indent=2))
    else:
        for r in results:
            print(f"{'PASS' if r['ok'] else 'FAIL'} {r['name']}: {r['detail']}")
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
