"""Writes PyTorch parity goldens for KilnNN's layers and optimisers.

Run: python3 tools/make_nn_goldens.py  (torch 2.x CPU; diffusers optional, used as a cross-check)
Writes Tests/KilnNNTests/Fixtures/nn_goldens.json:

    {"torch": "<version>", "cases": [{"name", "layer", "config": {...}, "tensors": {NAME: {"shape", "data"}}}]}

Each layer case holds the input(s), the parameters under their PyTorch state_dict names (so the
Swift test also checks Kiln's parameter names), the output, a fixed upstream gradient
`grad_output`, and the gradients `grad_input` (`grad_context`) and `grad.<parameter name>` from
autograd. Optimiser cases hold the initial parameters, the gradient fed at each step and the
parameters after each step. Values are float32 written with 9 significant digits (exact).
"""
import json
import math
import pathlib
import zlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/KilnNNTests/Fixtures/nn_goldens.json"


def tensor(t):
    t = t.detach().to(torch.float32).contiguous()
    return {"shape": list(t.shape), "data": [float("%.9g" % v) for v in t.reshape(-1).tolist()]}


def layer_case(name, layer, module, inputs, config, extra=None, forward=None):
    """Runs `module` forward and backward; records inputs, parameters, output and gradients."""
    inputs = {k: v.clone().requires_grad_(v.dtype.is_floating_point) for k, v in inputs.items()}
    out = forward(module, **inputs) if forward else module(*inputs.values())
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    grad_output = torch.randn(out.shape, generator=g)
    out.backward(grad_output)
    tensors = {}
    for k, v in inputs.items():
        tensors[k] = tensor(v)
        if v.grad is not None:
            tensors["grad_" + k] = tensor(v.grad)
    for pname, p in module.named_parameters():
        tensors[pname] = tensor(p)
        tensors["grad." + pname] = tensor(p.grad)
    tensors["output"] = tensor(out)
    tensors["grad_output"] = tensor(grad_output)
    tensors.update(extra or {})
    return {"name": name, "layer": layer, "config": config, "tensors": tensors}


def randomize(module, seed, scale=0.5):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * scale)
    return module


class HeadAttention(torch.nn.Module):
    """Multi-head attention written out by hand, with diffusers' or CLIP's projection names."""

    def __init__(self, query_dim, context_dim, heads, dim_head, qkv_bias, names, causal=False):
        super().__init__()
        inner = heads * dim_head
        q, k, v, o = names
        self.names = names
        self.heads, self.causal = heads, causal
        self.add_module(q, torch.nn.Linear(query_dim, inner, bias=qkv_bias))
        self.add_module(k, torch.nn.Linear(context_dim, inner, bias=qkv_bias))
        self.add_module(v, torch.nn.Linear(context_dim, inner, bias=qkv_bias))
        if "." in o:  # to_out.0
            self.to_out = torch.nn.ModuleList([torch.nn.Linear(inner, query_dim)])
        else:
            self.add_module(o, torch.nn.Linear(inner, query_dim))

    def projection(self, i):
        name = self.names[i]
        return self.to_out[0] if name == "to_out.0" else getattr(self, name)

    def forward(self, input, context=None):
        ctx = input if context is None else context
        q, k, v = self.projection(0)(input), self.projection(1)(ctx), self.projection(2)(ctx)
        b, lq, inner = q.shape
        lk = k.shape[1]
        d = inner // self.heads
        q = q.view(b, lq, self.heads, d).transpose(1, 2)
        k = k.view(b, lk, self.heads, d).transpose(1, 2)
        v = v.view(b, lk, self.heads, d).transpose(1, 2)
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        if self.causal:
            mask = torch.triu(torch.ones(lq, lk, dtype=torch.bool), diagonal=1)
            scores = scores.masked_fill(mask, float("-inf"))
        o = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, lq, inner)
        return self.projection(3)(o)


def check_against_diffusers(module, x, context, query_dim, context_dim, heads, dim_head):
    """diffusers' own Attention with the same weights must agree with the hand-written version."""
    try:
        from diffusers.models.attention_processor import Attention, AttnProcessor
    except ImportError:
        print("diffusers not installed: skipping the cross-check")
        return
    ref = Attention(query_dim=query_dim, cross_attention_dim=context_dim if context is not None else None,
                    heads=heads, dim_head=dim_head, bias=False)
    ref.set_processor(AttnProcessor())
    ref.load_state_dict(module.state_dict())
    with torch.no_grad():
        a = ref(x, encoder_hidden_states=context)
        b = module(x, context)
    assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


