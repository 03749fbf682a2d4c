import KilnCore
import KilnNN

extension UNet2DConditionModel {
    /// The attention projections (`to_q`, `to_k`, `to_v`, `to_out.0` of every self- and
    /// cross-attention) under their diffusers module names, the layers LoRA adapts in diffusers'
    /// and peft's Stable Diffusion recipes.
    public var attentionProjections: [(name: String, layer: Linear)] {
        var transformers: [(String, Transformer2D)] = []
        for (i, block) in downBlocks.enumerated() {
            transformers += block.attentions.enumerated().map { ("down_blocks.\(i).attentions.\($0.offset)", $0.element) }
        }
        if let midBlock { transformers += midBlock.attentions.enumerated().map { ("mid_block.attentions.\($0.offset)", $0.element) } }
        for (i, block) in upBlocks.enumerated() {
            transformers += block.attentions.enumerated().map { ("up_blocks.\(i).attentions.\($0.offset)", $0.element) }
        }
        return transformers.flatMap { prefix, transformer in
            transformer.blocks.enumerated().flatMap { j, block in
                [("attn1", block.attn1), ("attn2", block.attn2)].flatMap { attention, a in
                    [("to_q", a.toQ), ("to_k", a.toK), ("to_v", a.toV), ("to_out.0", a.toOut)].map { projection, layer in
                        (name: "\(prefix).transformer_blocks.\(j).\(attention).\(projection)", layer: layer)
                    }
                }
            }
        }
    }

    /// Freezes every parameter and attaches a LoRA adapter of `rank` (scale α/r) to every attention
    /// projection. - Returns: the adapters' parameters under peft's names
    /// (`….to_q.lora_A.weight`), the only ones that train.
    /// - Precondition: the UNet has attention layers.
    public func attachLowRankAdapters(rank: Int, alpha: Float, rng: inout RNG) -> [(name: String, parameter: Parameter)] {
        let projections = attentionProjections
        precondition(!projections.isEmpty, "UNet2DConditionModel: LoRA adapts attention projections and this UNet has none")
        setRequiresGradient(false)
        return projections.flatMap { name, layer in prefixed(name, layer.attach(rank: rank, alpha: alpha, rng: &rng)) }
    }

    /// The parameters of the attached LoRA adapters (empty without any).
    public var lowRankAdapterParameters: [(name: String, parameter: Parameter)] {
        attentionProjections.flatMap { name, layer in layer.adapter.map { prefixed(name, $0) } ?? [] }
    }

    /// Every parameter's value with the attached adapters' terms folded in (what a merge would
    /// give), the adapters left attached: the weights a tuning run writes between epochs.
    public var namedValuesWithAdaptersMerged: [(name: String, value: Tensor)] {
        var deltas: [String: Tensor] = [:]
        for (name, layer) in attentionProjections { if let a = layer.adapter { deltas[name + ".weight"] = a.delta } }
        return namedParameters.map { name, p in (name, deltas[name].map { p.value + $0 } ?? p.value) }
    }

    /// Folds every attached adapter into its projection's weight (W += (α/r)·B·A) and removes it:
    /// afterwards the UNet is a plain one that saves and loads as such; all parameters train again.
    public func mergeLowRankAdapters() {
        for (_, layer) in attentionProjections { layer.mergeAdapter() }
        setRequiresGradient(true)
    }
}
