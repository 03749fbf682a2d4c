import KilnCore

/// A fully connected layer, `torch.nn.Linear`: `y = x·Wᵀ + b` over the last axis.
///
/// Parameters: `weight` `[out, in]`, `bias` `[out]` (optional). Input `[…, in]` → output `[…, out]`;
/// every leading axis is a batch axis. One `sgemm` forward, two backward (plus a `sgemv` for the
/// bias).
public final class Linear: Module {
    public let inFeatures: Int
    public let outFeatures: Int
    /// `[out, in]`.
    public let weight: Parameter
    /// `[out]`, or nil without bias.
    public let bias: Parameter?
    /// A LoRA adapter whose term the passes add (`attach(rank:alpha:rng:)`), or nil.
    public internal(set) var adapter: LowRankAdapter?
    /// Whether the passes add the adapter's term (a model and its adapted copy sharing one layer:
    /// variational score distillation's particle model).
    public var adapterEnabled = true

    /// PyTorch's default initialisation: weight and bias uniform in ±1/√in.
    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, rng: inout RNG) {
        precondition(inFeatures > 0 && outFeatures > 0, "Linear: features must be positive, got \(inFeatures) → \(outFeatures)")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        let bound = 1 / Float(inFeatures).squareRoot()
        self.weight = Parameter(.uniform([outFeatures, inFeatures], in: -bound...bound, rng: &rng))
        self.bias = bias ? Parameter(.uniform([outFeatures], in: -bound...bound, rng: &rng)) : nil
    }

    /// A layer with the given weight `[out, in]` and bias `[out]`.
    public init(weight: Tensor, bias: Tensor?) {
        weight.checkRank(2, "[out, in]", "Linear weight")
        self.outFeatures = weight.shape[0]
        self.inFeatures = weight.shape[1]
        bias?.checkShape([outFeatures], "Linear bias")
        self.weight = Parameter(weight)
        self.bias = bias.map(Parameter.init)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    func checkInput(_ x: Tensor, _ operation: String) {
        precondition(x.rank >= 1 && x.shape.last == inFeatures,
                     "\(operation): expected input [..., \(inFeatures)], got \(x.shape)")
    }

    /// `[…, in]` → `[…, out]`.
    public func forward(_ x: Tensor) -> Tensor {
        checkInput(x, "Linear.forward")
        let rows = x.count / inFeatures
        var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [outFeatures])
        if rows == 0 { return y }
        let (i, o) = (inFeatures, outFeatures)
        y.withUnsafeMutableBufferPointer { py in
            let out = py.baseAddress!
            if let bias {
                bias.value.withUnsafeBufferPointer { pb in
                    for r in 0..<rows { (out + r * o).update(from: pb.baseAddress!, count: o) }
                }
            }
            x.withUnsafeBufferPointer { px in
                weight.value.withUnsafeBufferPointer { pw in
                    Matmul.sgemm(transposeB: true, m: rows, n: o, k: i, a: px.baseAddress!, lda: i,
                                 b: pw.baseAddress!, ldb: i, beta: bias == nil ? 0 : 1, c: out, ldc: o)
                }
            }
        }
        if let adapter, adapterEnabled { y += adapter.forward(x) }
        return y
    }

    /// Given the forward's input and ∂L/∂y `[…, out]`, adds ∂L/∂W and ∂L/∂b into the parameters'
    /// gradients and returns ∂L/∂x `[…, in]`.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        accumulateOwnParameterGradients(input: x, outputGradient: dy)
        let rows = x.count / inFeatures
        var dx = Tensor(uninitializedShape: x.shape)
        if rows == 0 { return dx }
        let (i, o) = (inFeatures, outFeatures)
        dy.withUnsafeBufferPointer { pdy in
            weight.value.withUnsafeBufferPointer { pw in
                dx.withUnsafeMutableBufferPointer { pdx in
                    // dx[r, i] = Σ_o dy[r, o]·W[o, i]
                    Matmul.sgemm(m: rows, n: i, k: o, a: pdy.baseAddress!, lda: o, b: pw.baseAddress!, ldb: i,
                                 c: pdx.baseAddress!, ldc: i)
                }
            }
        }
        if let adapter, adapterEnabled { dx += adapter.backward(input: x, outputGradient: dy, inputGradient: true)! }
        return dx
    }

    /// The parameter half of `backward`, for a layer whose input needs no gradient (nothing for a
    /// frozen parameter: see `Parameter.requiresGradient`).
    public func accumulateParameterGradients(input x: Tensor, outputGradient dy: Tensor) {
        accumulateOwnParameterGradients(input: x, outputGradient: dy)
        if let adapter, adapterEnabled { _ = adapter.backward(input: x, outputGradient: dy, inputGradient: false) }
    }

    /// ∂L/∂W and ∂L/∂b, without the adapter's.
    func accumulateOwnParameterGradients(input x: Tensor, outputGradient dy: Tensor) {
        checkInput(x, "Linear.backward (input)")
        dy.checkShape(x.shape.dropLast().map { $0 } + [outFeatures], "Linear.backward (output gradient)")
        let rows = x.count / inFeatures
        if rows == 0 { return }
        let (i, o) = (inFeatures, outFeatures)
        dy.withUnsafeBufferPointer { pdy in
            if weight.requiresGradient {
                x.withUnsafeBufferPointer { px in
                    weight.gradient.withUnsafeMutableBufferPointer { pgw in
                        // dW[o, i] += Σ_r dy[r, o]·x[r, i]
                        Matmul.sgemm(transposeA: true, m: o, n: i, k: rows, a: pdy.baseAddress!, lda: o,
                                     b: px.baseAddress!, ldb: i, beta: 1, c: pgw.baseAddress!, ldc: i)
                    }
                }
            }
            guard let bias, bias.requiresGradient else { return }
            bias.gradient.withUnsafeMutableBufferPointer { pgb in
                Matmul.accumulateColumnSums(pdy.baseAddress!, rows: rows, columns: o, into: pgb.baseAddress!)
            }
        }
    }
}
