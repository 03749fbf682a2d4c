import KilnCore

/// A lookup table, `torch.nn.Embedding`: row `i` of `weight` `[count, dim]` for each index.
/// CLIP's token and position embeddings are two of these (positions index 0..<L).
public final class Embedding: Module {
    public let count: Int
    public let dim: Int
    /// `[count, dim]`.
    public let weight: Parameter

    /// PyTorch's default initialisation: N(0, 1).
    public init(count: Int, dim: Int, rng: inout RNG) {
        precondition(count > 0 && dim > 0, "Embedding: table size \(count) × \(dim) must be positive")
        self.count = count
        self.dim = dim
        self.weight = Parameter(.random([count, dim], rng: &rng))
    }

    /// A table with the given rows `[count, dim]`.
    public init(weight: Tensor) {
        weight.checkRank(2, "[count, dim]", "Embedding weight")
        self.count = weight.shape[0]
        self.dim = weight.shape[1]
        self.weight = Parameter(weight)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { [("weight", weight)] }

    func check(_ indices: [Int], _ shape: [Int], _ operation: String) {
        precondition(Tensor.elementCount(shape) == indices.count,
                     "\(operation): \(indices.count) indices do not fill shape \(shape)")
        if let bad = indices.first(where: { $0 < 0 || $0 >= count }) {
            preconditionFailure("\(operation): index \(bad) is outside the table of \(count) rows")
        }
    }

    /// Rows for `indices` laid out as `shape` (for example `[B, L]` token ids) → `shape + [dim]`.
    public func forward(indices: [Int], shape: [Int]) -> Tensor {
        check(indices, shape, "Embedding.forward")
        var y = Tensor(uninitializedShape: shape + [dim])
        let d = dim
        weight.value.withUnsafeBufferPointer { pw in
            y.withUnsafeMutableBufferPointer { py in
                for (i, index) in indices.enumerated() { (py.baseAddress! + i * d).update(from: pw.baseAddress! + index * d, count: d) }
            }
        }
        return y
    }

    /// Adds ∂L/∂y `shape + [dim]` into the rows of `weight.gradient` that `indices` used (repeated
    /// indices accumulate). Indices have no gradient.
    public func backward(indices: [Int], outputGradient dy: Tensor) {
        precondition(dy.rank >= 1 && dy.shape.last == dim, "Embedding.backward: expected gradient [..., \(dim)], got \(dy.shape)")
        check(indices, Array(dy.shape.dropLast()), "Embedding.backward")
        guard weight.requiresGradient else { return }
        let d = dim
        dy.withUnsafeBufferPointer { pdy in
            weight.gradient.withUnsafeMutableBufferPointer { pg in
                for (i, index) in indices.enumerated() {
                    let row = pg.baseAddress! + index * d
                    VectorMath.map2(row, pdy.baseAddress! + i * d, row, 0..<d) { $0 + $1 }
                }
            }
        }
    }
}
