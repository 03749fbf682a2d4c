import KilnCore

/// diffusers' `GEGLU` (the feed-forward input of `BasicTransformerBlock`): h = proj(x) with
/// `proj` a `Linear(in, 2·out)`, split into halves a | gate along the last axis, y = a·gelu(gate)
/// (exact GELU). Parameters `proj.weight` `[2·out, in]`, `proj.bias` `[2·out]`.
/// Input `[…, in]` → `[…, out]`.
public final class GEGLU: Module {
    public let proj: Linear
    public let inFeatures: Int
    public let outFeatures: Int

    /// What `backward` needs: the input and the projection h `[…, 2·out]`.
    public struct Saved: Sendable {
        public var input: Tensor
        public var projection: Tensor
    }

    public init(inFeatures: Int, outFeatures: Int, bias: Bool = true, rng: inout RNG) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.proj = Linear(inFeatures: inFeatures, outFeatures: 2 * outFeatures, bias: bias, rng: &rng)
    }

    /// A GEGLU around an existing projection `Linear(in, 2·out)`.
    public init(proj: Linear) {
        precondition(proj.outFeatures % 2 == 0, "GEGLU: projection width \(proj.outFeatures) is odd")
        self.proj = proj
        self.inFeatures = proj.inFeatures
        self.outFeatures = proj.outFeatures / 2
    }

    public var namedParameters: [(name: String, parameter: Parameter)] { prefixed("proj", proj) }

    /// `[…, in]` → `[…, out]`.
    public func forward(_ x: Tensor) -> Tensor { forwardForTraining(x).output }

    /// The forward pass, also returning what `backward` needs.
    public func forwardForTraining(_ x: Tensor) -> (output: Tensor, saved: Saved) {
        let h = proj.forward(x)
        let o = outFeatures
        let rows = h.count / (2 * o)
        var y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [o])
        if rows > 0 {
            h.withUnsafeBufferPointer { ph in
                y.withUnsafeMutableBufferPointer { py in
                    nonisolated(unsafe) let (src, dst) = (ph.baseAddress!, py.baseAddress!)
                    VectorMath.forChunks(rows, threshold: rows * o >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                        for r in range {
                            VectorMath.map2(src + r * 2 * o, src + r * 2 * o + o, dst + r * o, 0..<o) { a, gate in a * GELU.value(gate, .none) }
                        }
                    }
                }
            }
        }
        return (y, Saved(input: x, projection: h))
    }

    /// Adds ∂L/∂W and ∂L/∂b of `proj` into its gradients and returns ∂L/∂x `[…, in]`.
    public func backward(_ saved: Saved, outputGradient dy: Tensor) -> Tensor {
        let o = outFeatures
        dy.checkShape(saved.input.shape.dropLast().map { $0 } + [o], "GEGLU.backward (output gradient)")
        let rows = dy.count / max(1, o)
        var dh = Tensor(uninitializedShape: saved.projection.shape)
        if rows > 0 {
            saved.projection.withUnsafeBufferPointer { ph in
                dy.withUnsafeBufferPointer { pdy in
                    dh.withUnsafeMutableBufferPointer { pdh in
                        nonisolated(unsafe) let (h, g, out) = (ph.baseAddress!, pdy.baseAddress!, pdh.baseAddress!)
                        VectorMath.forChunks(rows, threshold: rows * o >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                            for r in range {
                                let a = h + r * 2 * o, gate = a + o, gr = g + r * o
                                // ∂L/∂a = dy·gelu(gate); ∂L/∂gate = dy·a·gelu′(gate)
                                VectorMath.map2(gate, gr, out + r * 2 * o, 0..<o) { z, d in d * GELU.value(z, .none) }
                                VectorMath.map2(gate, gr, out + r * 2 * o + o, 0..<o) { z, d in d * GELU.derivative(z, .none) }
                                VectorMath.map2(out + r * 2 * o + o, a, out + r * 2 * o + o, 0..<o) { $0 * $1 }
                            }
                        }
                    }
                }
            }
        }
        return proj.backward(input: saved.input, outputGradient: dh)
    }
}
