"""Writes safetensors test fixtures with the reference implementation, and checks files Kiln wrote.

Run: python3 tools/make_safetensors_fixtures.py  (after pip install -r tools/requirements.txt)
Writes, under Tests/KilnNNTests/Fixtures/safetensors/:
- golden.safetensors + golden.json: F32, F16, BF16, F64, I64 tensors (a scalar and an empty one
  among them) and three metadata keys (non-ASCII and escaped characters included), saved by the
  official `safetensors` package from PyTorch tensors. The JSON gives, for each tensor, the dtype,
  shape and the float32 bit patterns Kiln must return (PyTorch's own .float() of the stored values).
- reference_writer.safetensors + reference_writer.json: F32, BF16 and F16 tensors and one
  metadata key. The JSON gives the float32 source values (bit patterns) before PyTorch narrowed them
  with .half() / .bfloat16(); Kiln's writer, given the same values, must produce the same bytes.

Checking a file Kiln wrote (the other direction):
    KILN_SAFETENSORS_EXPORT=/tmp/kiln.safetensors swift test --filter SafeTensorsTests
    python3 tools/make_safetensors_fixtures.py --check /tmp/kiln.safetensors
The test `kilnFileReadsInReference` keeps a copy of the file it writes (the tensors of
reference_writer.json plus several metadata keys) at that path; --check opens it with
`safetensors.safe_open` (the reference reader, which validates the header) and compares every tensor
and the metadata with what PyTorch's narrowing of the same source values gives.
"""
import json
import pathlib
import sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnNNTests/Fixtures/safetensors"
rng = np.random.default_rng(20260304)

F16_SPECIALS = [1 / 3, 65504.0, 65519.99, 65520.0, 6e-8, 2.0**-24, 2.0**-25, 3 * 2.0**-25, -0.0,
                float("inf"), float("-inf"), float("nan"), 1e-10, 0.1, -2.5, 1 + 2.0**-11, 1 + 3 * 2.0**-11,
                6.1e-5, -1e5]
BF16_SPECIALS = [1 / 3, 3.389e38, 3.4028234663852886e38, 1e-40, 1 + 2.0**-8, 1 + 3 * 2.0**-8,
                 float("nan"), float("inf"), float("-inf"), -0.0, 0.1, -7.75]

KILN_METADATA = {"format": "pt", "kiln": "writer check", "note": "é \"quoted\"\n"}


def bits(t):
    """float32 bit patterns of a tensor converted with .float(), as Python ints."""
    return t.float().contiguous().view(torch.int32).numpy().astype(np.uint32).ravel().tolist()


def reference_writer_tensors():
    """The tensors of reference_writer: name -> (dtype name, float32 source tensor)."""
    g = np.random.default_rng(7)
    return {
        "weight": ("F32", torch.from_numpy(g.standard_normal((3, 4)).astype(np.float32))),
        # No NaN here: PyTorch's vectorised BF16 narrowing writes NaN as 0xFFFF, its scalar path as
        # 0x7FC0 (Kiln's choice); NaN payloads are unspecified, so byte equality would test nothing.
        "bias.bf16": ("BF16", torch.tensor([v for v in BF16_SPECIALS if v == v], dtype=torch.float32)),
        "a.half": ("F16", torch.tensor(F16_SPECIALS, dtype=torch.float32).reshape(1, -1)),
        "z_scalar": ("F32", torch.tensor(2.5, dtype=torch.float32)),
        "empty": ("F16", torch.zeros((0, 2), dtype=torch.float32)),
    }


def narrow(dtype, t):
    return {"F32": t, "F16": t.half(), "BF16": t.bfloat16()}[dtype]


def write_golden():
    tensors = {
        "model.conv.weight": torch.from_numpy(rng.standard_normal((2, 3, 2, 2)).astype(np.float32)),
        "model.conv.bias": torch.from_numpy(rng.standard_normal(2).astype(np.float32) * 1e-3),
        "half.specials": torch.tensor(F16_SPECIALS, dtype=torch.float32).half(),
        "half.random": torch.from_numpy(rng.standard_normal((3, 5)).astype(np.float32) * 10).half(),
        "bf16.specials": torch.tensor(BF16_SPECIALS, dtype=torch.float32).bfloat16(),
        "bf16.random": torch.from_numpy(rng.standard_normal((4, 3)).astype(np.float32)).bfloat16(),
        "double": torch.tensor([1 / 3, -1e-30, 1e300], dtype=torch.float64),
        "position_ids": torch.arange(7, dtype=torch.int64).reshape(1, 7),
        "scalar": torch.tensor(-3.75, dtype=torch.float32),
        "empty": torch.zeros((0, 4), dtype=torch.float32),
    }
    metadata = {"format": "pt", "note": "Kiln golden ü ✓", "quote": "a \"b\"\\c\n"}
    save_file(tensors, str(OUT / "golden.safetensors"), metadata=metadata)
    dtype_names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
                   torch.float64: "F64", torch.int64: "I64"}
    expected = {
        "metadata": metadata,
        "tensors": {name: {"dtype": dtype_names[t.dtype], "shape": list(t.shape), "bits": bits(t)}
                    for name, t in tensors.items()},
    }
    (OUT / "golden.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


def write_reference_writer():
    source = reference_writer_tensors()
    stored = {name: narrow(dtype, t) for name, (dtype, t) in source.items()}
    save_file(stored, str(OUT / "reference_writer.safetensors"), metadata={"format": "pt"})
    expected = {
        "metadata": {"format": "pt"},
        "tensors": {name: {"dtype": dtype, "shape": list(t.shape), "source_bits": bits(t)}
                    for name, (dtype, t) in source.items()},
    }
    (OUT / "reference_writer.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


def check(path):
    """Opens a Kiln-written file with the reference reader and compares it with PyTorch's values."""
    failures = 0
    with safe_open(path, framework="pt") as f:
        if f.metadata() != KILN_METADATA:
            print(f"metadata differs: {f.metadata()!r} != {KILN_METADATA!r}")
            failures += 1
        names = set(f.keys())
        source = reference_writer_tensors()
        if names != set(source):
            print(f"tensor names differ: {sorted(names)} != {sorted(source)}")
            failures += 1
        for name, (dtype, t) in source.items():
            if name not in names:
                continue
            got = f.get_tensor(name)
            want = narrow(dtype, t)
            same = (got.dtype == want.dtype and got.shape == want.shape
                    and torch.equal(got.reshape(-1).view(torch.uint8), want.reshape(-1).view(torch.uint8)))
            print(f"{name:10s} {dtype:4s} {tuple(got.shape)}: {'bit-identical' if same else 'DIFFERS'}")
            failures += 0 if same else 1
    raw = pathlib.Path(path).read_bytes()
    n = int.from_bytes(raw[:8], "little")
    print(f"header: {n} bytes, multiple of 8: {n % 8 == 0}, padding: {raw[8 + n - 8: 8 + n]!r}")
    failures += 0 if n % 8 == 0 else 1
    print("OK" if failures == 0 else f"{failures} FAILURES")
    return failures


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        sys.exit(1 if check(sys.argv[2]) else 0)
    OUT.mkdir(parents=True, exist_ok=True)
    write_golden()
    write_reference_writer()
    for p in sorted(OUT.iterdir()):
        print(f"{p.name}: {p.stat().st_size} bytes")


if __name__ == "__main__":
    main()
