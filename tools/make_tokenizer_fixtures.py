"""Builds a small CLIP-format tokenizer and writes goldens from Hugging Face's slow CLIPTokenizer.

Run in its own environment (transformers 4.x; see tools/requirements-tokenizer.txt):
    .venv-tokenizer/bin/python tools/make_tokenizer_fixtures.py

The real CLIP vocabulary cannot be shipped or downloaded, so this script learns one in exactly the
layout of `openai/clip-vit-large-patch14` (the `tokenizer/` folder of Stable Diffusion 1.x):
ids 0..255 are the 256 byte symbols of `bytes_to_unicode()` in its order, 256..511 the same symbols
with `</w>`, then one token per merge in merge order, then `<|startoftext|>` and `<|endoftext|>`.
The merges are learnt by plain byte-level BPE (most frequent pair first, ties broken by the pair's
text) on a corpus written below: prompts about 3D objects, colours, materials, numbers,
punctuation and some non-English words.

The goldens come from transformers 4.x's slow `CLIPTokenizer` on its no-ftfy path, the one a plain
`pip install transformers` gives: ftfy is blocked here even when installed, and the script checks
that the tokenizer took that path. transformers 5 dropped the slow tokenizer, so 4.x is required.
`CLIPTokenizerFast` (the Rust `tokenizers` port, also what transformers 5 calls `CLIPTokenizer`) is
run on the same inputs; every case records whether it agrees (`fast_agrees`), and its ids where
it does not.

Writes Tests/KilnPriorTests/Fixtures/tokenizer/: vocab.json, merges.txt, tokenizer_config.json,
special_tokens_map.json (Stable Diffusion 1.5's layout) and goldens.json. goldens.json holds one
entry per configuration variant (its tokenizer_config.json and special_tokens_map.json contents),
each with `cases` (text; `ids` = tokenizer(text).input_ids; `input_ids` and `attention_mask` from
diffusers' call, padding="max_length", truncation=True; `decoded` = decode(ids); `decoded_skip` =
decode(input_ids, skip_special_tokens=True); `tokens` = tokenize(text) for the first variant) and
`decodes` (raw id sequences: ill-formed UTF-8, `</w>` and special tokens in odd places).
"""
import collections
import json
import pathlib
import random
import shutil
import sys
import tempfile

sys.modules["ftfy"] = None  # makes `import ftfy` fail inside transformers: the no-ftfy path

import transformers  # noqa: E402
from transformers import CLIPTokenizer, CLIPTokenizerFast  # noqa: E402

if not transformers.__version__.startswith("4."):
    sys.exit(f"transformers {transformers.__version__}: the slow CLIPTokenizer needs transformers 4.x "
             "(pip install -r tools/requirements.txt)")

from transformers.models.clip.tokenization_clip import BasicTokenizer, bytes_to_unicode  # noqa: E402

import regex  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnPriorTests/Fixtures/tokenizer"
MERGES = 2000
PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE)

# MARK: - Corpus

