import KilnCore
import Testing
@testable import KilnNN

/// Parity with PyTorch: forward values and gradients recorded by `tools/make_nn_goldens.py`
/// (torch.nn layers, diffusers' GEGLU, attention written out in torch, torch.optim). Errors are
/// relative to each tensor's largest magnitude: ≤ 1e-4 forward, ≤ 1e-3 gradients (a gradient that
/// vanishes in exact arithmetic, such as a key bias's, is held to 1e-5 absolute).
@Suite("PyTorch parity goldens")
struct GoldenTests {
    static let forwardTolerance = 1e-4
    static let gradientTolerance = 1e-3
    static let reserved: Set<String> = ["input", "context", "output", "grad_output", "grad_input", "grad_context", "indices", "timesteps"]

    /// Loads the golden's parameters into `module` by their PyTorch names; the two name sets must agree.
    func load(_ module: any Module, _ c: Goldens.Case) {
        let goldenNames = Set(c.tensors.keys.filter { !Self.reserved.contains($0) && !$0.hasPrefix("grad.") })
        let kilnNames = Set(module.namedParameters.map(\.name))
        #expect(goldenNames == kilnNames, "\(c.name): PyTorch names \(goldenNames.sorted()), Kiln names \(kilnNames.sorted())")
        for (name, parameter) in module.namedParameters where goldenNames.contains(name) {
            parameter.load(c.get(name).tensor, name: name)
        }
    }

    func expectParameterGradients(_ module: any Module, _ c: Goldens.Case) {
        for (name, parameter) in module.namedParameters {
            expectClose(parameter.gradient, c.get("grad." + name).data, tolerance: Self.gradientTolerance, "\(c.name) grad.\(name)",
                        floor: 1e-2)
        }
    }

    func expectOutput(_ y: Tensor, _ c: Goldens.Case) {
        #expect(y.shape == c.get("output").shape, "\(c.name): output shape")
        expectClose(y, c.get("output").data, tolerance: Self.forwardTolerance, "\(c.name) output")
    }

    func expectInputGradient(_ dx: Tensor, _ c: Goldens.Case, key: String = "grad_input") {
        expectClose(dx, c.get(key).data, tolerance: Self.gradientTolerance, "\(c.name) \(key)")
    }

    /// A layer case: loads the parameters by name, then checks output, input gradient and
    /// parameter gradients.
    func check(_ c: Goldens.Case, _ module: any Module, forward: (Tensor) -> Tensor, backward: (Tensor, Tensor) -> Tensor) {
        load(module, c)
        let x = c.get("input").tensor
        expectOutput(forward(x), c)
        expectInputGradient(backward(x, c.get("grad_output").tensor), c)
        expectParameterGradients(module, c)
    }

    @Test("torch.nn.Linear")
    func linear() {
        for c in Goldens.cases(layer: "linear") {
            var rng = RNG(seed: 1)
            let layer = Linear(inFeatures: c.int("in"), outFeatures: c.int("out"), rng: &rng)
            check(c, layer, forward: layer.forward) { layer.backward(input: $0, outputGradient: $1) }
        }
    }

    @Test("torch.nn.Conv2d: 3×3 padding 1, 1×1, 3×3 stride 2")
    func conv2d() {
        let cases = Goldens.cases(layer: "conv2d")
        #expect(cases.count == 3)
        for c in cases {
            var rng = RNG(seed: 2)
            let layer = Conv2d(inChannels: c.int("in"), outChannels: c.int("out"), kernelSize: c.int("kernel"), stride: c.int("stride"),
                               padding: c.int("padding"), rng: &rng)
            check(c, layer, forward: layer.forward) { layer.backward(input: $0, outputGradient: $1) }
        }
    }

    @Test("torch.nn.GroupNorm and torch.nn.LayerNorm")
    func normalization() {
        for c in Goldens.cases(layer: "groupnorm") {
            let layer = GroupNorm(groups: c.int("groups"), channels: c.int("channels"), eps: Float(c.config["eps"]!))
            check(c, layer, forward: layer.forward) { layer.backward(input: $0, outputGradient: $1) }
        }
        for c in Goldens.cases(layer: "layernorm") {
            let layer = LayerNorm(features: c.int("features"), eps: Float(c.config["eps"]!))
            check(c, layer, forward: layer.forward) { layer.backward(input: $0, outputGradient: $1) }
        }
    }

