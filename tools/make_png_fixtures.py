"""Writes PNG test fixtures in the layouts Kiln must read, and their expected pixels.

Run: python3 tools/make_png_fixtures.py  (after pip install -r tools/requirements.txt)
Writes Tests/KilnAssetTests/Fixtures/png/*.png and expected.json. Pillow and pypng write the files
(each library in the layouts it supports); the expected RGBA samples come from pypng's reader, an
implementation independent of libpng, as 16-bit values (8-bit sources scaled by 257), which is
exactly what Kiln's decoder promises. Text chunks are written by Pillow and read back by Pillow.
"""
import json
import pathlib

import numpy as np
import png  # pypng
from PIL import Image, PngImagePlugin

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnAssetTests/Fixtures/png"
W, H = 13, 7  # not multiples of 8: exercises partial bytes in low-bit rows and Adam7 passes
rng = np.random.default_rng(20261125)


def write_pypng(name, rows, **kwargs):
    with open(OUT / name, "wb") as f:
        png.Writer(W, H, **kwargs).write(f, rows)


def expected_rgba16(path):
    """RGBA samples, 16-bit scale, read by pypng (palette, tRNS, gray and low bit depths expanded)."""
    width, height, rows, info = png.Reader(filename=str(path)).asRGBA()
    bitdepth = info["bitdepth"]
    a = np.vstack([np.asarray(r, dtype=np.uint32) for r in rows]).reshape(height, width, 4)
    # Expand to 16 bits the way libpng's png_set_expand_16 does: 8-bit v → v·257. Low bit depths
    # were already scaled to 8 bits by asRGBA's expansion.
    if bitdepth < 16:
        maxval = (1 << bitdepth) - 1
        a = (a * 255 + maxval // 2) // maxval * 257 if bitdepth != 8 else a * 257
    return a.astype(np.uint32).ravel().tolist(), width, height


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cases = {}

    gray8 = rng.integers(0, 256, (H, W), dtype=np.uint8)
    write_pypng("gray8_interlaced.png", gray8.tolist(), greyscale=True, bitdepth=8, interlace=True)
    gray1 = rng.integers(0, 2, (H, W), dtype=np.uint8)
    write_pypng("gray1.png", gray1.tolist(), greyscale=True, bitdepth=1)
    gray4 = rng.integers(0, 16, (H, W), dtype=np.uint8)
    write_pypng("gray4_interlaced.png", gray4.tolist(), greyscale=True, bitdepth=4, interlace=True)
    rgba16 = rng.integers(0, 65536, (H, W * 4), dtype=np.uint16)
    write_pypng("rgba16.png", rgba16.tolist(), greyscale=False, alpha=True, bitdepth=16)
    rgb16 = rng.integers(0, 65536, (H, W * 3), dtype=np.uint16)
    write_pypng("rgb16_interlaced.png", rgb16.tolist(), greyscale=False, alpha=False, bitdepth=16, interlace=True)
    gray_alpha = rng.integers(0, 256, (H, W * 2), dtype=np.uint8)
    write_pypng("gray_alpha8.png", gray_alpha.tolist(), greyscale=True, alpha=True, bitdepth=8)
    rgb_trns = rng.integers(0, 4, (H, W * 3), dtype=np.uint8) * 85
    write_pypng("rgb8_trns.png", rgb_trns.tolist(), greyscale=False, bitdepth=8, transparent=(85, 170, 0))

    palette = [(int(r), int(g), int(b), int(a)) for r, g, b, a in rng.integers(0, 256, (16, 4))]
    indices = rng.integers(0, 16, (H, W), dtype=np.uint8)
    write_pypng("palette4_alpha.png", indices.tolist(), palette=palette, bitdepth=4)

    # Pillow: an 8-bit RGB image with tEXt, zTXt and iTXt chunks (the way other tools store prompts).
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red snowman, Steps: 20, Seed: 42")
    info.add_text("comment", "compressed " * 20, zip=True)
    info.add_itxt("prompt", "ein roter Schneemann ☃", lang="de", tkey="Eingabe")
    Image.fromarray(rgb, "RGB").save(OUT / "rgb8_text.png", pnginfo=info)

    for path in sorted(OUT.glob("*.png")):
        samples, width, height = expected_rgba16(path)
        text = {k: v for k, v in Image.open(path).text.items()}
        cases[path.name] = {"width": width, "height": height, "rgba16": samples, "text": text}

    (OUT / "expected.json").write_text(json.dumps(cases, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"wrote {len(cases)} fixtures to {OUT}")


if __name__ == "__main__":
    main()