COLOURS = """red orange yellow green blue purple violet pink brown black white grey gray silver gold
golden beige cyan magenta teal turquoise crimson scarlet maroon navy indigo lavender lilac olive lime
mint emerald jade amber bronze copper ivory cream charcoal slate azure cobalt ochre rust sepia""".split()
MATERIALS = """wood wooden oak pine walnut bamboo metal metallic steel iron aluminium aluminum brass chrome
glass crystal ceramic porcelain clay terracotta stone marble granite concrete brick plastic rubber
leather fabric cotton wool silk velvet denim paper cardboard ice wax resin carbon fibre fiber paint
painted rusty polished brushed matte glossy translucent transparent frosted woven knitted""".split()
OBJECTS = """chair table lamp vase bowl cup mug teapot kettle bottle jar box crate barrel chest shelf
bookshelf sofa couch bench stool desk bed pillow cushion rug carpet clock watch mirror frame window
door house cottage castle tower bridge lighthouse windmill temple pagoda church tent car truck bus
bicycle motorcycle train tram boat ship submarine airplane helicopter rocket spaceship robot drone
tank tractor sword shield axe hammer wrench screwdriver knife fork spoon plate pan pot guitar violin
piano drum trumpet flute harp banana apple orange pear cherry strawberry pineapple watermelon lemon
mushroom flower rose tulip sunflower cactus tree palm bonsai leaf rock crystal skull helmet crown
ring necklace shoe boot hat cap backpack suitcase umbrella camera phone laptop keyboard mouse
headphones television radio toy teddy bear doll puppet cat dog fox wolf owl eagle parrot penguin
dolphin whale shark octopus turtle frog lizard dragon dinosaur horse unicorn elephant giraffe lion
tiger panda rabbit squirrel hedgehog bee butterfly snail snowman statue sculpture fountain tractor
cake cupcake donut pizza burger sandwich croissant bread cookie candle lantern globe telescope
microscope anchor compass map scroll book feather""".split()
ADJECTIVES = """small large tiny huge giant miniature old ancient antique vintage modern futuristic
retro rustic cute ugly beautiful elegant ornate simple detailed intricate realistic stylized cartoon
cartoonish cartoony low poly high voxel smooth rough shiny dull soft hard broken cracked weathered
worn new clean dirty wet dry fluffy furry spiky round square tall short thin thick flat hollow
floating flying sleeping running sitting standing glowing burning frozen melting colorful colourful
pastel neon dark bright""".split()
PHRASES = """a photo of an image of a 3d model of a render of a sculpture of a toy figure of
on a white background isolated studio lighting soft shadows high quality highly detailed
trending on artstation unreal engine octane render blender cycles physically based rendering pbr
texture textures uv map normal map game asset low-poly hard-surface subdivision surface
turntable front view side view back view top view from above from below close-up wide angle
4k 8k hdr ray traced global illumination ambient occlusion depth of field bokeh""".split()
VERBS = """holding wearing riding carrying eating reading playing sleeping standing sitting made of
covered in surrounded by next to inside on top of in front of behind under above with and or
the a an of in on at to for from by is are was it its it's don't can't won't they're we've i'm
you'll he'd she's that's there's let's isn't aren't doesn't""".split()
# Non-English words and symbols, so that multi-byte UTF-8 sequences get merges of their own.
WORLD = """café naïve façade crème brûlée jalapeño piñata über straße größe smörgåsbord
ñandú déjà vu fiancée résumé coöperate señor niño año mañana garçon
日本 日本の 東京 京都 城 寺 猫 犬 木 石 金 花 山 川 水 火 赤 青 白 黒 ねこ いぬ すし カメラ ロボット
중국 한국 서울 고양이 москва кошка стол стул красный синий αθήνα γάτα κόκκινο σπίτι
مرحبا قطة שלום חתול नमस्ते बिल्ली สวัสดี แมว
🦊 🐉 🔥 🌸 🚀 🍄 🏠 🎸 🤖 🐱 ❤️ ⭐ ✨ 🌈 🍕""".split()
NUMBERS = """0 1 2 3 4 5 6 7 8 9 10 12 16 24 32 64 100 128 256 512 768 1024 1080 2048 4096
1024x768 512x512 1920x1080 3.5 2.0 0.5 1.5 10% 50% 100% 1st 2nd 3rd 4th 5th 2d 3d 4d
½ ¼ ² ³ ① ② ٣ ٤""".split()
PUNCT = """. , ! ? ; : - -- ... !!! ?? ( ) [ ] { } " ' ` ~ @ # $ % ^ & * _ + = / \\ | < > ...,
- , ( ) (( )) [[ ]] :: -> => ** __ ## @@""".split()
REPEATS = """aaaa aaaaaaaa abab ababab banana bananas mississippi lll llll zzz zzzz
hmmmm oooo woooow yessss nooo""".split()


