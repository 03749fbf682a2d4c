import KilnNN

extension Module {
    /// Replaces every parameter with the tensor of the same name (F32, or F16 and BF16 kept 16-bit
    /// in memory), as a diffusers
    /// model folder stores them (`diffusion_pytorch_model.safetensors`, a variant or shards: see
    /// `ComponentWeights`).
    /// - Parameter model: what the weights are for, in errors ("UNet", "VAE").
    /// - Throws: `SafeTensorsError` for a missing tensor or a shape mismatch; `PriorConfigError`
    ///   when the files hold tensors this model does not have (its config.json describes a
    ///   different network).
    func loadDiffusersWeights(from weights: ComponentWeights, model: String) throws {
        let named = namedParameters
        for (name, parameter) in named {
            try weights.load(name, into: parameter)
        }
        let known = Set(named.map(\.name))
        let extra = weights.names.filter { !known.contains($0) }.sorted()
        if !extra.isEmpty {
            throw PriorConfigError(source: weights.source, key: nil,
                                   problem: "holds \(extra.count) tensor(s) the \(model) described by config.json does not have (\(extra.prefix(3).joined(separator: ", "))\(extra.count > 3 ? ", …" : ""))",
                                   fix: "use the config.json saved with these weights")
        }
    }
}
