import RealModule

/// The GELU variants: the exact form `x·Φ(x)` (PyTorch `approximate="none"`, diffusers' GEGLU) and
/// the tanh approximation `½x(1 + tanh(√(2/π)(x + 0.044715x³)))` (`approximate="tanh"`).
public enum GELUApproximation: String, Sendable, Codable, CaseIterable {
    case none
    case tanh
}

extension NNReference {
    // MARK: Pointwise functions and derivatives

    /// σ(x) = 1/(1 + e⁻ˣ).
    public static func sigmoid<R: Real & BinaryFloatingPoint>(_ x: R) -> R { 1 / (1 + R.exp(-x)) }

    /// SiLU (swish): x·σ(x).
    public static func silu<R: Real & BinaryFloatingPoint>(_ x: R) -> R { x * sigmoid(x) }
    /// d silu/dx = σ(x)·(1 + x·(1 − σ(x))).
    public static func siluDerivative<R: Real & BinaryFloatingPoint>(_ x: R) -> R { let s = sigmoid(x); return s * (1 + x * (1 - s)) }

    /// GELU in the chosen form.
    public static func gelu<R: Real & BinaryFloatingPoint>(_ x: R, approximation: GELUApproximation = .none) -> R {
        switch approximation {
        case .none: return x * (1 + R.erf(x / R.sqrt(2))) / 2
        case .tanh: return x * (1 + R.tanh(tanhArgument(x))) / 2
        }
    }

    /// d gelu/dx: Φ(x) + x·φ(x) for the exact form; for the tanh form
    /// ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²) with t = tanh(√(2/π)(x + 0.044715x³)).
    public static func geluDerivative<R: Real & BinaryFloatingPoint>(_ x: R, approximation: GELUApproximation = .none) -> R {
        switch approximation {
        case .none:
            let cdf: R = (1 + R.erf(x / R.sqrt(2))) / 2
            let pdf: R = R.exp(-x * x / 2) / R.sqrt(2 * R.pi)
            return cdf + x * pdf
        case .tanh:
            let t: R = R.tanh(tanhArgument(x))
            let k: R = R.sqrt(2 / R.pi)
            let du: R = k * (1 + 3 * R(0.044715) * x * x)  // d/dx of the tanh argument
            return (1 + t) / 2 + x * (1 - t * t) / 2 * du
        }
    }

    static func tanhArgument<R: Real & BinaryFloatingPoint>(_ x: R) -> R {
        let cube: R = R(0.044715) * x * x * x
        return R.sqrt(2 / R.pi) * (x + cube)
    }

    /// CLIP's quick GELU: x·σ(1.702x).
    public static func quickGELU<R: Real & BinaryFloatingPoint>(_ x: R) -> R { x * sigmoid(R(1.702) * x) }
    /// d quickGELU/dx = σ(1.702x) + 1.702·x·σ(1.702x)·(1 − σ(1.702x)).
    public static func quickGELUDerivative<R: Real & BinaryFloatingPoint>(_ x: R) -> R {
        let s: R = sigmoid(R(1.702) * x)
        let ds: R = s * (1 - s)
        return s + R(1.702) * x * ds
    }

    // MARK: GEGLU

    /// diffusers' `GEGLU`: h = x·Wᵀ + b with weight `[2·O, I]`, split into halves a = h[:, :O] and
    /// gate = h[:, O:], output a·gelu(gate) `[M, O]` (exact GELU).
    public static func geglu<R: Real & BinaryFloatingPoint>(_ x: [R], weight: [R], bias: [R]?, rows: Int, inFeatures: Int, outFeatures: Int) -> [R] {
        let h = linear(x, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: 2 * outFeatures)
        var y = [R](repeating: 0, count: rows * outFeatures)
        for m in 0..<rows {
            for o in 0..<outFeatures {
                y[m * outFeatures + o] = h[m * 2 * outFeatures + o] * gelu(h[m * 2 * outFeatures + outFeatures + o])
            }
        }
        return y
    }