def corpus():
    """Deterministic prompts: templates over the word lists above, plus each list as a line."""
    rnd = random.Random(20261125)
    lines = [" ".join(words) for words in (COLOURS, MATERIALS, OBJECTS, ADJECTIVES, PHRASES, VERBS,
                                          WORLD, NUMBERS, PUNCT, REPEATS)]
    for _ in range(6000):
        words = []
        if rnd.random() < 0.5:
            words += rnd.choice(["a", "an", "the", "a photo of a", "a 3d model of a", "a render of a"]).split()
        for _ in range(rnd.randint(0, 2)):
            words.append(rnd.choice(ADJECTIVES))
        if rnd.random() < 0.6:
            words.append(rnd.choice(COLOURS))
        if rnd.random() < 0.6:
            words.append(rnd.choice(MATERIALS))
        words.append(rnd.choice(OBJECTS) + rnd.choice(["", "", "", "s", "es"]))
        if rnd.random() < 0.5:
            words += [rnd.choice(VERBS), rnd.choice(["a", "the", "two", "three"]), rnd.choice(OBJECTS)]
        if rnd.random() < 0.4:
            words.append(rnd.choice(PUNCT))
            words += rnd.choice(PHRASES + NUMBERS).split()
        if rnd.random() < 0.15:
            words.append(rnd.choice(WORLD))
        if rnd.random() < 0.1:
            words.append(rnd.choice(NUMBERS))
        lines.append(" ".join(words))
    return lines


# MARK: - BPE training (the CLIP layout)

def pretokenize(text, nlp, byte_encoder):
    """The slow tokenizer's own pipeline up to BPE: BasicTokenizer, the CLIP pattern, byte symbols."""
    text = " ".join(nlp.tokenize(text))
    return ["".join(byte_encoder[b] for b in word.encode("utf-8")) for word in PATTERN.findall(text)]


def learn_merges(lines, count):
    byte_encoder = bytes_to_unicode()
    nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
    freqs = collections.Counter()
    for line in lines:
        for word in pretokenize(line, nlp, byte_encoder):
            freqs[tuple(word[:-1]) + (word[-1] + "</w>",)] += 1
    words = dict(freqs)
    merges = []
    while len(merges) < count:
        pairs = collections.Counter()
        for word, n in words.items():
            for pair in zip(word, word[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))  # most frequent, then by text: deterministic
        merges.append(best)
        merged = {}
        for word, n in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + n
        words = merged
    return merges


def write_tokenizer(folder, merges):
    symbols = list(bytes_to_unicode().values())
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(set(vocab)) == len(vocab), "a merge produced a token twice"
    encoder = {token: i for i, token in enumerate(vocab)}
    # openai/clip-vit-large-patch14 writes vocab.json on one line, in id order, UTF-8 unescaped.
    (folder / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return encoder


def added_token(content):
    return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True,
            "rstrip": False, "single_word": False}


def sd15_config():
    """Stable Diffusion 1.5's tokenizer_config.json, key for key."""
    return {"add_prefix_space": False, "bos_token": added_token("<|startoftext|>"), "do_lower_case": True,
            "eos_token": added_token("<|endoftext|>"), "errors": "replace", "model_max_length": 77,
            "name_or_path": "kiln/tokenizer-fixture", "pad_token": "<|endoftext|>",
            "special_tokens_map_file": "./special_tokens_map.json", "tokenizer_class": "CLIPTokenizer",
            "unk_token": added_token("<|endoftext|>")}


def sd15_special_tokens_map():
    plain = {k: v for k, v in added_token("").items() if k != "__type"}
    return {"bos_token": dict(plain, content="<|startoftext|>"), "eos_token": dict(plain, content="<|endoftext|>"),
            "pad_token": "<|endoftext|>", "unk_token": dict(plain, content="<|endoftext|>")}


# MARK: - Goldens

LONG = ("a highly detailed photorealistic 3d render of an ancient weathered bronze statue of a dragon "
        "holding a glowing crystal orb, standing on a cracked marble pedestal in a misty forest clearing, "
        "volumetric god rays, moss and ivy growing over the stone, intricate scales, gold inlays, "
        "cinematic lighting, 8k, octane render, trending on artstation, unreal engine 5, "
        "physically based materials, subsurface scattering, depth of field, bokeh, hdr")

