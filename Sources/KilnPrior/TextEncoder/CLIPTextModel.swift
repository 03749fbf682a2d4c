import Foundation
import KilnCore
import KilnNN

/// The fields of a transformers `CLIPTextConfig` (`text_encoder/config.json`) that Kiln reads.
///
/// Policy: every key must be one Kiln reads or one listed in `ignoredKeys` (bookkeeping and
/// training-only settings that do not change the forward pass); anything else is an error naming
/// the key, so a config Kiln would misread never loads silently.
public struct CLIPTextConfig: Sendable, Equatable {
    public var vocabSize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layers: Int
    public var heads: Int
    public var maxPositions: Int
    public var activation: Activation
    public var layerNormEps: Float
    public var eosTokenID: Int

    public enum Activation: String, Sendable { case quickGELU = "quick_gelu", gelu = "gelu", geluTanh = "gelu_pytorch_tanh" }

    /// Keys that do not change the text encoder's forward pass.
    public static let ignoredKeys: Set<String> = [
        "_name_or_path", "architectures", "transformers_version", "torch_dtype", "dtype", "attention_dropout", "dropout",
        "initializer_factor", "initializer_range", "projection_dim", "bos_token_id", "pad_token_id", "model_type",
        "output_attentions", "output_hidden_states", "use_return_dict", "tie_word_embeddings",
    ]

    public init(vocabSize: Int, hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, maxPositions: Int = 77,
                activation: Activation = .quickGELU, layerNormEps: Float = 1e-5, eosTokenID: Int = 2) {
        self.vocabSize = vocabSize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layers = layers
        self.heads = heads
        self.maxPositions = maxPositions
        self.activation = activation
        self.layerNormEps = layerNormEps
        self.eosTokenID = eosTokenID
    }

    /// Parses `config.json` bytes; `source` names the file in errors.
    public init(json data: Data, source: String) throws {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw PriorConfigError(source: source, key: nil, problem: "is not a JSON object", fix: "write the text encoder's config.json as transformers saves it")
        }
        let read: Set<String> = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                 "max_position_embeddings", "hidden_act", "layer_norm_eps", "eos_token_id"]
        for key in object.keys.sorted() where !read.contains(key) && !Self.ignoredKeys.contains(key) {
            throw PriorConfigError(source: source, key: key, problem: "is not a CLIPTextConfig field Kiln understands",
                                   fix: "remove it, or use a CLIPTextModel config (model_type clip_text_model)")
        }
        if let type = object["model_type"] as? String, type != "clip_text_model" {
            throw PriorConfigError(source: source, key: "model_type", problem: "is \(type), not clip_text_model", fix: "point Kiln at a CLIP text encoder")
        }
        func int(_ key: String, default value: Int? = nil) throws -> Int {
            if let v = object[key] as? Int, v > 0 { return v }
            if object[key] == nil, let value { return value }
            throw PriorConfigError(source: source, key: key, problem: object[key] == nil ? "is missing" : "must be a positive integer",
                                   fix: "set \(key) as in the weights' original config")
        }
        let act = (object["hidden_act"] as? String) ?? "quick_gelu"
        guard let activation = Activation(rawValue: act) else {
            throw PriorConfigError(source: source, key: "hidden_act", problem: "is \(act)", fix: "use quick_gelu, gelu or gelu_pytorch_tanh")
        }
        let eps = (object["layer_norm_eps"] as? Double) ?? 1e-5
        guard eps > 0 else { throw PriorConfigError(source: source, key: "layer_norm_eps", problem: "must be positive", fix: "use 1e-5") }
        self.init(vocabSize: try int("vocab_size"), hiddenSize: try int("hidden_size"), intermediateSize: try int("intermediate_size"),
                  layers: try int("num_hidden_layers"), heads: try int("num_attention_heads"),
                  maxPositions: try int("max_position_embeddings", default: 77), activation: activation, layerNormEps: Float(eps),
                  eosTokenID: (object["eos_token_id"] as? Int) ?? 2)
        guard hiddenSize % heads == 0 else {
            throw PriorConfigError(source: source, key: "num_attention_heads", problem: "\(heads) does not divide hidden_size \(hiddenSize)",
                                   fix: "use a head count that divides the width")
        }
    }
}

/// A config file Kiln cannot use, naming the file, the field and the fix.
public struct PriorConfigError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var key: String?
    public var problem: String
    public var fix: String

    public init(source: String, key: String?, problem: String, fix: String) {
        (self.source, self.key, self.problem, self.fix) = (source, key, problem, fix)
    }

    public var description: String {
        "\(source): " + (key.map { "\"\($0)\" " } ?? "") + "\(problem); \(fix)"
    }
}