    @Test("GELU (erf and tanh), SiLU, quick GELU, softmax with huge logits, nearest upsampling")
    func parameterFree() {
        let layers: Set = ["gelu", "silu", "quick_gelu", "softmax", "upsample"]
        let cases = Goldens.shared.cases.filter { layers.contains($0.layer) }
        #expect(cases.count == 6)
        for c in cases {
            let x = c.get("input").tensor, dy = c.get("grad_output").tensor
            let y: Tensor, dx: Tensor
            switch c.layer {
            case "gelu":
                let layer = GELU(approximation: c.flag("approximate") ? .tanh : .none)
                (y, dx) = (layer.forward(x), layer.backward(input: x, outputGradient: dy))
            case "silu": (y, dx) = (SiLU().forward(x), SiLU().backward(input: x, outputGradient: dy))
            case "quick_gelu": (y, dx) = (QuickGELU().forward(x), QuickGELU().backward(input: x, outputGradient: dy))
            case "softmax":
                y = Softmax().forward(x)
                dx = Softmax().backward(output: y, outputGradient: dy)
            case "upsample":
                let layer = UpsampleNearest2d(scale: c.int("scale"))
                (y, dx) = (layer.forward(x), layer.backward(outputGradient: dy))
            default: continue
            }
            expectOutput(y, c)
            expectInputGradient(dx, c)
        }
    }

    @Test("diffusers GEGLU")
    func geglu() {
        let c = Goldens.named("geglu")
        var rng = RNG(seed: 3)
        let layer = GEGLU(inFeatures: c.int("in"), outFeatures: c.int("out"), rng: &rng)
        var saved: GEGLU.Saved?
        check(c, layer, forward: { x in
            let (y, s) = layer.forwardForTraining(x)
            saved = s
            return y
        }, backward: { _, dy in layer.backward(saved!, outputGradient: dy) })
    }

    @Test("Attention: diffusers self- and cross-attention, CLIP causal self-attention")
    func attention() {
        let cases = Goldens.cases(layer: "attention")
        #expect(cases.count == 3)
        for c in cases {
            var rng = RNG(seed: 4)
            let cross = c.tensors["context"] != nil
            let layer = Attention(queryDim: c.int("query_dim"), contextDim: cross ? c.int("context_dim") : nil, heads: c.int("heads"),
                                  headDim: c.int("head_dim"), qkvBias: c.flag("qkv_bias"), causal: c.flag("causal"),
                                  naming: c.flag("clip") ? .clip : .diffusers, rng: &rng)
            load(layer, c)
            let context = cross ? c.get("context").tensor : nil
            let (y, saved) = layer.forwardForTraining(c.get("input").tensor, context: context)
            expectOutput(y, c)
            let grads = layer.backward(saved, outputGradient: c.get("grad_output").tensor)
            expectInputGradient(grads.input, c)
            if cross { expectInputGradient(grads.context!, c, key: "grad_context") }
            expectParameterGradients(layer, c)
        }
    }

    @Test("torch.nn.Embedding")
    func embedding() {
        let c = Goldens.named("embedding")
        var rng = RNG(seed: 5)
        let layer = Embedding(count: c.int("count"), dim: c.int("dim"), rng: &rng)
        load(layer, c)
        let indices = c.get("indices")
        let ids = indices.data.map { Int($0) }
        expectOutput(layer.forward(indices: ids, shape: indices.shape), c)
        layer.backward(indices: ids, outputGradient: c.get("grad_output").tensor)
        expectParameterGradients(layer, c)
    }

    @Test("diffusers get_timestep_embedding")
    func timesteps() {
        let cases = Goldens.cases(layer: "timesteps")
        #expect(cases.count == 4)
        for c in cases {
            let t = Timesteps(dim: c.int("dim"), flipSinToCos: c.flag("flip"), downscaleFreqShift: Float(c.config["shift"]!))
            expectOutput(t.forward(c.get("timesteps").data.map(Float.init)), c)
        }
    }

    @Test("torch.optim.AdamW and Adam with L2 weight decay, three steps")
    func adam() {
        let cases = Goldens.cases(layer: "adam")
        #expect(cases.count == 2)
        for c in cases {
            let parameters = [Parameter(c.get("p0").tensor), Parameter(c.get("p1").tensor)]
            let optimizer = Adam(parameters: parameters, configuration: .init(
                learningRate: c.config["lr"]!, beta1: c.config["beta1"]!, beta2: c.config["beta2"]!, eps: c.config["eps"]!,
                weightDecay: c.config["weight_decay"]!, decoupledWeightDecay: c.flag("decoupled")))
            for step in 0..<c.int("steps") {
                for (i, p) in parameters.enumerated() { p.setGradient(c.get("grad\(step)_p\(i)").tensor) }
                optimizer.step()
                for (i, p) in parameters.enumerated() {
                    expectClose(p.value, c.get("after\(step)_p\(i)").data, tolerance: 1e-6, "\(c.name) step \(step + 1) p\(i)")
                }
            }
        }
    }
}