PROMPTS = [
    "a red chair",
    "A Photo of a CAT, sitting on a Wooden Table.",
    "",
    "   ",
    "1024x768 render, 3.5 stars",
    "it's a dog. don't touch! they're here, we've won, I'm in, you'll see, he'd go",
    "IT'S DON'T THEY'RE I'M YOU'LL HE'D WE'VE",
    "rock'n'roll 'quoted' ''s 's' x's'",
    "a\tblue\n\nvase\r\non  a   shelf \t ",
    "café naïve façade crème brûlée jalapeño",
    "cafe\u0301 nai\u0308ve (decomposed accents)",
    "日本の城 and 東京タワー, 京都の寺",
    "a 🦊 fox 🔥🔥 and a 👩\u200d🚀 astronaut",
    "❤️ heart ⭐ star ✨ sparkles 🌈",
    "q\u0301 x\u0345y \u0301alone",
    "ΟΔΟΣ ΣΟΦΙΑΣ σίσυφος ΣΑΣ Σ.Σ",
    "İstanbul Iİıi",
    "ſtraße STRASSE ẞ Straße",
    "<|startoftext|>a<|endoftext|>b",
    "<|ENDOFTEXT|> .<|ENDOFTEXT|> x<|Endoftext|>y",
    "<|ſtartoftext|> it'ſ <|endoftext|><|endoftext|>",
    "12345 ½ ² ⅻ Ⅻ ① ٣٤ 𝟙𝟚𝟛",
    "wow!!! ... ??? (hi) [x] {y} #tag @user $5.99 100% a+b=c",
    "snake_case-and-kebab-case/with/slashes\\back|pipe",
    "a\x00b\x07c\u200bd\u00ade\ufeff f\x0cg\x1ch\x85i\u2028j\u2029k\ufffdl\u180em",
    "a\u00a0b\u3000c\u2009d\u202fe",
    LONG,
    " ".join(["a"] * 75),
    " ".join(["a"] * 76),
    " ".join(["red"] * 120),
    "supercalifragilisticexpialidocious aaaaaaaaaaaa abababab bananas mississippi",
    "MiXeD CaSe GLB Mesh With UV Maps",
    "html &amp; entities <b>bold</b> &lt;tag&gt;",
    "curly quotes ‘single’ “double” it’s",
    "https://example.com/a?b=c&d=e#frag",
    "x^2 + y^2 = r^2, ∑ ∫ √ ≤ ≥ ∞",
    "مرحبا שלום नमस्ते สวัสดี 안녕하세요",
    "\u1100\u1161\u11a8 (conjoining jamo)",
    "ＡＢＣ１２３ fullwidth",
    "a</w>b </w> <w>",
    "!!!",
    "1,000,000 and 3.14159 and 2023-10-05",
    "3D-printed low-poly 🐉 dragon, 8k, octane render, trending on artstation",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math letters",
    "K Kelvin Å angstrom ﬁ ﬂ ﬅ ǅ ǈ",
    "a",
    "Σ",
    " leading and trailing spaces ",
    "\u0300\u0301 leading marks",
    "tabs\tand\u000bvertical\u000ctabs",
    "a photo of a small wooden toy robot, studio lighting, white background",
    "a blue ceramic teapot with golden flowers, 4k, pbr textures",
    "an ancient stone castle on a hill at sunset, low poly, game asset",
    "voxel art of a cute pink pig",
    "a pair of red sneakers!",
]

# Decoding of raw id sequences: partial and invalid UTF-8, `</w>` placement, special tokens mid-text.
def raw_decode_cases(encoder):
    byte_id = {b: encoder[s] for b, s in bytes_to_unicode().items()}
    byte_end = {b: encoder[s + "</w>"] for b, s in bytes_to_unicode().items()}
    bos, eos = encoder["<|startoftext|>"], encoder["<|endoftext|>"]
    bad = [
        [0xC3],                      # truncated 2-byte sequence
        [0xF0, 0x9F, 0xA6],          # truncated 4-byte sequence
        [0x80, 0x80, 0x41],          # lone continuation bytes
        [0xC0, 0x80],                # overlong NUL
        [0xE0, 0x80, 0x80],          # overlong 3-byte
        [0xED, 0xA0, 0x80],          # UTF-16 surrogate
        [0xF4, 0x90, 0x80, 0x80],    # beyond U+10FFFF
        [0xFF, 0xFE, 0x41],          # never valid
        [0xE2, 0x82, 0x41, 0xE2, 0x82, 0xAC],  # broken then valid euro sign
        [0xF0, 0x9F, 0x98, 0x80, 0xF0, 0x9F],  # valid emoji then truncated
    ]
    cases = []
    for raw in bad:
        cases.append([byte_id[b] for b in raw[:-1]] + [byte_end[raw[-1]]])
        cases.append([bos] + [byte_id[b] for b in raw] + [eos, eos])
    cases.append([byte_end[0x61], bos, byte_end[0x62], eos, byte_id[0x63]])
    cases.append([eos, eos, eos])
    cases.append([])
    cases.append([byte_id[0x20], byte_end[0x20], byte_id[0x61], byte_end[0x0A]])
    cases.append([byte_id[ord(c)] for c in "x </w> n't"] + [byte_end[ord("y")]])
    return cases