def main():
    torch.manual_seed(0)
    cases = []
    r = lambda *shape, s=1.0: torch.randn(*shape) * s

    cases.append(layer_case("linear", "linear", randomize(torch.nn.Linear(5, 7), 1), {"input": r(2, 3, 5)},
                            {"in": 5, "out": 7}))
    for name, cin, cout, k, stride, pad, shape in [
        ("conv3x3", 3, 4, 3, 1, 1, (2, 3, 6, 5)),
        ("conv1x1", 4, 6, 1, 1, 0, (2, 4, 5, 5)),
        ("conv3x3_stride2", 3, 5, 3, 2, 1, (2, 3, 7, 8)),
    ]:
        conv = randomize(torch.nn.Conv2d(cin, cout, k, stride=stride, padding=pad), 2)
        cases.append(layer_case(name, "conv2d", conv, {"input": r(*shape)},
                                {"in": cin, "out": cout, "kernel": k, "stride": stride, "padding": pad}))
    gn = torch.nn.GroupNorm(4, 8, eps=1e-6)
    with torch.no_grad():
        gn.weight.copy_(1 + 0.3 * torch.randn(8))
        gn.bias.copy_(0.3 * torch.randn(8))
    cases.append(layer_case("groupnorm", "groupnorm", gn, {"input": r(2, 8, 4, 3, s=2.0) + 0.5},
                            {"groups": 4, "channels": 8, "eps": 1e-6}))
    ln = torch.nn.LayerNorm(24, eps=1e-5)
    with torch.no_grad():
        ln.weight.copy_(1 + 0.3 * torch.randn(24))
        ln.bias.copy_(0.3 * torch.randn(24))
    cases.append(layer_case("layernorm", "layernorm", ln, {"input": r(2, 5, 24, s=1.5) - 0.3},
                            {"features": 24, "eps": 1e-5}))
    act_input = torch.cat([r(4, 30, s=2.0), torch.tensor([[-12.0, -6.0, 9.0]] * 4)], 1)
    cases.append(layer_case("gelu", "gelu", torch.nn.GELU(), {"input": act_input}, {"approximate": 0}))
    cases.append(layer_case("gelu_tanh", "gelu", torch.nn.GELU(approximate="tanh"), {"input": act_input}, {"approximate": 1}))
    cases.append(layer_case("silu", "silu", torch.nn.SiLU(), {"input": act_input}, {}))

    class QuickGELU(torch.nn.Module):
        def forward(self, x):
            return x * torch.sigmoid(1.702 * x)

    cases.append(layer_case("quick_gelu", "quick_gelu", QuickGELU(), {"input": act_input}, {}))
    try:
        from diffusers.models.activations import GEGLU
    except ImportError:
        class GEGLU(torch.nn.Module):
            def __init__(self, dim_in, dim_out):
                super().__init__()
                self.proj = torch.nn.Linear(dim_in, dim_out * 2)

            def forward(self, x):
                a, gate = self.proj(x).chunk(2, dim=-1)
                return a * F.gelu(gate)
    cases.append(layer_case("geglu", "geglu", randomize(GEGLU(16, 12), 3), {"input": r(2, 5, 16)}, {"in": 16, "out": 12}))

    diffusers_names = ("to_q", "to_k", "to_v", "to_out.0")
    self_attn = randomize(HeadAttention(16, 16, 2, 8, False, diffusers_names), 4)
    x = r(2, 6, 16)
    check_against_diffusers(self_attn, x, None, 16, 16, 2, 8)
    cases.append(layer_case("attention_self", "attention", self_attn, {"input": x},
                            {"query_dim": 16, "context_dim": 16, "heads": 2, "head_dim": 8, "qkv_bias": 0, "causal": 0, "clip": 0}))
    cross_attn = randomize(HeadAttention(16, 12, 2, 8, False, diffusers_names), 5)
    x, ctx = r(2, 6, 16), r(2, 5, 12)
    check_against_diffusers(cross_attn, x, ctx, 16, 12, 2, 8)
    cases.append(layer_case("attention_cross", "attention", cross_attn, {"input": x, "context": ctx},
                            {"query_dim": 16, "context_dim": 12, "heads": 2, "head_dim": 8, "qkv_bias": 0, "causal": 0, "clip": 0},
                            forward=lambda m, input, context: m(input, context)))
    clip_attn = randomize(HeadAttention(16, 16, 4, 4, True, ("q_proj", "k_proj", "v_proj", "out_proj"), causal=True), 6)
    cases.append(layer_case("attention_causal_clip", "attention", clip_attn, {"input": r(2, 7, 16)},
                            {"query_dim": 16, "context_dim": 16, "heads": 4, "head_dim": 4, "qkv_bias": 1, "causal": 1, "clip": 1}))

    class Softmax(torch.nn.Module):
        def forward(self, x):
            return x.softmax(-1)

    big = torch.cat([r(3, 10, s=1000.0), torch.tensor([[1e4, -1e4, 3e4, 0, 0, 0, 0, 0, 0, 3e4]])], 0)
    cases.append(layer_case("softmax_large", "softmax", Softmax(), {"input": big}, {}))

    class Upsample(torch.nn.Module):
        def forward(self, x):
            return F.interpolate(x, scale_factor=2.0, mode="nearest")

    cases.append(layer_case("upsample", "upsample", Upsample(), {"input": r(2, 3, 3, 4)}, {"scale": 2}))

    emb = randomize(torch.nn.Embedding(10, 6), 7)
    ids = torch.tensor([[1, 3, 3, 9], [0, 1, 9, 2]])
    out = emb(ids)
    grad_output = torch.randn(out.shape, generator=torch.Generator().manual_seed(8))
    out.backward(grad_output)
    cases.append({"name": "embedding", "layer": "embedding", "config": {"count": 10, "dim": 6},
                  "tensors": {"indices": tensor(ids.float()), "weight": tensor(emb.weight), "output": tensor(out),
                              "grad_output": tensor(grad_output), "grad.weight": tensor(emb.weight.grad)}})

    from_diffusers = True
    try:
        from diffusers.models.embeddings import get_timestep_embedding
    except ImportError:
        from_diffusers = False

        def get_timestep_embedding(timesteps, embedding_dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1,
                                   max_period=10000):
            half_dim = embedding_dim // 2
            exponent = -math.log(max_period) * torch.arange(start=0, end=half_dim, dtype=torch.float32)
            exponent = exponent / (half_dim - downscale_freq_shift)
            emb = timesteps[:, None].float() * torch.exp(exponent)[None, :]
            emb = scale * emb
            emb = torch.cat([torch.sin(emb), torch.cos(emb)], dim=-1)
            if flip_sin_to_cos:
                emb = torch.cat([emb[:, half_dim:], emb[:, :half_dim]], dim=-1)
            if embedding_dim % 2 == 1:
                emb = F.pad(emb, (0, 1, 0, 0))
            return emb
    steps = torch.tensor([0.0, 1.0, 17.5, 500.0, 999.0])
    for dim, flip, shift in [(32, True, 0.0), (32, False, 1.0), (33, True, 1.0), (320, True, 0.0)]:
        emb_t = get_timestep_embedding(steps, dim, flip_sin_to_cos=flip, downscale_freq_shift=shift)
        cases.append({"name": f"timesteps_{dim}_{int(flip)}_{int(shift)}", "layer": "timesteps",
                      "config": {"dim": dim, "flip": int(flip), "shift": shift, "diffusers": int(from_diffusers)},
                      "tensors": {"timesteps": tensor(steps), "output": tensor(emb_t)}})

    for name, cls, kwargs in [
        ("adamw", torch.optim.AdamW, {"lr": 0.05, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1}),
        ("adam_l2", torch.optim.Adam, {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}),
    ]:
        g = torch.Generator().manual_seed(9)
        params = [torch.randn(3, 4, generator=g).requires_grad_(), torch.randn(5, generator=g).requires_grad_()]
        tensors = {f"p{i}": tensor(p) for i, p in enumerate(params)}
        opt = cls(params, **kwargs)
        for step in range(3):
            for i, p in enumerate(params):
                p.grad = torch.randn(p.shape, generator=g) * (0.1 if step == 1 else 1.0)
                tensors[f"grad{step}_p{i}"] = tensor(p.grad)
            opt.step()
            for i, p in enumerate(params):
                tensors[f"after{step}_p{i}"] = tensor(p)
        config = {"lr": kwargs["lr"], "beta1": kwargs["betas"][0], "beta2": kwargs["betas"][1], "eps": kwargs["eps"],
                  "weight_decay": kwargs["weight_decay"], "decoupled": int(cls is torch.optim.AdamW), "steps": 3}
        cases.append({"name": name, "layer": "adam", "config": config, "tensors": tensors})

    OUT.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"torch": torch.__version__, "cases": cases}, separators=(",", ":"))
    OUT.write_text(text + "\n")
    print(f"wrote {OUT} ({len(text) / 1024:.0f} KiB, {len(cases)} cases)")


if __name__ == "__main__":
    main()
