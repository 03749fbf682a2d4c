import CKilnKernels
import Foundation
import KilnCore

/// Matrix products: single-precision GEMM through OpenBLAS (`cblas_sgemm`, see `BLAS`).
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
    ///   - threads: how many blocks to split a large product into (`BLAS.threadCount` by
    ///     default; 1 inside work that is already parallel, such as one attention head).
    /// - Complexity: 2·m·n·k flops. Products of at least `parallelFlops` are cut into `threads`
    ///   blocks of C's columns (or rows, when C is taller than wide), one single-threaded product
    ///   each (Kiln's AVX-512 kernel when `ownKernelFits`, else OpenBLAS); the blocks depend only on
    ///   the sizes and `threads`, so results are reproducible for a fixed thread count.
    public static func sgemm(transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int,
                             alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int,
                             threads: Int = BLAS.threadCount) {
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
        let ta = transposeA ? BLAS.transpose : BLAS.noTranspose, tb = transposeB ? BLAS.transpose : BLAS.noTranspose
        let own = ownKernelFits(m: m, n: n, k: k)
        let blocks = 2 * m * n * k < parallelFlops ? 1 : min(threads, max(m, n) / 16)
        if blocks <= 1 {
            block(own, ta, tb, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        nonisolated(unsafe) let (a, b, c) = (a, b, c)
        if n >= m {
            // Column blocks of C: C[:, j0..<j1] = op(A)·op(B)[:, j0..<j1]. Block edges on multiples of
            // 16 columns keep the kernel's vector lanes full.
            parallelFor(blocks, threads: blocks) { range in
                for i in range {
                    let j0 = (i * n / blocks) & ~15, j1 = i == blocks - 1 ? n : ((i + 1) * n / blocks) & ~15
                    if j1 <= j0 { continue }
                    let bBlock = transposeB ? b + j0 * ldb : b + j0
                    block(own, ta, tb, Int32(m), Int32(j1 - j0), Int32(k), alpha, a, Int32(lda), bBlock, Int32(ldb),
                          beta, c + j0, Int32(ldc))
                }
            }
        } else {
            // Row blocks of C: C[i0..<i1, :] = op(A)[i0..<i1, :]·op(B).
            parallelFor(blocks, threads: blocks) { range in
                for i in range {
                    let i0 = i * m / blocks, i1 = (i + 1) * m / blocks
                    if i1 <= i0 { continue }
                    let aBlock = transposeA ? a + i0 : a + i0 * lda
                    block(own, ta, tb, Int32(i1 - i0), Int32(n), Int32(k), alpha, aBlock, Int32(lda), b, Int32(ldb),
                          beta, c + i0 * ldc, Int32(ldc))
                }
            }
        }
    }

    /// One single-threaded product: Kiln's AVX-512 kernel (`own`) or OpenBLAS.
    @inline(__always)
    static func block(_ own: Bool, _ ta: Int32, _ tb: Int32, _ m: Int32, _ n: Int32, _ k: Int32, _ alpha: Float, _ a: UnsafePointer<Float>,
                      _ lda: Int32, _ b: UnsafePointer<Float>, _ ldb: Int32, _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int32) {
        if own {
            kiln_sgemm_avx512(ta == BLAS.transpose ? 1 : 0, tb == BLAS.transpose ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, nil)
        } else {
            BLAS.library.sgemm(BLAS.rowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }

    /// C ← A·B + bias[i] on each row i, single-threaded (a convolution's output block: weights ·
    /// patches + bias). One pass over C with Kiln's kernel; else C is filled with the bias and
    /// the product added to it.
    /// - Parameters: as `sgemm`, without transposes; `bias` `[m]`.
    public static func sgemmAddingRowBias(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                                          bias: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, ldc: Int) {
        precondition(m >= 0 && n >= 0 && k >= 0 && lda >= max(1, k) && ldb >= max(1, n) && ldc >= max(1, n),
                     "Matmul.sgemmAddingRowBias: m \(m), n \(n), k \(k), lda \(lda), ldb \(ldb), ldc \(ldc) are not valid")
        if m == 0 || n == 0 { return }
        if ownKernelFits(m: m, n: n, k: k) {
            kiln_sgemm_avx512(0, 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc), bias)
            return
        }
        for i in 0..<m { (c + i * ldc).update(repeating: bias[i], count: n) }
        sgemm(m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, beta: 1, c: c, ldc: ldc, threads: 1)
    }

    /// Whether products use Kiln's AVX-512 kernel (CKilnKernels): on CPUs with AVX-512
    /// unless `KILN_SGEMM=openblas`. Measured on a 2-core AMD EPYC with AVX-512, 2 threads
    /// (`kiln-bench matmul`): square 1024 products 252 → 449 GFLOP/s against OpenBLAS 0.3.21's AVX2
    /// kernels, 3×3 convolutions at 16²–64² 174–207 → 270–307 GFLOP/s (OpenBLAS's own SkylakeX
    /// kernels: 290–350 on the convolutions). Products too narrow for its tiles stay on OpenBLAS.
    public static let useOwnKernel: Bool = kiln_sgemm_avx512_available() != 0
        && ProcessInfo.processInfo.environment["KILN_SGEMM"] != "openblas"

    /// Whether a product runs on Kiln's AVX-512 kernel: when it is in use and the product is wide
    /// enough for its 12×32 tiles.
    @inline(__always)
    /// Kiln's kernel computes 32 columns at a time, so a width just past a multiple of 32 wastes
    /// most of its last panel (40 columns, the head size of Stable Diffusion's 64² attention, run
    /// at 62% of its rate): widths that would waste more than a fifth go to OpenBLAS.
    static func ownKernelFits(m: Int, n: Int, k: Int) -> Bool {
        let padded = (n + 31) / 32 * 32
        return useOwnKernel && n >= 32 && m >= 8 && k >= 16 && 5 * (padded - n) <= padded
    }

    /// Products below this many flops run as one call: splitting them costs more in
    /// thread hand-off than it saves.
    public static let parallelFlops = 4_000_000

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
        BLAS.library.sgemv(BLAS.rowMajor, transposeA ? BLAS.transpose : BLAS.noTranspose, Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
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
