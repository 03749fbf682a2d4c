"""Writes the real CLIP tokenizer (49,408 tokens) as pipeline folders, and transformers 5's ids for it.

Run with transformers 5 installed (tools/requirements.txt; no network beyond PyPI):
    pip download open_clip_torch --no-deps -d /tmp/open_clip
    python3 tools/make_clip_tokenizer_fixtures.py /tmp/open_clip/open_clip_torch-*.whl

Why: the Stable Diffusion 1.x/2.x tokenizer is OpenAI's CLIP BPE. Its merges ship in the
open_clip_torch wheel as `open_clip/bpe_simple_vocab_16e6.txt.gz` (the wheel, or that file unzipped,
is the argument). The vocabulary is derived from them exactly as OpenAI's SimpleTokenizer does:
merges = lines[1 : 49152 - 256 - 2 + 1]; vocab = the 256 byte symbols of bytes_to_unicode() in its
order, the same with `</w>`, one token per merge, then `<|startoftext|>`, `<|endoftext|>`. That is
openai/clip-vit-large-patch14's vocab.json and merges.txt, token for token; the script checks the
count and a few well-known ids.

Writes under Tests/KilnPriorTests/Fixtures/clip-tokenizer/:
  sd15/               vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json as
                      Stable Diffusion 1.5's tokenizer/ folder has them (pads with <|endoftext|>).
  transformers5/      every file transformers 5 writes for
                      CLIPTokenizer.from_pretrained(sd15).save_pretrained(...): tokenizer.json and
                      tokenizer_config.json (no vocab.json or merges.txt: the tokenizer.json-only case).
  transformers5-sd2/  the same for Stable Diffusion 2.x's settings (pad_token "!"), saved by
                      transformers 5. Its tokenizer.json differs from transformers5/'s only in
                      "added_tokens" (the script checks this), so to keep the fixtures small only
                      that list is committed, as tokenizer.added_tokens.json; the tests assemble the folder.
  goldens.json        for every prompt, the input_ids transformers 5 gives for each folder with
                      diffusers' call: padding="max_length", max_length=77, truncation=True.
"""
import gzip
import io
import json
import pathlib
import shutil
import sys
import tempfile
import zipfile

import transformers
from transformers import CLIPTokenizer

if not transformers.__version__.startswith("5."):
    sys.exit(f"transformers {transformers.__version__}: these goldens are transformers 5's (pip install -r tools/requirements.txt)")

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnPriorTests/Fixtures/clip-tokenizer"
MERGES_MEMBER = "open_clip/bpe_simple_vocab_16e6.txt.gz"


