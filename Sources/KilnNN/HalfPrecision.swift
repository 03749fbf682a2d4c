import CKilnKernels
import KilnCore

/// Bit-exact conversions between `Float` and the 16-bit float formats of weight files.
///
/// - IEEE 754 binary16 (`F16`): 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals down to
///   2⁻²⁴, largest finite 65504.
/// - bfloat16 (`BF16`): the upper 16 bits of a binary32 (1 sign, 8 exponent, 7 mantissa bits).
///
/// Narrowing rounds to nearest, ties to even (as `Float16(x)`, PyTorch's `.half()` and
/// `.bfloat16()` do); values beyond the range become ±infinity; NaNs stay NaN (quiet, sign and
/// leading payload bits kept). Widening is exact. Written with integer operations rather than
/// `Float16` because that type is missing on macOS for Intel; the tests check these functions
/// against `Float16` exhaustively where it exists.
public enum HalfPrecision {
    // MARK: binary16

    /// The binary16 bit pattern nearest to `x` (ties to even).
    @inlinable
    public static func float16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        let mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {  // infinity or NaN; a NaN keeps its top payload bits and is made quiet
            return mantissa == 0 ? sign | 0x7C00 : sign | 0x7E00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        let e = exponent - 127 + 15  // the binary16 biased exponent
        if e >= 31 { return sign | 0x7C00 }  // ≥ 65536: beyond rounding distance of 65504
        if e <= 0 {
            // binary16 subnormal (or zero): value / 2⁻²⁴ = (1.m × 2^(e−15)) / 2⁻²⁴ = m₂₄ >> (14 − e).
            if e < -10 { return sign }  // below 2⁻²⁵: rounds to zero (float subnormals land here)
            let m = mantissa | 0x80_0000
            let shift = UInt32(14 - e)  // 14...24
            var h = m >> shift
            let remainder = m & ((1 << shift) - 1)
            let halfway = UInt32(1) << (shift - 1)
            if remainder > halfway || (remainder == halfway && h & 1 == 1) { h += 1 }
            return sign | UInt16(truncatingIfNeeded: h)  // h = 0x400 is the smallest normal: still right
        }
        var h = UInt32(e) << 10 | mantissa >> 13
        let remainder = mantissa & 0x1FFF
        if remainder > 0x1000 || (remainder == 0x1000 && h & 1 == 1) { h += 1 }  // a carry may reach ∞
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// The exact `Float` value of a binary16 bit pattern.
    @inlinable
    public static func float(float16Bits h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        if exponent == 0 {
            // Zero or subnormal: mantissa × 2⁻²⁴, exact in binary32.
            let magnitude = Float(mantissa) * 0x1p-24
            return Float(bitPattern: magnitude.bitPattern | sign)
        }
        if exponent == 31 { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
        return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
    }

    // MARK: bfloat16

    /// The bfloat16 bit pattern nearest to `x` (ties to even).
    @inlinable
    public static func bfloat16Bits(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if x.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }  // quiet, sign kept
        // Adding 0x7FFF (+1 when the kept part is odd) carries into bit 16 exactly when the dropped
        // half is above the midpoint, or at it with an odd kept part; a carry out of the largest
        // finite values gives infinity.
        let rounding = 0x7FFF + ((bits >> 16) & 1)
        return UInt16(truncatingIfNeeded: (bits &+ rounding) >> 16)
    }

    /// The exact `Float` value of a bfloat16 bit pattern.
    @inlinable
    public static func float(bfloat16Bits b: UInt16) -> Float {
        Float(bitPattern: UInt32(b) << 16)
    }
}

extension HalfPrecision {
    /// A 16-bit float format.
    public enum Format: String, Sendable, Hashable {
        /// IEEE 754 binary16 (safetensors `F16`).
        case binary16
        /// bfloat16 (safetensors `BF16`).
        case bfloat16
    }

    /// The exact `Float` of a bit pattern in `format` (the reference for `widen`).
    @inlinable
    public static func float(bits: UInt16, format: Format) -> Float {
        format == .binary16 ? float(float16Bits: bits) : float(bfloat16Bits: bits)
    }

    /// The bit pattern in `format` nearest to `x` (ties to even).
    @inlinable
    public static func bits(_ x: Float, format: Format) -> UInt16 {
        format == .binary16 ? float16Bits(x) : bfloat16Bits(x)
    }

    /// Widens `count` values from `source` into `destination` (exact): the C kernel (F16C where the
    /// CPU has it), split across `threads` for large blocks.
    public static func widen(_ source: UnsafePointer<UInt16>, format: Format, count: Int,
                             into destination: UnsafeMutablePointer<Float>, threads: Int = 1) {
        nonisolated(unsafe) let (source, destination) = (source, destination)
        let chunk = 1 << 20
        let chunks = (count + chunk - 1) / chunk
        @Sendable func run(_ range: Range<Int>) {
            for c in range {
                let start = c * chunk, n = min(chunk, count - start)
                switch format {
                case .binary16: kiln_f16_to_f32(source + start, destination + start, n)
                case .bfloat16: kiln_bf16_to_f32(source + start, destination + start, n)
                }
            }
        }
        if threads > 1 && chunks > 1 {
            parallelFor(chunks, threads: threads) { run($0) }
        } else if chunks > 0 {
            run(0..<chunks)
        }
    }
}

/// A tensor stored as 16-bit floats: half the memory of a `Tensor`, widened exactly to one on
/// demand. Model weights read from F16 or BF16 files stay in this form (see `Parameter`).
public struct HalfTensor: Sendable {
    public let shape: [Int]
    public let format: HalfPrecision.Format
    /// The bit patterns, row-major.
    public let bits: [UInt16]

    /// - Precondition: `bits.count` is the product of `shape`.
    public init(shape: [Int], format: HalfPrecision.Format, bits: [UInt16]) {
        precondition(bits.count == shape.reduce(1, *), "HalfTensor: \(bits.count) values for shape \(shape)")
        self.shape = shape
        self.format = format
        self.bits = bits
    }

    /// `x` rounded to `format` (ties to even).
    public init(_ x: Tensor, format: HalfPrecision.Format) {
        self.init(shape: x.shape, format: format, bits: x.storage.map { HalfPrecision.bits($0, format: format) })
    }

    public var count: Int { bits.count }

    /// The exact `Float` tensor.
    public func widened(threads: Int = BLAS.threadCount) -> Tensor {
        let values = [Float](unsafeUninitializedCapacity: bits.count) { out, initialized in
            bits.withUnsafeBufferPointer { src in
                if let s = src.baseAddress, let d = out.baseAddress {
                    HalfPrecision.widen(s, format: format, count: bits.count, into: d,
                                        threads: bits.count >= 1 << 21 ? threads : 1)
                }
            }
            initialized = bits.count
        }
        return Tensor(shape: shape, storage: values)
    }
}
