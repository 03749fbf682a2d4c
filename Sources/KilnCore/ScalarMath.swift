import Foundation

/// Scalar float32 elementary functions that the compiler keeps inline.
///
/// A libm call in a hot loop costs more than its own 5–10 ns: every vector register is
/// caller-saved, so the loop spills and reloads its live values around each call (the splat
/// rasteriser's pixel loops did). These use only adds, multiplies and bit operations.
public enum ScalarMath {
    /// eˣ with relative error below 3·10⁻⁷ on [−87, 88) (tested on [−87, 0.5] here and up to 88
    /// through `expAnywhere`); 0 below −87 (float32's normal range ends at e⁻⁸⁷·³³⁶⁵); not for 88
    /// and above, where 2ⁿ overflows. The scheme and coefficients are Cephes' `expf`, as in
    /// KilnNN's vectorised `VectorMath.exp`: n = round(x·log₂e), r = x − n·ln 2 with ln 2 split in
    /// two parts so that r is exact, eʳ by a polynomial on |r| ≤ ½ ln 2, 2ⁿ built in the exponent
    /// bits.
    @inlinable @inline(__always)
    public static func exp(_ x: Float) -> Float {
        guard x >= -87 else { return 0 }
        let magic: Float = 12_582_912  // 1.5·2²³: adding it leaves round(t) in the low mantissa bits
        let t = x * 1.442_695_040_888_963_4 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r += n * 2.121_944_400_546_905_827_68e-4
        var p: Float = 1.987_569_150_0e-4
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + (r + 1)
        let bits = Int32(bitPattern: t.bitPattern) &- Int32(bitPattern: magic.bitPattern)
        return p * Float(bitPattern: UInt32(bitPattern: (bits &+ 127) &<< 23))
    }

    /// eˣ from −87 up: `exp`'s scheme below 88 (2ⁿ stays a normal float up to n = 127), libm's
    /// above it and for NaN, +∞ past float32's largest exponential as libm gives; 0 below −87 (as
    /// `exp`: float32's subnormal results there are flushed).
    @inlinable @inline(__always)
    public static func expAnywhere(_ x: Float) -> Float {
        x < 88 ? exp(x) : Float(Foundation.exp(Double(x)))
    }

    /// `exp` on eight lanes with the same operations, so each lane has the scalar's bits (the splat
    /// rasteriser's vector pixel loops composite exactly as its per-pixel loop would).
    @inlinable @inline(__always)
    public static func exp(_ x: SIMD8<Float>) -> SIMD8<Float> {
        let magic = SIMD8<Float>(repeating: 12_582_912)
        let t = x * 1.442_695_040_888_963_4 + magic
        let n = t - magic
        var r = x - n * 0.693_359_375
        r += n * 2.121_944_400_546_905_827_68e-4
        var p = SIMD8<Float>(repeating: 1.987_569_150_0e-4)
        p = p * r + 1.398_199_950_7e-3
        p = p * r + 8.333_451_907_3e-3
        p = p * r + 4.166_579_589_4e-2
        p = p * r + 1.666_666_545_9e-1
        p = p * r + 5.000_000_120_1e-1
        p = p * (r * r) + (r + 1)
        let bits = unsafeBitCast(t, to: SIMD8<Int32>.self) &- unsafeBitCast(magic, to: SIMD8<Int32>.self)
        let result = p * unsafeBitCast((bits &+ 127) &<< 23, to: SIMD8<Float>.self)
        return Lanes8.select(Lanes8.lessOrEqual(SIMD8(repeating: -87), x), result, SIMD8())
    }
}

/// Eight-lane masks, all ones or zero in each Int32 lane, and the operations on them that
/// compile to vector instructions: comparisons of two vectors (the standard library's concrete
/// ones), bit selects and or-reductions. SIMDMask's generic operations, comparisons with a
/// scalar and `replacing(with:where:)` compiled to per-lane code through memory (in the splat
/// rasteriser's pixel loops, twice the time of the scalar loop they replaced).
public enum Lanes8 {
    public typealias Mask = SIMD8<Int32>

    @inlinable @inline(__always)
    public static func less(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> Mask { unsafeBitCast(a .< b, to: Mask.self) }
    @inlinable @inline(__always)
    public static func lessOrEqual(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> Mask { unsafeBitCast(a .<= b, to: Mask.self) }
    @inlinable @inline(__always)
    public static func less(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> Mask { unsafeBitCast(a .< b, to: Mask.self) }
    @inlinable @inline(__always)
    public static func lessOrEqual(_ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> Mask { unsafeBitCast(a .<= b, to: Mask.self) }

    /// `mask` lanes from `a`, the others from `b`.
    @inlinable @inline(__always)
    public static func select(_ mask: Mask, _ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> {
        let ai = unsafeBitCast(a, to: Mask.self), bi = unsafeBitCast(b, to: Mask.self)
        return unsafeBitCast((ai & mask) | (bi & ~mask), to: SIMD8<Float>.self)
    }

    @inlinable @inline(__always)
    public static func select(_ mask: Mask, _ a: SIMD8<Int32>, _ b: SIMD8<Int32>) -> SIMD8<Int32> { (a & mask) | (b & ~mask) }

    /// Whether any lane is set.
    @inlinable @inline(__always)
    public static func any(_ mask: Mask) -> Bool {
        let four = mask.lowHalf | mask.highHalf, two = four.lowHalf | four.highHalf
        return (two[0] | two[1]) != 0
    }

    /// How many lanes are set.
    @inlinable @inline(__always)
    public static func count(_ mask: Mask) -> Int {
        var n = 0
        for k in 0..<8 where mask[k] != 0 { n += 1 }
        return n
    }
}
