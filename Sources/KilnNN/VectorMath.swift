import KilnCore

/// Vectorised float32 elementary functions on `SIMD16<Float>`, and the loop helpers that apply them
/// over buffers (in parallel above `VectorMath.parallelThreshold` values).
///
/// Scalar `exp`/`erf` from libm cost 5–20 ns a call; softmax over a 4096 × 4096 attention matrix
/// needs 16.7 M of them per head, which would dwarf the matrix products around it. These versions
/// use only adds, multiplies (fused where the build targets x86-64-v3 or arm64) and bit
/// operations, so the compiler keeps them in vector registers: 8 lanes a register on x86-64-v3,
/// 4 on the SSE2 baseline (`KILN_PORTABLE=1`).
public enum VectorMath {
    /// Elementwise kernels split work across threads from this many values on (smaller tensors
    /// are not worth the dispatch, about 10 µs).
    public static let parallelThreshold = 1 << 16

    // MARK: Functions

    /// eˣ with relative error below 3·10⁻⁷ on [−87, 88]. Below −87.34 (where float32 leaves its
    /// normal range) the result is 0, as a masked softmax entry needs; above 88 it stays at e⁸⁸
    /// (1.65·10³⁸) rather than overflowing, so σ and tanh never see ∞/∞.
    ///
    /// Cephes `expf`: n = round(x·log₂e), r = x − n·ln 2 (ln 2 split in two parts so r is exact),
    /// eʳ by a degree-7 polynomial on |r| ≤ ½ ln 2, then 2ⁿ built in the exponent bits. Rounding
    /// uses the 1.5·2²³ trick: adding it leaves round(t) in the low mantissa bits.
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let magic = SIMD16<Float>(repeating: 12_582_912)  // 1.5·2²³
        let clamped = clamp(x, -87, 88)
        // Fused multiply-adds where the build has them (25% faster softmax on x86-64-v3).
        let t = multiplyAdd(clamped, 1.442_695_040_888_963_4, magic)
        let n = t - magic  // round(x·log₂e), exactly an integer in float
        var r = multiplyAdd(n, -0.693_359_375, clamped)
        r = multiplyAdd(n, 2.121_944_400_546_905_827_68e-4, r)
        var p = SIMD16<Float>(repeating: 1.987_569_150_0e-4)
        p = multiplyAdd(p, r, 1.398_199_950_7e-3)
        p = multiplyAdd(p, r, 8.333_451_907_3e-3)
        p = multiplyAdd(p, r, 4.166_579_589_4e-2)
        p = multiplyAdd(p, r, 1.666_666_545_9e-1)
        p = multiplyAdd(p, r, 5.000_000_120_1e-1)
        p = multiplyAdd(p, r * r, r + 1)
        let bits = unsafeBitCast(t, to: SIMD16<Int32>.self) &- unsafeBitCast(magic, to: SIMD16<Int32>.self)
        let scale = unsafeBitCast((bits &+ 127) &<< 23, to: SIMD16<Float>.self)  // 2ⁿ, n ∈ [−126, 127]
        // 0 below e⁻⁸⁷·³³⁶⁵, float32's smallest normal.
        return select(negative(x + 87.336_544), SIMD16(repeating: 0), p * scale)
    }

    /// a·b + c: one fused multiply-add (`vfmadd`, `fmla`) where the build targets a CPU that has
    /// it (x86-64-v3, arm64), else a multiply and an add (`addingProduct` would become sixteen
    /// scalar `fmaf` calls there).
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: SIMD16<Float>) -> SIMD16<Float> {
        #if KILN_X86_64_V3 || arch(arm64)
        return c.addingProduct(a, b)
        #else
        return a * b + c
        #endif
    }

    /// a·b + c with a scalar b and c.
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: Float, _ c: SIMD16<Float>) -> SIMD16<Float> {
        multiplyAdd(a, SIMD16(repeating: b), c)
    }

    /// a·b + c with a scalar c.
    @inlinable @inline(__always)
    public static func multiplyAdd(_ a: SIMD16<Float>, _ b: SIMD16<Float>, _ c: Float) -> SIMD16<Float> {
        multiplyAdd(a, b, SIMD16(repeating: c))
    }

    // MARK: Comparisons without SIMDMask

    // `pointwiseMin`/`pointwiseMax`, `clamped`, `.<` and `replacing(with:where:)` on SIMD16<Float>
    // compile to per-lane scalar code here (measured: exp with `clamped` + `replacing` 10.5 ns a
    // value, with these sign-bit selects 0.9 ns). The sign of a difference and bit masks give the
    // same answers for ordered (non-NaN) inputs.

    /// All ones in the lanes where `v` has its sign bit set (v < 0, or −0), zero elsewhere.
    @inlinable @inline(__always)
    public static func negative(_ v: SIMD16<Float>) -> SIMD16<Int32> {
        unsafeBitCast(v, to: SIMD16<Int32>.self) &>> 31
    }

    /// `mask` lanes (all ones) from `a`, the others from `b`.
    @inlinable @inline(__always)
    public static func select(_ mask: SIMD16<Int32>, _ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        let ai = unsafeBitCast(a, to: SIMD16<Int32>.self), bi = unsafeBitCast(b, to: SIMD16<Int32>.self)
        return unsafeBitCast((ai & mask) | (bi & ~mask), to: SIMD16<Float>.self)
    }

    /// min(max(x, low), high) lane by lane.
    @inlinable @inline(__always)
    public static func clamp(_ x: SIMD16<Float>, _ low: Float, _ high: Float) -> SIMD16<Float> {
        let lo = SIMD16<Float>(repeating: low), hi = SIMD16<Float>(repeating: high)
        let raised = select(negative(x - lo), lo, x)
        return select(negative(hi - raised), hi, raised)
    }

    /// max(a, b) lane by lane.
    @inlinable @inline(__always)
    public static func maximum(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
        select(negative(a - b), b, a)
    }

    /// σ(x) = 1 / (1 + e⁻ˣ).
    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> {
        1 / (1 + exp(-x))
    }

    /// tanh(x) = 1 − 2 / (1 + e²ˣ) (absolute error about 10⁻⁷; ±1 in the limits). Where 1 ± tanh
    /// is what is needed, `onePlusTanh` keeps its relative precision near −1.
    @inlinable @inline(__always)
    public static func tanh(_ x: SIMD16<Float>) -> SIMD16<Float> {
        1 - 2 / (1 + exp(2 * x))
    }

    /// (1 + tanh x, 1 − tanh x) = (2e²ˣ/(1 + e²ˣ), 2/(1 + e²ˣ)), without the cancellation of 1 + tanh x
    /// for x ≪ 0 (GELU's tanh form and its derivative need both).
    @inlinable @inline(__always)
    public static func onePlusMinusTanh(_ x: SIMD16<Float>) -> (plus: SIMD16<Float>, minus: SIMD16<Float>) {
        let e = exp(2 * x)
        let minus = 2 / (1 + e)
        return (e * minus, minus)
    }

    /// erf(x) as the odd rational approximation x·P(x²)/Q(x²) on [−4, 4] (clamped outside), absolute
    /// error about 10⁻⁷. The coefficients are Eigen's `generic_fast_erf_float` (also used by XLA).
    @inlinable @inline(__always)
    public static func erf(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let v = clamp(x, -4, 4)
        let x2 = v * v
        var p = SIMD16<Float>(repeating: -2.726_142_258_013_06e-10)
        p = p * x2 + 2.770_681_424_959_02e-08
        p = p * x2 + -2.101_024_020_825_08e-06
        p = p * x2 + -5.692_506_394_623_46e-05
        p = p * x2 + -7.349_906_303_268_55e-04
        p = p * x2 + -2.954_599_808_540_25e-03
        p = p * x2 + -1.609_603_332_624_15e-02
        var q = SIMD16<Float>(repeating: -1.456_607_184_649_96e-05)
        q = q * x2 + -2.133_740_552_789_05e-04
        q = q * x2 + -1.682_826_974_382_03e-03
        q = q * x2 + -7.373_329_167_204_68e-03
        q = q * x2 + -1.426_473_905_141_89e-02
        return v * p / q
    }

    // MARK: Buffer loops

    /// Runs `body` on `0..<count` in one piece below `parallelThreshold`, else on contiguous chunks
    /// in parallel.
    @inlinable
    public static func forChunks(_ count: Int, threshold: Int = parallelThreshold, _ body: @Sendable (Range<Int>) -> Void) {
        if count < threshold { body(0..<count) } else { parallelFor(count, body) }
    }

    /// `out[i] = f(a[i])` over `range`, sixteen values at a time; the tail goes through `f` too
    /// (padded with zeros), so every element sees the same arithmetic.
    @inlinable @inline(__always)
    public static func map(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ range: Range<Int>,
                           _ f: (SIMD16<Float>) -> SIMD16<Float>) {
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: f(v), as: SIMD16<Float>.self)
            i += 16
        }
        if i < range.upperBound {
            var v = SIMD16<Float>()
            for j in i..<range.upperBound { v[j - i] = a[j] }
            let y = f(v)
            for j in i..<range.upperBound { out[j] = y[j - i] }
        }
    }

    /// `out[i] = f(a[i], b[i])` over `range`, as `map`.
    @inlinable @inline(__always)
    public static func map2(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                            _ range: Range<Int>, _ f: (SIMD16<Float>, SIMD16<Float>) -> SIMD16<Float>) {
        var i = range.lowerBound
        while i + 16 <= range.upperBound {
            let u = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            let v = UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: f(u, v), as: SIMD16<Float>.self)
            i += 16
        }
        if i < range.upperBound {
            var u = SIMD16<Float>(), v = SIMD16<Float>()
            for j in i..<range.upperBound { u[j - i] = a[j]; v[j - i] = b[j] }
            let y = f(u, v)
            for j in i..<range.upperBound { out[j] = y[j - i] }
        }
    }

    /// Values per float partial sum before it is added into a `Double` total: each of the 16 lanes
    /// adds at most 64 floats, so a sum's error stays near float precision whatever the count.
    @usableFromInline static let sumBlock = 1024

    /// Σ a[i] over `count` values: sixteen float lanes per block of `sumBlock` values, blocks and
    /// lanes summed in `Double`.
    @inlinable
    public static func sum(_ a: UnsafePointer<Float>, _ count: Int) -> Double {
        blockSum(count) { i in UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self) } scalar: { i in Double(a[i]) }
    }

    /// Σ a[i]·b[i] over `count` values, as `sum`.
    @inlinable
    public static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Double {
        // `u * v` then `+`, not `addingProduct`: without FMA in the x86-64 baseline that is an
        // `fmaf` call per lane (measured on a dot product: 1.42 ns a value against 0.085 ns).
        blockSum(count) { i in
            UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self) * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self)
        } scalar: { i in Double(a[i]) * Double(b[i]) }
    }

    /// Σ (a[i] − c)² over `count` values, as `sum` (the second pass of a two-pass variance).
    @inlinable
    public static func sumOfSquaredDeviations(_ a: UnsafePointer<Float>, _ count: Int, from c: Float) -> Double {
        let center = SIMD16<Float>(repeating: c)
        return blockSum(count) { i in
            let d = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self) - center
            return d * d
        } scalar: { i in let d = Double(a[i] - c); return d * d }
    }

    /// Σ over `count` values of sixteen-lane `terms(i)` (i a multiple of 16) plus `scalar(i)` for the
    /// tail, in float lanes per `sumBlock` and `Double` across blocks.
    @inlinable @inline(__always)
    static func blockSum(_ count: Int, _ terms: (Int) -> SIMD16<Float>, scalar: (Int) -> Double) -> Double {
        var total = 0.0
        var i = 0
        while i + 16 <= count {
            let end = min(count - 15, i + sumBlock)
            var acc = SIMD16<Float>()
            while i < end {
                acc += terms(i)
                i += 16
            }
            for lane in 0..<16 { total += Double(acc[lane]) }
        }
        while i < count { total += scalar(i); i += 1 }
        return total
    }

    /// `out[i] = a[i]·scale + shift` over `count` values (in place when `out == a`).
    @inlinable
    public static func affine(_ a: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ count: Int, scale: Float, shift: Float) {
        let s = SIMD16<Float>(repeating: scale), b = SIMD16<Float>(repeating: shift)
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: v * s + b, as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { out[i] = a[i] * scale + shift; i += 1 }
    }
}