def bytes_to_unicode():
    """OpenAI CLIP's map from the 256 bytes to printable code points (GPT-2's)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def read_merges(source):
    source = pathlib.Path(source)
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            data = wheel.read(MERGES_MEMBER)
    else:
        data = source.read_bytes()
    lines = gzip.open(io.BytesIO(data)).read().decode("utf-8").split("\n")
    return [tuple(line.split()) for line in lines[1:49152 - 256 - 2 + 1]]


def write_sd15(folder, merges):
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == len(set(vocab)) == 49408, len(vocab)
    encoder = {token: i for i, token in enumerate(vocab)}
    assert encoder["a</w>"] == 320 and encoder["photo</w>"] == 1125 and encoder["red</w>"] == 736, "not CLIP's vocabulary"
    folder.mkdir(parents=True)
    # The hub's vocab.json is one line in id order, UTF-8 unescaped; merges.txt has the #version header.
    (folder / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    added = {"content": "", "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}
    config = {"add_prefix_space": False, "bos_token": dict(added, __type="AddedToken", content="<|startoftext|>"),
              "do_lower_case": True, "eos_token": dict(added, __type="AddedToken", content="<|endoftext|>"),
              "errors": "replace", "model_max_length": 77, "name_or_path": "openai/clip-vit-large-patch14",
              "pad_token": "<|endoftext|>", "special_tokens_map_file": "./special_tokens_map.json",
              "tokenizer_class": "CLIPTokenizer", "unk_token": dict(added, __type="AddedToken", content="<|endoftext|>")}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    special = {"bos_token": dict(added, content="<|startoftext|>"), "eos_token": dict(added, content="<|endoftext|>"),
               "pad_token": "<|endoftext|>", "unk_token": dict(added, content="<|endoftext|>")}
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")


LONG = ("a highly detailed photorealistic 3d render of an ancient weathered bronze statue of a dragon "
        "holding a glowing crystal orb, standing on a cracked marble pedestal in a misty forest clearing, "
        "volumetric god rays, moss and ivy growing over the stone, intricate scales, gold inlays, "
        "cinematic lighting, 8k, octane render, trending on artstation, unreal engine 5, "
        "physically based materials, subsurface scattering, depth of field, bokeh, hdr")

PROMPTS = [
    "a photo of a red snowman, front view",
    "",
    "a red chair",
    "A Photo of a CAT, sitting on a Wooden Table.",
    "a 3d model of a wooden toy robot, studio lighting, white background",
    "a blue ceramic teapot with golden flowers, 4k, pbr textures",
    "an ancient stone castle on a hill at sunset, low poly, game asset",
    "voxel art of a cute pink pig",
    "a DSLR photo of a corgi wearing a top hat",
    "a zoomed out DSLR photo of a hamburger",
    "isometric view of a tiny medieval house, turntable, back view",
    "3D-printed low-poly 🐉 dragon, 8k, octane render, trending on artstation",
    "1024x768 render, 3.5 stars, 1,000,000 polys, 2023-10-05",
    "wow!!! ... ??? (hi) [x] {y} #tag @user $5.99 100% a+b=c",
    "snake_case-and-kebab-case/with/slashes\\back|pipe",
    "it's a dog. don't touch! they're here, we've won, I'm in, you'll see, he'd go",
    "IT'S DON'T THEY'RE I'M YOU'LL HE'D WE'VE",
    "café naïve façade crème brûlée jalapeño Ærøskøbing",
    "cafe\u0301 nai\u0308ve (decomposed accents)",
    "❤️ heart ⭐ star ✨ sparkles 🌈 rainbow 🦊🔥🔥",
    "a 👩\u200d🚀 astronaut with a 👍🏽 thumb",
    "日本の城 and 東京タワー, 京都の寺",
    "кошка на столе, γάτα, مرحبا, שלום, नमस्ते, 안녕하세요",
    "ΟΔΟΣ ΣΟΦΙΑΣ σίσυφος",
    "İstanbul ſtraße STRASSE ẞ",
    "ＡＢＣ１２３ fullwidth ½ ² ① 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "curly quotes ‘single’ “double” it’s — dash – en",
    "a\tblue\n\nvase\r\non  a   shelf \t ",
    "   ",
    " leading and trailing spaces ",
    "tabs\tand\u000bvertical\u000ctabs\u00a0nbsp\u3000ideographic",
    "zero\u200bwidth soft\u00adhyphen bom\ufeff ctrl\x07bell",
    "<|startoftext|>a<|endoftext|>b",
    "<|STARTOFTEXT|> and <|ENDOFTEXT|> upper case",
    "an exclamation! pad tokens!! for sd2!!!",
    "a</w>b </w> <w>",
    "x^2 + y^2 = r^2, ∑ ∫ √ ≤ ≥ ∞",
    "supercalifragilisticexpialidocious aaaaaaaaaaaa abababab bananas mississippi",
    LONG,
    " ".join(["a"] * 75),
    " ".join(["a"] * 76),
    " ".join(["red"] * 120),
]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    merges = read_merges(sys.argv[1])
    if OUT.exists():
        shutil.rmtree(OUT)
    write_sd15(OUT / "sd15", merges)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        CLIPTokenizer.from_pretrained(OUT / "sd15").save_pretrained(OUT / "transformers5")
        CLIPTokenizer.from_pretrained(OUT / "sd15", pad_token="!").save_pretrained(tmp / "sd2")
        # Keep every file transformers 5 wrote, except the shared tokenizer.json's second copy.
        assert sorted(p.name for p in (tmp / "sd2").iterdir()) == sorted(p.name for p in (OUT / "transformers5").iterdir())
        sd15_json = json.loads((OUT / "transformers5/tokenizer.json").read_text(encoding="utf-8"))
        sd2_json = json.loads((tmp / "sd2/tokenizer.json").read_text(encoding="utf-8"))
        assert {k: v for k, v in sd2_json.items() if k != "added_tokens"} == \
            {k: v for k, v in sd15_json.items() if k != "added_tokens"}, "the SD 2 tokenizer.json differs beyond added_tokens"
        (OUT / "transformers5-sd2").mkdir()
        for p in (tmp / "sd2").iterdir():
            if p.name != "tokenizer.json":
                shutil.copy(p, OUT / "transformers5-sd2" / p.name)
        (OUT / "transformers5-sd2/tokenizer.added_tokens.json").write_text(json.dumps(sd2_json["added_tokens"], indent=2) + "\n")
        shutil.copy(OUT / "transformers5/tokenizer.json", tmp / "sd2/tokenizer.json")
        # Goldens from the saved folders as transformers 5 reads them back (the SD 2 one reassembled).
        assembled = tmp / "sd2-assembled"
        shutil.copytree(OUT / "transformers5-sd2", assembled)
        (assembled / "tokenizer.added_tokens.json").unlink()
        sd2_json_rebuilt = dict(sd15_json, added_tokens=sd2_json["added_tokens"])
        (assembled / "tokenizer.json").write_text(json.dumps(sd2_json_rebuilt, ensure_ascii=False), encoding="utf-8")
        folders = {"sd15": OUT / "sd15", "transformers5": OUT / "transformers5", "transformers5-sd2": assembled}
        tokenizers = {name: CLIPTokenizer.from_pretrained(path) for name, path in folders.items()}
        cases = []
        for text in PROMPTS:
            case = {"text": text}
            for name, tok in tokenizers.items():
                assert tok.backend == "tokenizers", (name, tok.backend)
                case[name] = tok(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
            cases.append(case)
    assert all(c["sd15"] == c["transformers5"] for c in cases), "saving changed the ids"
    goldens = {"generator": f"transformers {transformers.__version__} CLIPTokenizer, "
                            "padding=\"max_length\", max_length=77, truncation=True",
               "vocab_size": 49408, "merges": len(merges), "cases": cases}
    (OUT / "goldens.json").write_text(json.dumps(goldens, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    sizes = {str(p.relative_to(OUT)): p.stat().st_size for p in sorted(OUT.rglob("*")) if p.is_file()}
    for name, size in sizes.items():
        print(f"{size:>10}  {name}")
    print(f"{sum(sizes.values()):>10}  total, {len(cases)} prompts")


if __name__ == "__main__":
    main()
