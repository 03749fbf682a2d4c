import COpenBLAS

/// Matrix products: single-precision GEMM through OpenBLAS (`cblas_sgemm`).
///
/// Everything is row-major. `op(X)` is `X` or `Xᵀ`; leading dimensions are the distance between
/// consecutive rows of the matrix *as stored*, so a head's `[L, d]` slice of a `[L, heads·d]`
/// activation is used in place with `ld = heads·d`.
public enum Matmul {
    /// `C ← α·op(A)·op(B) + β·C` with `op(A)`: `[m, k]`, `op(B)`: `[k, n]`, `C`: `[m, n]`.
    ///
    /// - Parameters:
    ///   - a: `A` as stored: `[m, k]` rows of `lda ≥ k` values, or `[k, m]` rows of `lda ≥ m` when
    ///     `transposeA`.
    ///   - b: `B` as stored: `[k, n]` (`ldb ≥ n`), or `[n, k]` (`ldb ≥ k`) when `transposeB`.
    ///   - c: `[m, n]`, rows of `ldc ≥ n`. With `beta == 0` its old contents are ignored (NaNs too).
    /// - Complexity: 2·m·n·k flops, on `BLAS.threadCount` threads.
    public static func sgemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0, "Matmul.sgemm: sizes must be non-negative, got m \(m), n \(n), k \(k)")
        precondition(lda >= max(1, transposeA ? m : k), "Matmul.sgemm: lda \(lda) < \(transposeA ? "m" : "k") = \(transposeA ? m : k)")
        precondition(ldb >= max(1, transposeB ? k : n), "Matmul.sgemm: ldb \(ldb) < \(transposeB ? "k" : "n") = \(transposeB ? k : n)")
        precondition(ldc >= max(1, n), "Matmul.sgemm: ldc \(ldc) < n = \(n)")
        if m == 0 || n == 0 { return }
        if k == 0 {  // an empty sum: C ← β·C (β = 0 overwrites, as BLAS does)
            for i in 0..<m {
                for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] }
            }
            return
        }
        BLAS.configure()
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `α·op(a)·op(b)` for rank-2 tensors: `op(a)` `[m, k]`, `op(b)` `[k, n]` → `[m, n]`.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false,
                              alpha: Float = 1) -> Tensor {
        a.checkRank(2, "[rows, columns]", "Matmul.matmul (a)")
        b.checkRank(2, "[rows, columns]", "Matmul.matmul (b)")
        let (m, k) = transposeA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
        let (kb, n) = transposeB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
        precondition(k == kb, "Matmul.matmul: op(a) is [\(m), \(k)] but op(b) is [\(kb), \(n)]")
        var c = Tensor.zeros([m, n])
        if m == 0 || n == 0 || k == 0 { return c }
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                c.withUnsafeMutableBufferPointer { pc in
                    sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                          a: pa.baseAddress!, lda: max(1, a.shape[1]), b: pb.baseAddress!, ldb: max(1, b.shape[1]),
                          c: pc.baseAddress!, ldc: max(1, n))
                }
            }
        }
        return c
    }

    /// `y ← α·op(A)·x + β·y` with `A` stored `[m, n]` (rows of `lda ≥ n`): `op(A)·x` is `[m]` from
    /// `x` `[n]`, or with `transposeA` `[n]` from `x` `[m]`.
    public static func sgemv(transposeA: Bool = false, m: Int, n: Int, alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             x: UnsafePointer<Float>, beta: Float = 0, y: UnsafeMutablePointer<Float>) {
        precondition(m >= 0 && n >= 0 && lda >= max(1, n), "Matmul.sgemv: m \(m), n \(n), lda \(lda) are not valid")
        let outCount = transposeA ? n : m, inCount = transposeA ? m : n
        if outCount == 0 { return }
        if inCount == 0 {
            for i in 0..<outCount { y[i] = beta == 0 ? 0 : beta * y[i] }
            return
        }
        BLAS.configure()
        cblas_sgemv(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    /// `sums[j] += Σᵢ a[i, j]` for `a` `[rows, columns]` (a bias gradient: the column sums of ∂L/∂y).
    public static func accumulateColumnSums(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
        let ones = [Float](repeating: 1, count: max(1, rows))
        ones.withUnsafeBufferPointer { sgemv(transposeA: true, m: rows, n: columns, a: a, lda: max(1, columns), x: $0.baseAddress!, beta: 1, y: sums) }
    }

    /// `sums[i] += Σⱼ a[i, j]` for `a` `[rows, columns]` (a convolution's bias gradient per channel).
    public static func accumulateRowSums(_ a: UnsafePointer<Float>, rows: Int, columns: Int, into sums: UnsafeMutablePointer<Float>) {
        let ones = [Float](repeating: 1, count: max(1, columns))
        ones.withUnsafeBufferPointer { sgemv(m: rows, n: columns, a: a, lda: max(1, columns), x: $0.baseAddress!, beta: 1, y: sums) }
    }
}
