"""Imports mesh files into Blender, as a user would, and prints what Blender sees.

    blender -b --factory-startup --python tools/blender_check.py -- FILE [FILE ...] [--json OUT]

Each file goes into an empty scene through Blender's own importer for its extension (glTF, OBJ,
FBX, PLY, STL, Collada). For each file the table gives: whether it imported (and the importer's
error if not), the mesh objects and their faces, the world-space bounds in Blender's frame (Z up),
and the colour Blender will show, read the way Blender shows it, as a mean over the mesh's
corners (so that textures and vertex colours are measured at the same surface points):
  - the material's Base Color input: its own value, or what is wired into it (an image texture:
    the texel at each corner's UV; a colour attribute node: that attribute at each corner);
  - the mesh's first colour attribute (as Blender stores it: byte attributes are sRGB, float
    attributes linear; both are reported in sRGB 0–1 here);
so "shown" is the colour a viewport in Material Preview would paint, in sRGB.

With --json the same rows are written to OUT, for tests. Blender 3.4's importers need
`numpy.bool` (removed in numpy 1.24), which this script restores.
"""
import json
import os
import sys

import numpy

if not hasattr(numpy, "bool"):
    numpy.bool = bool  # Blender 3.4's glTF and FBX importers still use the removed alias

import bpy  # noqa: E402


def linear_to_srgb(c):
    c = max(0.0, min(1.0, c))
    return c * 12.92 if c <= 0.0031308 else 1.055 * c ** (1 / 2.4) - 0.055


def import_file(path):
    ext = os.path.splitext(path)[1].lower()
    if ext in (".glb", ".gltf"):
        bpy.ops.import_scene.gltf(filepath=path)
    elif ext == ".obj":
        bpy.ops.wm.obj_import(filepath=path)
    elif ext == ".fbx":
        bpy.ops.import_scene.fbx(filepath=path)
    elif ext == ".ply":
        bpy.ops.import_mesh.ply(filepath=path)
    elif ext == ".stl":
        bpy.ops.import_mesh.stl(filepath=path)
    elif ext == ".dae":
        bpy.ops.wm.collada_import(filepath=path)
    else:
        raise RuntimeError("no Blender importer for " + ext)


def attribute_loop_mean_srgb(mesh, name=None):
    """The colour attribute's mean over the mesh's corners (loops), in sRGB."""
    attrs = mesh.color_attributes
    if len(attrs) == 0:
        return None
    attr = (attrs.get(name) if name else None) or attrs.active_color or attrs[0]
    values = numpy.zeros(len(attr.data) * 4, dtype=numpy.float32)
    attr.data.foreach_get("color_srgb", values)
    values = values.reshape(-1, 4)[:, :3]
    if attr.domain == "CORNER":
        return [float(v) for v in values.mean(axis=0)]
    index = numpy.zeros(len(mesh.loops), dtype=numpy.int32)
    mesh.loops.foreach_get("vertex_index", index)
    return [float(v) for v in values[index].mean(axis=0)]


def image_loop_mean_srgb(image, mesh):
    """The image's colour at each corner's UV (nearest texel), averaged over the corners."""
    if len(mesh.uv_layers) == 0 or image.size[0] == 0:
        return None
    w, h = image.size
    pixels = numpy.zeros(w * h * 4, dtype=numpy.float32)
    image.pixels.foreach_get(pixels)
    pixels = pixels.reshape(h, w, 4)  # row 0 at the bottom, as UV v = 0
    uv = numpy.zeros(len(mesh.loops) * 2, dtype=numpy.float32)
    mesh.uv_layers.active.data.foreach_get("uv", uv)
    uv = uv.reshape(-1, 2)
    x = numpy.clip((uv[:, 0] % 1.0) * w, 0, w - 1).astype(int)
    y = numpy.clip((uv[:, 1] % 1.0) * h, 0, h - 1).astype(int)
    return [float(v) for v in pixels[y, x, :3].mean(axis=0)]


