import KilnCore
import Testing
@testable import KilnNN

@Suite("Matmul: OpenBLAS sgemm against the reference loop")
struct MatmulTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var m, n, k: Int
        var transposeA, transposeB: Bool
        var alpha, beta: Float
        var pad: Int  // extra leading-dimension slack, as for a head's slice of a wider activation
        var threads = 1
        var testDescription: String { "\(m)×\(k)·\(k)×\(n) tA \(transposeA) tB \(transposeB) α \(alpha) β \(beta) pad \(pad) threads \(threads)" }
    }

    static let cases: [Case] = {
        var list: [Case] = [
            Case(m: 1, n: 1, k: 1, transposeA: false, transposeB: false, alpha: 1, beta: 0, pad: 0),
            Case(m: 1, n: 1, k: 1, transposeA: true, transposeB: true, alpha: -2, beta: 0.5, pad: 3),
            Case(m: 64, n: 64, k: 64, transposeA: false, transposeB: false, alpha: 1, beta: 0, pad: 0),
        ]
        var rng = RNG(seed: 11)
        for i in 0..<12 {
            list.append(Case(m: 1 + Int(rng.next() % 37), n: 1 + Int(rng.next() % 41), k: 1 + Int(rng.next() % 53),
                             transposeA: i % 2 == 1, transposeB: i / 2 % 2 == 1,
                             alpha: [1, 0.5, -1.5][i % 3], beta: [0, 1, -0.25][i / 3 % 3], pad: i % 4 == 3 ? 5 : 0))
        }
        // Large enough to be split into column blocks (n ≥ m) or row blocks (m > n), 2 and 3 ways.
        for (i, (m, n, k)) in [(37, 301, 211), (301, 45, 197), (130, 130, 130), (17, 500, 300)].enumerated() {
            for threads in [2, 3] {
                list.append(Case(m: m, n: n, k: k, transposeA: i % 2 == 1, transposeB: (i + threads) % 2 == 1,
                                 alpha: threads == 2 ? 1 : -0.5, beta: i == 2 ? 0.5 : 0, pad: i == 3 ? 7 : 0, threads: threads))
            }
        }
        return list
    }()

    @Test("sgemm equals the float64 reference", arguments: cases)
    func sgemm(_ c: Case) {
        let (rowsA, colsA) = c.transposeA ? (c.k, c.m) : (c.m, c.k)
        let (rowsB, colsB) = c.transposeB ? (c.n, c.k) : (c.k, c.n)
        let lda = colsA + c.pad, ldb = colsB + c.pad, ldc = c.n + c.pad
        let a = randomValues(rowsA * lda, seed: 1), b = randomValues(rowsB * ldb, seed: 2), c0 = randomValues(c.m * ldc, seed: 3)
        var expected = c0
        NNReference.gemm(transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: Double(c.alpha),
                         a: a, lda: lda, b: b, ldb: ldb, beta: Double(c.beta), c: &expected, ldc: ldc)
        let fa = a.map(Float.init), fb = b.map(Float.init)
        var fc = c0.map(Float.init)
        Matmul.sgemm(transposeA: c.transposeA, transposeB: c.transposeB, m: c.m, n: c.n, k: c.k, alpha: c.alpha,
                     a: fa, lda: lda, b: fb, ldb: ldb, beta: c.beta, c: &fc, ldc: ldc, threads: c.threads)
        #expect(c.threads == 1 || 2 * c.m * c.n * c.k >= Matmul.parallelFlops)
        expectClose(fc.map(Double.init), expected, tolerance: 1e-5, "sgemm")
        // The padding between rows of C is never written.
        if c.pad > 0 { for i in 0..<c.m { for j in c.n..<ldc { #expect(fc[i * ldc + j] == Float(c0[i * ldc + j])) } } }
    }

    @Test("Tensor matmul with transposes; empty inner dimension gives zeros")
    func tensorMatmul() {
        let a = tensor(randomValues(15, seed: 4), [3, 5]), b = tensor(randomValues(20, seed: 5), [5, 4])
        var expected = [Double](repeating: 0, count: 12)
        NNReference.gemm(transposeA: false, transposeB: false, m: 3, n: 4, k: 5, alpha: 1, a: doubles(a), lda: 5, b: doubles(b), ldb: 4,
                         beta: 0, c: &expected, ldc: 4)
        expectClose(Matmul.matmul(a, b), expected, tolerance: 1e-6, "a·b")
        expectClose(Matmul.matmul(b, a, transposeA: true, transposeB: true).permuted([1, 0]), expected, tolerance: 1e-6, "(bᵀ·aᵀ)ᵀ")
        #expect(Matmul.matmul(Tensor.zeros([3, 0]), Tensor.zeros([0, 2])) == Tensor.zeros([3, 2]))
    }

    @Test("β = 0 ignores what C held, NaNs included (layers write into uninitialised outputs)")
    func betaZeroOverwrites() {
        var c = [Float](repeating: .nan, count: 6)
        Matmul.sgemm(m: 2, n: 3, k: 2, a: [1, 2, 3, 4], lda: 2, b: [1, 0, 2, 0, 1, 3], ldb: 3, c: &c, ldc: 3)
        #expect(c == [1, 2, 8, 3, 4, 18])
        var empty = [Float](repeating: .nan, count: 4)
        Matmul.sgemm(m: 2, n: 2, k: 0, a: [0], lda: 1, b: [0], ldb: 2, c: &empty, ldc: 2)
        #expect(empty == [0, 0, 0, 0])
    }

    @Test("products on the AVX-512 kernel's block edges: rows, columns and depth past its tiles and blocks, all transposes",
          arguments: [(13, 33, 17, Float(0)), (100, 40, 520, 0.5), (13, 2060, 260, 0), (12, 32, 256, -1), (8, 47, 16, 0)])
    func ownKernelEdges(m: Int, n: Int, k: Int, beta: Float) {
        for (transposeA, transposeB) in [(false, false), (true, false), (false, true), (true, true)] {
            let (rowsA, colsA) = transposeA ? (k, m) : (m, k), (rowsB, colsB) = transposeB ? (n, k) : (k, n)
            let (lda, ldb, ldc) = (colsA + 3, colsB + 1, n + 5)
            let a = randomValues(rowsA * lda, seed: 4), b = randomValues(rowsB * ldb, seed: 5)
            // β = 0 must overwrite C without reading it: start from NaNs there.
            let c0 = beta == 0 ? [Double](repeating: .nan, count: m * ldc) : randomValues(m * ldc, seed: 6)
            var expected = c0.map { $0.isNaN ? 0 : $0 }
            NNReference.gemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1.5, a: a, lda: lda, b: b, ldb: ldb,
                             beta: Double(beta), c: &expected, ldc: ldc)
            var c = c0.map(Float.init)
            Matmul.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: 1.5, a: a.map(Float.init), lda: lda,
                         b: b.map(Float.init), ldb: ldb, beta: beta, c: &c, ldc: ldc, threads: 1)
            var worst = 0.0
            for i in 0..<m {
                for j in 0..<n { worst = max(worst, abs(Double(c[i * ldc + j]) - expected[i * ldc + j]) / (1 + abs(expected[i * ldc + j]))) }
                for j in n..<ldc where !c0[i * ldc + j].isNaN { #expect(c[i * ldc + j] == Float(c0[i * ldc + j]), "padding (\(i), \(j)) written") }
            }
            #expect(worst <= 1e-4, "tA \(transposeA) tB \(transposeB): worst relative error \(worst)")
        }
    }

    @Test("A·B plus a bias per row, on Kiln's kernel and on the fill-then-add path", arguments: [(20, 70, 300), (20, 7, 30)])
    func rowBias(m: Int, n: Int, k: Int) {
        let (lda, ldb, ldc) = (k + 1, n + 2, n + 3)
        let a = randomValues(m * lda, seed: 7), b = randomValues(k * ldb, seed: 8), bias = randomValues(m, seed: 9)
        var expected = [Double](repeating: 0, count: m * ldc)
        for i in 0..<m { for j in 0..<n { expected[i * ldc + j] = bias[i] } }
        NNReference.gemm(transposeA: false, transposeB: false, m: m, n: n, k: k, alpha: 1, a: a, lda: lda, b: b, ldb: ldb,
                         beta: 1, c: &expected, ldc: ldc)
        var c = [Float](repeating: .nan, count: m * ldc)
        Matmul.sgemmAddingRowBias(m: m, n: n, k: k, a: a.map(Float.init), lda: lda, b: b.map(Float.init), ldb: ldb,
                                  bias: bias.map(Float.init), c: &c, ldc: ldc)
        for i in 0..<m {
            for j in 0..<n { #expect(abs(Double(c[i * ldc + j]) - expected[i * ldc + j]) <= 1e-4 * (1 + abs(expected[i * ldc + j]))) }
            for j in n..<ldc { #expect(c[i * ldc + j].isNaN, "padding written") }
        }
    }

    @Test("large products use Kiln's thread count")
    func threads() {
        #expect(BLAS.threadCount == Parallel.defaultThreadCount)
        #expect(!BLAS.configuration.isEmpty)
    }
}