/// transformers' `CLIPTextModel` (forward pass): token and position embeddings, pre-norm
/// transformer layers with causal self-attention and an MLP, a final LayerNorm.
///
/// The pooled output is the final hidden state at the end-of-text token: transformers takes the
/// first position holding `eos_token_id`, or (configs with the legacy `eos_token_id` = 2) the
/// position of the largest id.
public final class CLIPTextModel: Module {
    public let config: CLIPTextConfig
    let tokenEmbedding: Embedding
    let positionEmbedding: Embedding
    let layers: [EncoderLayer]
    let finalNorm: LayerNorm

    final class EncoderLayer: Module {
        let norm1: LayerNorm, attention: Attention, norm2: LayerNorm, fc1: Linear, fc2: Linear
        let activation: CLIPTextConfig.Activation

        init(_ c: CLIPTextConfig, rng: inout RNG) {
            norm1 = LayerNorm(features: c.hiddenSize, eps: c.layerNormEps)
            attention = Attention(queryDim: c.hiddenSize, heads: c.heads, headDim: c.hiddenSize / c.heads, qkvBias: true, outBias: true,
                                  causal: true, naming: .clip, rng: &rng)
            norm2 = LayerNorm(features: c.hiddenSize, eps: c.layerNormEps)
            fc1 = Linear(inFeatures: c.hiddenSize, outFeatures: c.intermediateSize, rng: &rng)
            fc2 = Linear(inFeatures: c.intermediateSize, outFeatures: c.hiddenSize, rng: &rng)
            activation = c.activation
        }

        var namedParameters: [(name: String, parameter: Parameter)] {
            prefixed("self_attn", attention) + prefixed("layer_norm1", norm1) + prefixed("mlp.fc1", fc1)
                + prefixed("mlp.fc2", fc2) + prefixed("layer_norm2", norm2)
        }

        /// What `backward` needs.
        struct Saved {
            var input: Tensor, attention: Attention.Saved?, afterAttention: Tensor, normalized2: Tensor, hidden: Tensor, activated: Tensor
        }

        func forward(_ x: Tensor) -> Tensor { forward(x, training: false).output }

        func forward(_ x: Tensor, training: Bool) -> (output: Tensor, saved: Saved) {
            var h = x
            var attentionSaved: Attention.Saved?
            if training {
                let (a, saved) = attention.forwardForTraining(norm1.forward(x))
                h += a
                attentionSaved = saved
            } else {
                h += attention.forward(norm1.forward(x))
            }
            let afterAttention = h
            let normalized2 = norm2.forward(h)
            let hidden = fc1.forward(normalized2)
            let activated: Tensor
            switch activation {
            case .quickGELU: activated = QuickGELU().forward(hidden)
            case .gelu: activated = GELU().forward(hidden)
            case .geluTanh: activated = GELU(approximation: .tanh).forward(hidden)
            }
            h += fc2.forward(activated)
            return (h, Saved(input: x, attention: attentionSaved, afterAttention: afterAttention, normalized2: normalized2,
                             hidden: hidden, activated: activated))
        }

        /// Adds the parameter gradients; returns ∂L/∂x.
        func backward(_ s: Saved, outputGradient dy: Tensor) -> Tensor {
            guard let attentionSaved = s.attention else { preconditionFailure("CLIPTextModel backward needs forwardForTraining") }
            var dh = dy
            let dActivated = fc2.backward(input: s.activated, outputGradient: dy)
            let dHidden: Tensor
            switch activation {
            case .quickGELU: dHidden = QuickGELU().backward(input: s.hidden, outputGradient: dActivated)
            case .gelu: dHidden = GELU().backward(input: s.hidden, outputGradient: dActivated)
            case .geluTanh: dHidden = GELU(approximation: .tanh).backward(input: s.hidden, outputGradient: dActivated)
            }
            dh += norm2.backward(input: s.afterAttention, outputGradient: fc1.backward(input: s.normalized2, outputGradient: dHidden))
            let dNormalized1 = attention.backward(attentionSaved, outputGradient: dh).input
            dh += norm1.backward(input: s.input, outputGradient: dNormalized1)
            return dh
        }
    }

    /// A model with random weights (load real ones with `load(from:)`).
    public init(_ config: CLIPTextConfig, rng: inout RNG) {
        self.config = config
        tokenEmbedding = Embedding(count: config.vocabSize, dim: config.hiddenSize, rng: &rng)
        positionEmbedding = Embedding(count: config.maxPositions, dim: config.hiddenSize, rng: &rng)
        layers = (0..<config.layers).map { _ in EncoderLayer(config, rng: &rng) }
        finalNorm = LayerNorm(features: config.hiddenSize, eps: config.layerNormEps)
    }

    /// transformers' parameter names below `text_model.`.
    public var namedParameters: [(name: String, parameter: Parameter)] {
        var out = prefixed("embeddings.token_embedding", tokenEmbedding) + prefixed("embeddings.position_embedding", positionEmbedding)
        for (i, layer) in layers.enumerated() { out += prefixed("encoder.layers.\(i)", layer) }
        return out + prefixed("final_layer_norm", finalNorm)
    }

