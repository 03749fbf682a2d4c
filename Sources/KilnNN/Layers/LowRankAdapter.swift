import KilnCore

/// LoRA (Hu et al. 2021) on a `Linear`: y = W·x + b + (α/r)·B·A·x with A `[r, in]` and B `[out, r]`
/// trained while W and b stay frozen. B starts at zero, so an attached adapter changes nothing
/// until it is trained; A starts as PyTorch's default `Linear` initialisation (peft's too).
///
/// Attach with `Linear.attach(rank:alpha:rng:)`; the layer's forward and backward passes then add
/// the adapter's term and accumulate its gradients. `Linear.mergeAdapter()` folds (α/r)·B·A into W
/// and removes the adapter, so a tuned model saves as a plain one. The adapter's parameters are
/// not among the layer's `namedParameters` (a weights file never holds them): reach them through
/// `namedParameters` here, under peft's names (`lora_A.weight`, `lora_B.weight`).
public final class LowRankAdapter: Module {
    /// A: `[rank, in]`.
    public let down: Linear
    /// B: `[out, rank]`.
    public let up: Linear
    public let rank: Int
    /// α/r.
    public let scale: Float

    init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, rng: inout RNG) {
        precondition(rank > 0 && rank <= min(inFeatures, outFeatures), "LowRankAdapter: rank \(rank) must be 1…\(min(inFeatures, outFeatures))")
        down = Linear(inFeatures: inFeatures, outFeatures: rank, bias: false, rng: &rng)
        up = Linear(weight: Tensor.zeros([outFeatures, rank]), bias: nil)
        self.rank = rank
        scale = alpha / Float(rank)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        prefixed("lora_A", down) + prefixed("lora_B", up)
    }

    /// (α/r)·B·A·x, `[…, out]`.
    func forward(_ x: Tensor) -> Tensor { up.forward(down.forward(x)) * scale }

    /// Accumulates ∂L/∂A and ∂L/∂B and returns the adapter's share of ∂L/∂x (or nil with
    /// `inputGradient` false).
    func backward(input x: Tensor, outputGradient dy: Tensor, inputGradient: Bool) -> Tensor? {
        let h = down.forward(x)
        let dh = up.backward(input: h, outputGradient: dy * scale)
        if inputGradient { return down.backward(input: x, outputGradient: dh) }
        down.accumulateParameterGradients(input: x, outputGradient: dh)
        return nil
    }

    /// (α/r)·B·A, `[out, in]`.
    public var delta: Tensor {
        let (a, b) = (down.weight.value, up.weight.value)
        let (o, r, i) = (b.shape[0], rank, a.shape[1])
        var d = Tensor.zeros([o, i])
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                d.withUnsafeMutableBufferPointer { pd in
                    Matmul.sgemm(m: o, n: i, k: r, alpha: scale, a: pb.baseAddress!, lda: r, b: pa.baseAddress!, ldb: i,
                                 c: pd.baseAddress!, ldc: i)
                }
            }
        }
        return d
    }
}

extension Linear {
    /// Attaches a fresh LoRA adapter of `rank` (replacing any) and freezes the layer's own weight
    /// and bias. - Returns: the adapter.
    @discardableResult
    public func attach(rank: Int, alpha: Float, rng: inout RNG) -> LowRankAdapter {
        let a = LowRankAdapter(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank, alpha: alpha, rng: &rng)
        adapter = a
        weight.requiresGradient = false
        bias?.requiresGradient = false
        return a
    }

    /// Folds the adapter into the weight (W += (α/r)·B·A) and removes it; the weight and bias
    /// train again. Nothing happens without an adapter.
    public func mergeAdapter() {
        guard let a = adapter else { return }
        let delta = a.delta
        delta.withUnsafeBufferPointer { pd in
            weight.withUnsafeMutableValue { pw in for i in 0..<pw.count { pw[i] += pd[i] } }
        }
        adapter = nil
        weight.requiresGradient = true
        bias?.requiresGradient = true
    }
}
