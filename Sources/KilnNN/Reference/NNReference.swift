import RealModule

/// Plain reference implementations of KilnNN's operations: loops that follow the textbook equations,
/// over flat row-major arrays, in any precision (float64 for gradient checks).
///
/// Each fast operation in `Layers/` has a twin here with the same shapes and conventions; the tests
/// hold the two together on random inputs, and the reference against central finite differences.
/// Nothing here is fast, and nothing here is threaded.
public enum NNReference {}

// MARK: - Matrix product

extension NNReference {
    /// `C ← α·op(A)·op(B) + β·C`, row-major, with `Matmul.sgemm`'s conventions. With `β == 0` the
    /// old contents of `c` are ignored.
    public static func gemm<R: BinaryFloatingPoint>(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                                                    alpha: R, a: [R], lda: Int, b: [R], ldb: Int,
                                                    beta: R, c: inout [R], ldc: Int) {
        for i in 0..<m {
            for j in 0..<n {
                var s: R = 0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += av * bv
                }
                c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
            }
        }
    }

    // MARK: Linear

    /// `y = x·Wᵀ + b`: x `[M, I]`, weight `[O, I]`, bias `[O]` (or none) → `[M, O]`.
    public static func linear<R: BinaryFloatingPoint>(_ x: [R], weight: [R], bias: [R]?, rows: Int, inFeatures: Int, outFeatures: Int) -> [R] {
        var y = [R](repeating: 0, count: rows * outFeatures)
        for m in 0..<rows {
            for o in 0..<outFeatures {
                var s = bias?[o] ?? 0
                for i in 0..<inFeatures { s += x[m * inFeatures + i] * weight[o * inFeatures + i] }
                y[m * outFeatures + o] = s
            }
        }
        return y
    }

    /// Gradients of `linear` given ∂L/∂y `[M, O]`: input `[M, I]`, weight `[O, I]`, bias `[O]`.
    public static func linearBackward<R: BinaryFloatingPoint>(_ x: [R], weight: [R], outputGradient dy: [R],
                                                              rows: Int, inFeatures: Int, outFeatures: Int)
        -> (input: [R], weight: [R], bias: [R]) {
        var dx = [R](repeating: 0, count: rows * inFeatures)
        var dw = [R](repeating: 0, count: outFeatures * inFeatures)
        var db = [R](repeating: 0, count: outFeatures)
        for m in 0..<rows {
            for o in 0..<outFeatures {
                let g = dy[m * outFeatures + o]
                db[o] += g
                for i in 0..<inFeatures {
                    dx[m * inFeatures + i] += g * weight[o * inFeatures + i]
                    dw[o * inFeatures + i] += g * x[m * inFeatures + i]
                }
            }
        }
        return (dx, dw, db)
    }
}