VARIANTS = [
    # name, tokenizer_config.json, special_tokens_map.json (None: absent), prompts (None: all)
    ("sd15", sd15_config(), sd15_special_tokens_map(), None),
    # Stable Diffusion 2.x pads with "!" (id 0): a special token, so "!" in a prompt is split out
    # before BPE and skipped by decode(skip_special_tokens=True).
    ("sd2", dict(sd15_config(), pad_token="!"), dict(sd15_special_tokens_map(), pad_token="!"),
     [0, 1, 5, 22, 40, 54]),
    # Every other behaviour the config can change; the map is absent so the config alone decides.
    ("options", dict(sd15_config(), model_max_length=12, padding_side="left", truncation_side="left",
                     clean_up_tokenization_spaces=True, errors="ignore", split_special_tokens=True),
     None, [0, 1, 5, 6, 18, 19, 26, 40]),
]


def load(folder, config, special_map):
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    if special_map is not None:
        (folder / "special_tokens_map.json").write_text(json.dumps(special_map, indent=2) + "\n")
    slow = CLIPTokenizer.from_pretrained(folder)
    assert slow.fix_text is None, "ftfy was imported: the goldens must come from the no-ftfy path"
    fast = CLIPTokenizerFast.from_pretrained(folder, from_slow=True)
    return slow, fast


def golden(slow, fast, text, full):
    ids = slow(text)["input_ids"]
    padded = slow(text, padding="max_length", max_length=slow.model_max_length, truncation=True)
    case = {"text": text, "ids": ids, "input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"],
            "decoded": slow.decode(ids), "decoded_skip": slow.decode(padded["input_ids"], skip_special_tokens=True)}
    if full:
        case["tokens"] = slow.tokenize(text)
    fast_ids = fast(text)["input_ids"]
    fast_padded = fast(text, padding="max_length", max_length=fast.model_max_length, truncation=True)
    case["fast_agrees"] = fast_ids == ids and fast_padded["input_ids"] == padded["input_ids"]
    if fast_ids != ids:
        case["fast_ids"] = fast_ids
    return case


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    merges = learn_merges(corpus(), MERGES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        encoder = write_tokenizer(folder, merges)
        variants = []
        for name, config, special_map, subset in VARIANTS:
            slow, fast = load(folder, config, special_map)
            prompts = PROMPTS if subset is None else [PROMPTS[i] for i in subset]
            cases = [golden(slow, fast, p, full=subset is None) for p in prompts]
            decodes = []
            for ids in raw_decode_cases(encoder):
                decodes.append({"ids": ids, "decoded": slow.decode(ids),
                                "decoded_skip": slow.decode(ids, skip_special_tokens=True),
                                "fast_agrees": fast.decode(ids) == slow.decode(ids)
                                and fast.decode(ids, skip_special_tokens=True) == slow.decode(ids, skip_special_tokens=True)})
            variants.append({"name": name, "tokenizer_config": config, "special_tokens_map": special_map,
                             "cases": cases, "decodes": decodes})
            disagree = [c["text"] for c in cases if not c["fast_agrees"]]
            print(f"{name}: {len(cases)} prompts, {len(decodes)} decodes; fast tokenizer disagrees on "
                  f"{len(disagree)} prompts, {sum(not d['fast_agrees'] for d in decodes)} decodes")
            for text in disagree:
                print(f"  {text!r}")
        load(folder, sd15_config(), sd15_special_tokens_map())
        for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(folder / name, OUT / name)
    goldens = {"generator": f"transformers {transformers.__version__} CLIPTokenizer (slow, no ftfy)",
               "vocab_size": len(encoder), "merges": len(merges), "variants": variants}
    (OUT / "goldens.json").write_text(json.dumps(goldens, ensure_ascii=False, separators=(",", ":")) + "\n",
                                      encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(merges)} merges, {len(encoder)} tokens, {total / 1024:.0f} KiB to {OUT}")


if __name__ == "__main__":
    main()