    /// Loads a `text_encoder/` folder: `config.json` and `model.safetensors` (or a variant, or
    /// shards: `ComponentWeights` says which files are read).
    /// - Parameter variant: the weights variant to load (`"fp16"`); nil chooses (plain files first).
    public convenience init(folder: URL, variant: String? = nil) throws {
        let configURL = folder.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: configURL.path) else {
            throw PriorConfigError(source: configURL.path, key: nil, problem: "cannot be read", fix: "point Kiln at a diffusers pipeline folder with text_encoder/config.json")
        }
        var rng = RNG(seed: 0)
        self.init(try CLIPTextConfig(json: data, source: configURL.path), rng: &rng)
        try load(from: ComponentWeights(folder: folder, library: .transformers, variant: variant))
    }

    /// Replaces every parameter with the tensor of the same name (F32, F16 or BF16). Files from
    /// transformers 4 prefix names with `text_model.`; transformers 5 drops it; both load. Shapes
    /// must match.
    public func load(from weights: ComponentWeights) throws {
        let prefix = weights.contains("text_model.final_layer_norm.weight") ? "text_model." : ""
        for (name, parameter) in namedParameters {
            try weights.load(prefix + name, into: parameter)
        }
    }

    /// `load(from:)` for one safetensors file.
    public func load(from file: SafeTensorsFile) throws {
        try load(from: ComponentWeights(file))
    }

    /// What `backward` needs from `forwardForTraining`.
    public struct Saved {
        var ids: [[Int]]
        var layers: [EncoderLayer.Saved]
        var beforeFinalNorm: Tensor
    }

    /// `forward`'s last hidden state, also returning what `backward` needs.
    public func forwardForTraining(ids: [[Int]]) -> (lastHiddenState: Tensor, saved: Saved) {
        let (batch, length) = checkIDs(ids)
        var h = embed(ids, batch: batch, length: length)
        var saved: [EncoderLayer.Saved] = []
        for layer in layers {
            let (next, s) = layer.forward(h, training: true)
            h = next
            saved.append(s)
        }
        return (finalNorm.forward(h), Saved(ids: ids, layers: saved, beforeFinalNorm: h))
    }

    /// Adds ∂L/∂θ for every parameter (embeddings included), given ∂L/∂lastHiddenState `[B, L, D]`.
    /// (The pooled output is not trained through: Stable Diffusion-style UNets read the hidden states.)
    public func backward(_ s: Saved, outputGradient dy: Tensor) {
        var g = finalNorm.backward(input: s.beforeFinalNorm, outputGradient: dy)
        for (layer, saved) in zip(layers, s.layers).reversed() { g = layer.backward(saved, outputGradient: g) }
        let batch = s.ids.count, length = s.ids.first?.count ?? 0
        tokenEmbedding.backward(indices: s.ids.flatMap { $0 }, outputGradient: g)
        positionEmbedding.backward(indices: (0..<batch).flatMap { _ in Array(0..<length) }, outputGradient: g)
    }

    func checkIDs(_ ids: [[Int]]) -> (batch: Int, length: Int) {
        let batch = ids.count, length = ids.first?.count ?? 0
        precondition(batch > 0 && ids.allSatisfy { $0.count == length } && length <= config.maxPositions,
                     "CLIPTextModel.forward: ids must be [B, L] with L ≤ \(config.maxPositions)")
        precondition(ids.allSatisfy { $0.allSatisfy { (0..<config.vocabSize).contains($0) } }, "CLIPTextModel.forward: token id outside the vocabulary of \(config.vocabSize)")
        return (batch, length)
    }

    func embed(_ ids: [[Int]], batch: Int, length: Int) -> Tensor {
        var h = tokenEmbedding.forward(indices: ids.flatMap { $0 }, shape: [batch, length])
        h += positionEmbedding.forward(indices: (0..<batch).flatMap { _ in Array(0..<length) }, shape: [batch, length])
        return h
    }

    /// Encodes `[B, L]` token ids (L ≤ maxPositions).
    /// - Returns: `lastHiddenState` `[B, L, D]` and `pooled` `[B, D]`.
    public func forward(ids: [[Int]]) -> (lastHiddenState: Tensor, pooled: Tensor) {
        let (batch, length) = checkIDs(ids)
        var h = embed(ids, batch: batch, length: length)
        for layer in layers { h = layer.forward(h) }
        h = finalNorm.forward(h)
        let d = config.hiddenSize
        var pooled = [Float](repeating: 0, count: batch * d)
        for b in 0..<batch {
            let row = ids[b]
            let position = config.eosTokenID == 2
                ? row.indices.max { row[$0] < row[$1] || (row[$0] == row[$1] && $0 > $1) } ?? 0
                : row.firstIndex(of: config.eosTokenID) ?? 0
            for c in 0..<d { pooled[b * d + c] = h.storage[(b * length + position) * d + c] }
        }
        return (h, Tensor(shape: [batch, d], storage: pooled))
    }
}
