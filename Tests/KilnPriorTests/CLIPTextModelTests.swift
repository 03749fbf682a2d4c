import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("CLIP text encoder")
struct CLIPTextModelTests {
    static let pipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines/tiny")

    @Test("matches transformers' CLIPTextModel on the golden prompts (tools/make_prior_goldens.py)")
    func parity() throws {
        let model = try CLIPTextModel(folder: Self.pipeline.appendingPathComponent("text_encoder"))
        let goldens = try SafeTensorsFile(contentsOf: Self.pipeline.appendingPathComponent("goldens.safetensors"))
        let (idShape, idValues) = try goldens.tensor("text.input_ids")
        let ids = (0..<idShape[0]).map { b in (0..<idShape[1]).map { Int(idValues[b * idShape[1] + $0]) } }
        // Kiln's tokenizer gives the same ids from the same folder.
        let tokenizer = try CLIPTokenizer(folder: Self.pipeline.appendingPathComponent("tokenizer"))
        let prompts = ["a red snowman", "a wooden crate, 3.5 metres tall!", ""]
        #expect(prompts.map { tokenizer.encode($0).inputIDs } == ids)

        let (hidden, pooled) = model.forward(ids: ids)
        for (name, actual) in [("text.last_hidden_state", hidden), ("text.pooled", pooled)] {
            let (shape, expected) = try goldens.tensor(name)
            #expect(actual.shape == shape)
            let scale = expected.map(abs).max()!
            let worst = zip(actual.storage, expected).map { abs($0 - $1) }.max()!
            // Relative to the tensor's largest value: 1e-4.
            #expect(worst / scale < 1e-4, "\(name): worst |Δ| \(worst), scale \(scale)")
        }
    }

    @Test("configs Kiln would misread are refused, naming the field")
    func configErrors() throws {
        let base = #""vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1"#
        func parse(_ body: String) throws -> CLIPTextConfig { try CLIPTextConfig(json: Data("{\(body)}".utf8), source: "c.json") }
        let ok = try parse(base + #", "num_attention_heads": 2, "transformers_version": "4.57.6""#)
        #expect(ok.heads == 2 && ok.activation == .quickGELU && ok.maxPositions == 77)
        for (body, key) in [(base + #", "num_attention_heads": 2, "hidden_act": "relu""#, "hidden_act"),
                            (base + #", "num_attention_heads": 2, "rope_theta": 10000"#, "rope_theta"),
                            (base + #", "num_attention_heads": 2, "model_type": "t5""#, "model_type"),
                            (base + #", "num_attention_heads": 3"#, "num_attention_heads"),
                            (base, "num_attention_heads")] {
            do {
                _ = try parse(body)
                Issue.record("\(key) should be refused")
            } catch let error as PriorConfigError {
                #expect(error.key == key && error.description.contains("c.json"), "\(error)")
            }
        }
        #expect(throws: PriorConfigError.self) { try CLIPTextConfig(json: Data("[1]".utf8), source: "c.json") }
    }

    @Test("a weights file with a missing or mis-shaped tensor is an error naming it")
    func weightErrors() throws {
        var rng = RNG(seed: 1)
        let config = CLIPTextConfig(vocabSize: 12, hiddenSize: 8, intermediateSize: 16, layers: 1, heads: 2, maxPositions: 6)
        let model = CLIPTextModel(config, rng: &rng)
        var writer = SafeTensorsWriter()
        for (name, p) in model.namedParameters where name != "final_layer_norm.bias" {
            try writer.add(name, shape: p.shape, values: p.value.storage)
        }
        let missing = try SafeTensorsFile(bytes: writer.encoded(), source: "w.safetensors")
        #expect { try model.load(from: missing) } throws: { "\($0)".contains("final_layer_norm.bias") }
        let (h, pooled) = model.forward(ids: [[1, 2, 3], [4, 5, 2]])
        #expect(h.shape == [2, 3, 8] && pooled.shape == [2, 8])
    }

    @Test("backward matches central finite differences on every parameter kind; training forward equals forward")
    func backwardFiniteDifferences() {
        var rng = RNG(seed: 21)
        let config = CLIPTextConfig(vocabSize: 20, hiddenSize: 8, intermediateSize: 16, layers: 2, heads: 2, maxPositions: 6)
        let model = CLIPTextModel(config, rng: &rng)
        let ids = [[1, 5, 7, 2, 0, 0], [3, 3, 9, 11, 2, 4]]
        let weights = Tensor.random([2, 6, 8], rng: &rng)
        func loss() -> Double {
            zip(model.forward(ids: ids).lastHiddenState.storage, weights.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        model.zeroGradients()
        let (hidden, saved) = model.forwardForTraining(ids: ids)
        #expect(hidden == model.forward(ids: ids).lastHiddenState)
        model.backward(saved, outputGradient: weights)
        for name in ["embeddings.token_embedding.weight", "embeddings.position_embedding.weight", "encoder.layers.0.self_attn.q_proj.weight",
                     "encoder.layers.1.self_attn.out_proj.bias", "encoder.layers.0.mlp.fc1.weight", "encoder.layers.1.layer_norm2.weight",
                     "final_layer_norm.bias"] {
            let p = model.parameter(named: name)!
            var r = RNG(seed: UInt64(name.utf8.count))
            let direction = Tensor.random(p.shape, rng: &r), original = p.value
            func central(_ e: Float) -> Double {
                p.load(original + e * direction); let plus = loss()
                p.load(original + (-e) * direction); let minus = loss()
                p.load(original)
                return (plus - minus) / (2 * Double(e))
            }
            let numeric = (4 * central(4e-3) - central(8e-3)) / 3
            let exact = zip(p.gradient.storage, direction.storage).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(numeric - exact) / max(abs(exact), 0.2) < 1e-2, "\(name): analytic \(exact), finite differences \(numeric)")
        }
    }
}
