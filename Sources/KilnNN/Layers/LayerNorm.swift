import KilnCore

/// Layer normalisation over the last axis, `torch.nn.LayerNorm(D)`:
/// y = (x − μ)/√(σ² + ε)·γ + β with μ, σ² (biased) over each row of D values.
///
/// Parameters (when `elementwiseAffine`): `weight` γ `[D]` (ones), `bias` β `[D]` (zeros).
/// Input `[…, D]` → same shape. ε defaults to PyTorch's 1e-5 (diffusers' transformer blocks and
/// CLIP both use it).
///
/// Fast path: rows in parallel; the γ/β gradients are summed per chunk of rows and the chunk
/// partials added in chunk order, so results do not depend on timing.
public final class LayerNorm: Module {
    public let features: Int
    public let eps: Float
    /// γ `[D]`, or nil without affine parameters.
    public let weight: Parameter?
    /// β `[D]`, or nil without affine parameters.
    public let bias: Parameter?

    public init(features: Int, eps: Float = 1e-5, elementwiseAffine: Bool = true) {
        precondition(features > 0, "LayerNorm: features must be positive, got \(features)")
        self.features = features
        self.eps = eps
        self.weight = elementwiseAffine ? Parameter(Tensor(repeating: 1, shape: [features])) : nil
        self.bias = elementwiseAffine ? Parameter(Tensor.zeros([features])) : nil
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        guard let weight, let bias else { return [] }
        return [("weight", weight), ("bias", bias)]
    }

    func rows(_ x: Tensor, _ operation: String) -> Int {
        precondition(x.rank >= 1 && x.shape.last == features, "\(operation): expected input [..., \(features)], got \(x.shape)")
        return x.count / features
    }

    /// Mean and 1/√(σ² + ε) of one row.
    @inline(__always)
    static func statistics(_ row: UnsafePointer<Float>, _ d: Int, eps: Float) -> (mean: Float, rstd: Float) {
        let mean = Float(VectorMath.sum(row, d) / Double(d))
        let variance = VectorMath.sumOfSquaredDeviations(row, d, from: mean) / Double(d)
        return (mean, Float(1 / (variance + Double(eps)).squareRoot()))
    }

    /// `[…, D]` → same shape.
    public func forward(_ x: Tensor) -> Tensor {
        let rowCount = rows(x, "LayerNorm.forward")
        var y = Tensor(uninitializedShape: x.shape)
        if x.count == 0 { return y }
        let d = features, eps = eps
        let gamma = weight?.value.storage ?? [Float](repeating: 1, count: d)
        let beta = bias?.value.storage ?? [Float](repeating: 0, count: d)
        x.withUnsafeBufferPointer { px in
            y.withUnsafeMutableBufferPointer { py in
                nonisolated(unsafe) let (src, dst) = (px.baseAddress!, py.baseAddress!)
                VectorMath.forChunks(rowCount, threshold: x.count >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
                    gamma.withUnsafeBufferPointer { pg in
                        beta.withUnsafeBufferPointer { pb in
                            for r in range {
                                let row = src + r * d, out = dst + r * d
                                let (mean, rstd) = LayerNorm.statistics(row, d, eps: eps)
                                let m = SIMD16<Float>(repeating: mean), s = SIMD16<Float>(repeating: rstd)
                                var i = 0
                                while i + 16 <= d {
                                    let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self)
                                    let g = UnsafeRawPointer(pg.baseAddress! + i).loadUnaligned(as: SIMD16<Float>.self)
                                    let b = UnsafeRawPointer(pb.baseAddress! + i).loadUnaligned(as: SIMD16<Float>.self)
                                    UnsafeMutableRawPointer(out + i).storeBytes(of: (v - m) * s * g + b, as: SIMD16<Float>.self)
                                    i += 16
                                }
                                while i < d { out[i] = (row[i] - mean) * rstd * pg[i] + pb[i]; i += 1 }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Given the forward's input and ∂L/∂y, adds ∂L/∂γ and ∂L/∂β into the parameters' gradients
    /// and returns ∂L/∂x: dx = rstd·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·γ.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        let rowCount = rows(x, "LayerNorm.backward (input)")
        x.checkSameShape(dy, "LayerNorm.backward (output gradient)")
        var dx = Tensor(uninitializedShape: x.shape)
        if x.count == 0 { return dx }
        let d = features, eps = eps
        let gamma = weight?.value.storage ?? [Float](repeating: 1, count: d)
        let partials: [[Float]] = x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pdy in
                dx.withUnsafeMutableBufferPointer { pdx in
                    nonisolated(unsafe) let (xs, gs, out) = (px.baseAddress!, pdy.baseAddress!, pdx.baseAddress!)
                    let threads = x.count >= VectorMath.parallelThreshold ? Parallel.defaultThreadCount : 1
                    return parallelMapChunks(rowCount, threads: threads) { range -> [Float] in
                        // [Σ dy·x̂ (D values), Σ dy (D values)] over this chunk's rows.
                        var sums = [Float](repeating: 0, count: 2 * d)
                        gamma.withUnsafeBufferPointer { pg in
                            sums.withUnsafeMutableBufferPointer { ps in
                                let g = pg.baseAddress!, dGamma = ps.baseAddress!, dBeta = ps.baseAddress! + d
                                for r in range {
                                    let row = xs + r * d, grad = gs + r * d, o = out + r * d
                                    let (mean, rstd) = LayerNorm.statistics(row, d, eps: eps)
                                    var sumDxhat: Float = 0, sumDxhatXhat: Float = 0
                                    for i in 0..<d {
                                        let xhat = (row[i] - mean) * rstd
                                        let dxhat = grad[i] * g[i]
                                        sumDxhat += dxhat
                                        sumDxhatXhat += dxhat * xhat
                                        dGamma[i] += grad[i] * xhat
                                        dBeta[i] += grad[i]
                                    }
                                    let m1 = sumDxhat / Float(d), m2 = sumDxhatXhat / Float(d)
                                    for i in 0..<d {
                                        let xhat = (row[i] - mean) * rstd
                                        o[i] = rstd * (grad[i] * g[i] - m1 - xhat * m2)
                                    }
                                }
                            }
                        }
                        return sums
                    }
                }
            }
        }
        if let weight, let bias, weight.requiresGradient || bias.requiresGradient {
            weight.gradient.withUnsafeMutableBufferPointer { pw in
                bias.gradient.withUnsafeMutableBufferPointer { pb in
                    for part in partials {
                        for i in 0..<d { pw[i] += part[i]; pb[i] += part[d + i] }
                    }
                }
            }
        }
        return dx
    }
}