def base_color(material, mesh):
    """What the material's Base Color shows, in sRGB, and how it gets there."""
    if material is None:
        return None, "no material"
    if not material.use_nodes or material.node_tree is None:
        c = material.diffuse_color
        return [linear_to_srgb(c[0]), linear_to_srgb(c[1]), linear_to_srgb(c[2])], "diffuse colour"
    bsdf = next((n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        return None, "no Principled BSDF"
    socket = bsdf.inputs["Base Color"]
    if not socket.is_linked:
        c = socket.default_value
        return [linear_to_srgb(c[0]), linear_to_srgb(c[1]), linear_to_srgb(c[2])], "base colour value"
    node = socket.links[0].from_node
    # Follow simple pass-through chains (mix nodes multiplying a factor, as glTF's importer makes).
    seen = 0
    while node.type not in ("TEX_IMAGE", "VERTEX_COLOR", "ATTRIBUTE") and seen < 4:
        linked = [i for i in node.inputs if i.is_linked]
        if not linked:
            break
        node = linked[0].links[0].from_node
        seen += 1
    if node.type == "TEX_IMAGE" and node.image is not None:
        return image_loop_mean_srgb(node.image, mesh), "image texture"
    if node.type in ("VERTEX_COLOR", "ATTRIBUTE"):
        name = getattr(node, "layer_name", "") or getattr(node, "attribute_name", "")
        return attribute_loop_mean_srgb(mesh, name or None), "colour attribute"
    return None, "linked to " + node.type


def check(path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    row = {"file": os.path.basename(path), "format": os.path.splitext(path)[1][1:].lower()}
    try:
        import_file(path)
    except Exception as error:  # the importer's own message is the finding
        row["imported"] = False
        row["error"] = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        return row
    objects = [o for o in bpy.context.scene.objects if o.type == "MESH"]
    row["imported"] = len(objects) > 0
    row["objects"] = len(objects)
    faces = 0
    lo = [float("inf")] * 3
    hi = [float("-inf")] * 3
    colours = []
    for o in objects:
        mesh = o.data
        faces += len(mesh.polygons)
        for v in mesh.vertices:
            w = o.matrix_world @ v.co
            for k in range(3):
                lo[k] = min(lo[k], w[k])
                hi[k] = max(hi[k], w[k])
        material = o.active_material
        shown, how = base_color(material, mesh)
        colours.append({
            "object": o.name,
            "material": material.name if material else None,
            "shown": shown,
            "shown_by": how,
            "attribute": attribute_loop_mean_srgb(mesh),
            "uv_layers": len(mesh.uv_layers),
        })
    row["faces"] = faces
    row["bounds"] = [lo, hi] if objects else None
    row["colours"] = colours
    return row


def fmt(c):
    return "–" if c is None else "(%.2f %.2f %.2f)" % tuple(c)


def main():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    out = None
    if "--json" in argv:
        i = argv.index("--json")
        out = argv[i + 1]
        del argv[i:i + 2]
    rows = [check(os.path.abspath(p)) for p in argv]
    print()
    print("| file | imported | faces | bounds min (x y z, Z up) | bounds max | shown colour (sRGB) | by | colour attribute (sRGB) |")
    print("| --- | --- | ---: | --- | --- | --- | --- | --- |")
    for r in rows:
        if not r.get("imported"):
            print("| %s | no: %s | | | | | | |" % (r["file"], r.get("error", "no mesh objects")))
            continue
        lo, hi = r["bounds"]
        first = r["colours"][0]
        print("| %s | yes (%d objects) | %d | %.3f %.3f %.3f | %.3f %.3f %.3f | %s | %s | %s |" % (
            r["file"], r["objects"], r["faces"], *lo, *hi, fmt(first["shown"]), first["shown_by"], fmt(first["attribute"])))
    if out:
        with open(out, "w") as f:
            json.dump(rows, f, indent=1)


main()
