import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

extension SafeTensorsFile {
    /// The named tensor as a float32 `Tensor`.
    func tensorValue(_ name: String) throws -> Tensor {
        let (shape, values) = try tensor(name)
        return Tensor(shape: shape, storage: values)
    }
}

@Suite("UNet2DConditionModel")
struct UNetTests {
    static let pipelines = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines")

    /// Max |Δ| over max |expected|.
    static func relativeError(_ actual: Tensor, _ expected: [Float]) -> Float {
        let scale = expected.map(abs).max()!
        return zip(actual.storage, expected).map { abs($0 - $1) }.max()! / scale
    }

    /// A golden pipeline's UNet and its goldens file.
    static func load(_ pipeline: String) throws -> (UNet2DConditionModel, SafeTensorsFile) {
        let folder = pipelines.appendingPathComponent(pipeline)
        return (try UNet2DConditionModel(folder: folder.appendingPathComponent("unet")),
                try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors")))
    }

    @Test("matches diffusers on the golden inputs (tools/make_prior_goldens.py)", arguments: ["tiny", "sd15like"])
    func parity(pipeline: String) throws {
        let (unet, goldens) = try Self.load(pipeline)
        func tensor(_ name: String) throws -> Tensor { try goldens.tensorValue(name) }
        let labels = goldens.contains("unet.class_labels") ? try tensor("unet.class_labels") : nil
        #expect((labels != nil) == (unet.config.projectionClassInputDim != nil))
        let output = unet.forward(try tensor("unet.sample"), timesteps: try tensor("unet.timestep").storage,
                                  encoderHiddenStates: try tensor("unet.encoder_hidden_states"), classLabels: labels)
        let (shape, expected) = try goldens.tensor("unet.output")
        #expect(output.shape == shape)
        let error = Self.relativeError(output, expected)
        #expect(error <= 1e-4, "\(pipeline): max relative error \(error)")
    }

    @Test("backward matches PyTorch autograd on the golden inputs", arguments: ["tiny", "sd15like"])
    func backwardParity(pipeline: String) throws {
        let (unet, goldens) = try Self.load(pipeline)
        func tensor(_ name: String) throws -> Tensor { try goldens.tensorValue(name) }
        let labels = goldens.contains("unet.class_labels") ? try tensor("unet.class_labels") : nil
        unet.zeroGradients()
        let (_, saved) = unet.forwardForTraining(try tensor("unet.sample"), timesteps: try tensor("unet.timestep").storage,
                                                 encoderHiddenStates: try tensor("unet.encoder_hidden_states"), classLabels: labels)
        let gradients = unet.backward(saved, outputGradient: try tensor("grad.output_weights"))
        var compared = ["sample": gradients.sample, "encoder_hidden_states": gradients.encoderHiddenStates!]
        if let l = gradients.classLabels { compared["class_labels"] = l }
        for (name, parameter) in unet.namedParameters where goldens.contains("grad.\(name)") { compared[name] = parameter.gradient }
        #expect(compared.count >= 12)
        for (name, actual) in compared.sorted(by: { $0.key < $1.key }) {
            let (shape, expected) = try goldens.tensor("grad.\(name)")
            #expect(actual.shape == shape, "\(name)")
            let error = Self.relativeError(actual, expected)
            #expect(error <= 1e-4, "\(pipeline) ∂L/∂\(name): max relative error \(error)")
        }
    }

    /// A UNet exercising the options the goldens do not: linear projections, centred input, a
    /// mid-block scale, two transformer layers, per-level heads, no class embedding, time width ≠ 4·C.
    static func variantConfig() -> UNetConfig {
        var c = UNetConfig(inChannels: 2, outChannels: 3, blockOutChannels: [8, 16], downBlocks: [.crossAttentionDown, .down],
                           upBlocks: [.up, .crossAttentionUp], layersPerBlock: 1, heads: 2, crossAttentionDim: 6,
                           transformerLayersPerBlock: 2, useLinearProjection: true, normGroups: 4, timeEmbeddingDim: 12,
                           projectionClassInputDim: 5, centerInputSample: true, midBlockScaleFactor: 1.5)
        c.heads = [2, 4]
        return c
    }

    @Test("backward matches central finite differences of the forward pass on every input and parameter kind")
    func backwardFiniteDifferences() throws {
        var rng = RNG(seed: 11)
        let unet = UNet2DConditionModel(Self.variantConfig(), rng: &rng)
        let sample = Tensor.random([2, 2, 8, 8], rng: &rng)
        let context = Tensor.random([2, 3, 6], rng: &rng)
        let labels = Tensor.random([2, 5], rng: &rng)
        let weights = Tensor.random([2, 3, 8, 8], rng: &rng)
        let t: [Float] = [700, 40]
        func loss(_ s: Tensor, _ c: Tensor, _ l: Tensor) -> Double {
            let y = unet.forward(s, timesteps: t, encoderHiddenStates: c, classLabels: l)
            return zip(y.storage, weights.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        unet.zeroGradients()
        let (trainingOutput, saved) = unet.forwardForTraining(sample, timesteps: t, encoderHiddenStates: context, classLabels: labels)
        // Inference (fused norms, no kept probabilities) gives exactly the training forward's output.
        #expect(unet.forward(sample, timesteps: t, encoderHiddenStates: context, classLabels: labels) == trainingOutput)
        let g = unet.backward(saved, outputGradient: weights)

        /// Directional derivative along a random unit-scale direction, against the analytic dot product.
        func check(_ name: String, analytic: Tensor, perturb: (Tensor, Float) -> Double, shape: [Int]) {
            var r = RNG(seed: UInt64(name.utf8.reduce(7) { $0 &* 31 &+ Int($1) }.magnitude))
            let direction = Tensor.random(shape, rng: &r)
            // Central differences at 2ε and ε, Richardson-extrapolated (truncation O(ε⁴)). The forward
            // is float32: rounding leaves about 1e-5 of noise in the loss, so ε stays large (4e-3).
            func central(_ e: Float) -> Double { (perturb(direction, e) - perturb(direction, -e)) / (2 * Double(e)) }
            let numeric = (4 * central(4e-3) - central(8e-3)) / 3
            let exact = zip(analytic.storage, direction.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            // Relative error, with a floor for small derivatives: the loss's float32 rounding leaves
            // about 1e-3 of absolute noise in the differences.
            let error = abs(numeric - exact) / max(abs(exact), 0.2)
            #expect(error < 1e-2, "\(name): analytic \(exact), finite differences \(numeric)")
        }
        check("sample", analytic: g.sample, perturb: { d, e in loss(sample + e * d, context, labels) }, shape: sample.shape)
        check("context", analytic: g.encoderHiddenStates!, perturb: { d, e in loss(sample, context + e * d, labels) }, shape: context.shape)
        check("labels", analytic: g.classLabels!, perturb: { d, e in loss(sample, context, labels + e * d) }, shape: labels.shape)
        // Every parameter tensor of a few layer kinds, and all parameters at once.
        let named = unet.namedParameters
        let picks = named.filter { n in
            ["time_embedding.linear_1.weight", "class_embedding.linear_2.weight", "down_blocks.0.attentions.0.proj_in.weight",
             "down_blocks.0.attentions.0.transformer_blocks.1.attn1.to_k.weight", "mid_block.resnets.1.norm2.bias",
             "up_blocks.1.attentions.1.transformer_blocks.0.ff.net.0.proj.weight", "up_blocks.0.upsamplers.0.conv.weight",
             "down_blocks.0.downsamplers.0.conv.weight", "conv_in.weight"].contains(n.name)
        }
        #expect(picks.count == 9)
        for (name, p) in picks {
            let original = p.value
            check(name, analytic: p.gradient, perturb: { d, e in
                p.load(original + e * d)
                defer { p.load(original) }
                return loss(sample, context, labels)
            }, shape: p.shape)
        }
    }

    @Test("configs Kiln would build differently from diffusers are refused, naming the field")
    func configErrors() throws {
        let url = Self.pipelines.appendingPathComponent("tiny/unet/config.json")
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        func parse(_ edit: (inout [String: Any]) -> Void) throws -> UNetConfig {
            var object = base
            edit(&object)
            return try UNetConfig(json: JSONSerialization.data(withJSONObject: object), source: "unet.json")
        }
        let tiny = try parse { _ in }
        #expect(tiny.blockOutChannels == [16, 32] && tiny.heads == [4, 4] && tiny.projectionClassInputDim == 8 && tiny.timeEmbeddingDim == 64)
        let refused: [(String, (inout [String: Any]) -> Void)] = [
            ("resnet_time_scale_shift", { $0["resnet_time_scale_shift"] = "scale_shift" }),
            ("only_cross_attention", { $0["only_cross_attention"] = true }),
            ("addition_embed_type", { $0["addition_embed_type"] = "text_time" }),
            ("class_embed_type", { $0["class_embed_type"] = "timestep" }),
            ("down_block_types", { $0["down_block_types"] = ["AttnDownBlock2D", "DownBlock2D"] }),
            ("up_block_types", { $0["up_block_types"] = ["UpBlock2D"] }),
            ("mid_block_type", { $0["mid_block_type"] = "UNetMidBlock2DSimpleCrossAttn" }),
            ("attention_head_dim", { $0["attention_head_dim"] = 5 }),
            ("block_out_channels", { $0["block_out_channels"] = [16, 30] }),
            ("transformer_layers_per_block", { $0["transformer_layers_per_block"] = [[1], [1]] }),
            ("num_attention_heads", { $0["num_attention_heads"] = 4 }),
            ("norm_num_groups", { $0["norm_num_groups"] = true }),
            ("resnet_out_scale_factor", { $0["resnet_out_scale_factor"] = 2.0 }),
            ("brand_new_option", { $0["brand_new_option"] = 1 }),
            ("_class_name", { $0["_class_name"] = "UNet2DModel" }),
        ]
        for (key, edit) in refused {
            do {
                _ = try parse(edit)
                Issue.record("\(key) should be refused")
            } catch let error as PriorConfigError {
                #expect(error.key == key && error.description.contains("unet.json"), "\(key): \(error)")
            }
        }
        #expect(throws: PriorConfigError.self) { try UNetConfig(json: Data("[]".utf8), source: "unet.json") }
    }

    @Test("a weights file that does not fit the config is an error naming the tensor")
    func weightErrors() throws {
        var rng = RNG(seed: 3)
        let unet = UNet2DConditionModel(Self.variantConfig(), rng: &rng)
        func file(_ edit: (String, [Int]) -> (String, [Int])?) throws -> SafeTensorsFile {
            var writer = SafeTensorsWriter()
            for (name, p) in unet.namedParameters {
                guard let (n, shape) = edit(name, p.shape) else { continue }
                try writer.add(n, shape: shape, values: [Float](repeating: 0.5, count: shape.reduce(1, *)))
            }
            return try SafeTensorsFile(bytes: writer.encoded(), source: "w.safetensors")
        }
        let missing = try file { $0 == "mid_block.resnets.0.conv1.bias" ? nil : ($0, $1) }
        #expect { try unet.load(from: missing) } throws: { "\($0)".contains("mid_block.resnets.0.conv1.bias") }
        let misshaped = try file { $0 == "conv_out.weight" ? ($0, [3, 8, 1, 1]) : ($0, $1) }
        #expect { try unet.load(from: misshaped) } throws: { "\($0)".contains("conv_out.weight") }
        let extra = try file { $0 == "conv_out.bias" ? ("conv_out.extra", $1) : ($0, $1) }
        #expect { try unet.load(from: extra) } throws: { "\($0)".contains("conv_out") }
        let fine = try file { ($0, $1) }
        try unet.load(from: fine)
        #expect(unet.parameter(named: "conv_in.weight")!.value.storage.allSatisfy { $0 == 0.5 })
    }
}