    /// Gradients of `geglu` given ∂L/∂y `[M, O]`: input `[M, I]`, weight `[2·O, I]`, bias `[2·O]`.
    public static func gegluBackward<R: Real & BinaryFloatingPoint>(_ x: [R], weight: [R], bias: [R]?, outputGradient dy: [R],
                                                                    rows: Int, inFeatures: Int, outFeatures: Int)
        -> (input: [R], weight: [R], bias: [R]) {
        let h = linear(x, weight: weight, bias: bias, rows: rows, inFeatures: inFeatures, outFeatures: 2 * outFeatures)
        var dh = [R](repeating: 0, count: h.count)
        for m in 0..<rows {
            for o in 0..<outFeatures {
                let a = h[m * 2 * outFeatures + o], gate = h[m * 2 * outFeatures + outFeatures + o]
                let g = dy[m * outFeatures + o]
                dh[m * 2 * outFeatures + o] = g * gelu(gate)
                dh[m * 2 * outFeatures + outFeatures + o] = g * a * geluDerivative(gate)
            }
        }
        return linearBackward(x, weight: weight, outputGradient: dh, rows: rows, inFeatures: inFeatures, outFeatures: 2 * outFeatures)
    }

    // MARK: Softmax

    /// Softmax over each row of `[M, N]`: exp(x − max) / Σ exp(x − max). With `causal` the rows are
    /// stacked `[N, N]` score blocks and row r sees columns 0…(r mod N) only: the others count as
    /// −∞ (probability 0).
    public static func softmax<R: Real & BinaryFloatingPoint>(_ x: [R], rows: Int, columns: Int, causal: Bool = false) -> [R] {
        var y = [R](repeating: 0, count: x.count)
        for i in 0..<rows {
            let limit = causal ? min(columns, i % columns + 1) : columns  // row i of each [L, L] block sees 0...i
            var m = -R.infinity
            for j in 0..<limit { m = max(m, x[i * columns + j]) }
            var s: R = 0
            for j in 0..<limit { s += R.exp(x[i * columns + j] - m) }
            for j in 0..<limit { y[i * columns + j] = R.exp(x[i * columns + j] - m) / s }
        }
        return y
    }

    /// Gradient of `softmax` from its output y: dx = y ⊙ (dy − Σⱼ dyⱼ·yⱼ), per row.
    public static func softmaxBackward<R: Real & BinaryFloatingPoint>(output y: [R], outputGradient dy: [R], rows: Int, columns: Int) -> [R] {
        var dx = [R](repeating: 0, count: y.count)
        for i in 0..<rows {
            var dot: R = 0
            for j in 0..<columns { dot += dy[i * columns + j] * y[i * columns + j] }
            for j in 0..<columns { dx[i * columns + j] = y[i * columns + j] * (dy[i * columns + j] - dot) }
        }
        return dx
    }

    // MARK: Nearest upsampling

    /// Nearest-neighbour upsampling by an integer factor: x `[N, C, H, W]` → `[N, C, sH, sW]`,
    /// y[n, c, i, j] = x[n, c, ⌊i/s⌋, ⌊j/s⌋].
    public static func upsampleNearest<R: BinaryFloatingPoint>(_ x: [R], planes: Int, height: Int, width: Int, factor s: Int) -> [R] {
        var y = [R](repeating: 0, count: x.count * s * s)
        for p in 0..<planes {
            for i in 0..<(height * s) {
                for j in 0..<(width * s) {
                    y[(p * height * s + i) * width * s + j] = x[(p * height + i / s) * width + j / s]
                }
            }
        }
        return y
    }

    /// Gradient of `upsampleNearest`: each input value receives the sum over its s×s block.
    public static func upsampleNearestBackward<R: BinaryFloatingPoint>(outputGradient dy: [R], planes: Int, height: Int, width: Int, factor s: Int) -> [R] {
        var dx = [R](repeating: 0, count: planes * height * width)
        for p in 0..<planes {
            for i in 0..<(height * s) {
                for j in 0..<(width * s) {
                    dx[(p * height + i / s) * width + j / s] += dy[(p * height * s + i) * width * s + j]
                }
            }
        }
        return dx
    }
}
