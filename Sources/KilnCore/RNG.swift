import Foundation

/// Kiln's seeded, splittable random number generator: xoshiro256** seeded through SplitMix64.
///
/// The whole state is four `UInt64` words, so a checkpoint that stores the `Codable` form resumes
/// the exact sequence. Nothing is cached between calls (normals use both Box–Muller outputs only
/// inside one `fill` call), so the four words are all there is.
///
/// - xoshiro256** (Blackman & Vigna 2018, "Scrambled linear pseudorandom number generators"):
///   period 2²⁵⁶ − 1, passes BigCrush; one step is a handful of shifts, rotates and xors.
/// - Seeding and `split` use SplitMix64 (Steele, Lea & Flood 2014), the seeding procedure the
///   xoshiro authors recommend: it turns any 64-bit value, including 0, into a well-mixed state.
public struct RNG: RandomNumberGenerator, Sendable, Equatable, Hashable {
    /// The xoshiro256** state words (stored separately so `next()` can be inlined into callers).
    @usableFromInline var s0, s1, s2, s3: UInt64

    /// The xoshiro256** state; never all zero.
    public var state: (UInt64, UInt64, UInt64, UInt64) { (s0, s1, s2, s3) }

    // MARK: Construction

    /// A generator whose state is the first four SplitMix64 outputs from `seed`.
    public init(seed: UInt64) {
        var sm = SplitMix64(state: seed)
        (s0, s1, s2, s3) = (sm.next(), sm.next(), sm.next(), sm.next())
        if (s0 | s1 | s2 | s3) == 0 { s0 = 0x9E37_79B9_7F4A_7C15 }  // unreachable in practice
    }

    /// A generator with an explicit state (for example one read back from a checkpoint).
    /// - Precondition: not all four words are zero (the one state xoshiro never leaves).
    public init(state: (UInt64, UInt64, UInt64, UInt64)) {
        precondition(state != (0, 0, 0, 0), "RNG state must not be all zero")
        (s0, s1, s2, s3) = state
    }

    /// A child generator for stream `stream`, derived from this generator's current state without
    /// advancing it.
    ///
    /// The same parent state and stream id always give the same child; different stream ids (or
    /// different parent states) give unrelated children: all 256 bits of the parent and the stream
    /// id are absorbed into a SplitMix64 state, whose outputs seed the child. Use one stream per
    /// independent consumer (`split(0)` for initialisation, `split(1)` for camera sampling, …) so
    /// adding draws in one place does not shift the numbers another place sees.
    public func split(_ stream: UInt64) -> RNG {
        // Absorb stream id and the four state words, each followed by a full SplitMix64 finaliser
        // so every input bit reaches every bit of the 64-bit seed.
        var h = SplitMix64.mix(stream ^ 0x6A09_E667_F3BC_C909)
        for word in [s0, s1, s2, s3] {
            h = SplitMix64.mix((h ^ word) &+ 0x9E37_79B9_7F4A_7C15)
        }
        return RNG(seed: h)
    }

    // MARK: Integers

    /// The next 64 random bits (xoshiro256**).
    @inlinable
    public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }

    @inlinable
    static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    // MARK: Floats

    /// Uniform in `[0, 1)` with 24 random bits (every representable multiple of 2⁻²⁴).
    @inlinable
    public mutating func nextFloat() -> Float {
        Float(next() >> 40) * 0x1p-24
    }

    /// Uniform in `(0, 1]`: never 0, so safe under `log`.
    @inlinable
    public mutating func nextFloatOpenZero() -> Float {
        Float((next() >> 40) + 1) * 0x1p-24
    }

    /// Uniform in `[range.lowerBound, range.upperBound]` (the upper bound has probability ~0).
    @inlinable
    public mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
    }

    /// A standard normal sample by Box–Muller, `√(−2 ln u₁) · cos(2π u₂)` with `u₁ ∈ (0, 1]`.
    /// Uses two 64-bit draws; the sine partner is discarded so that no state is cached.
    @inlinable
    public mutating func normal() -> Float {
        let u1 = nextFloatOpenZero(), u2 = nextFloat()
        return (-2 * log(u1)).squareRoot() * cos(2 * Float.pi * u2)
    }

    /// A normal sample with the given mean and standard deviation.
    @inlinable
    public mutating func normal(mean: Float, std: Float) -> Float {
        mean + std * normal()
    }

    // MARK: Bulk

    /// Fills `buffer` with independent normal samples `mean + std · N(0, 1)`, using both Box–Muller
    /// outputs (cosine and sine) of each pair of draws.
    public mutating func fill(normal buffer: UnsafeMutableBufferPointer<Float>, mean: Float = 0, std: Float = 1) {
        let n = buffer.count
        var i = 0
        while i + 1 < n {
            let u1 = nextFloatOpenZero(), u2 = nextFloat()
            let r = (-2 * log(u1)).squareRoot() * std
            let theta = 2 * Float.pi * u2
            buffer[i] = mean + r * cos(theta)
            buffer[i + 1] = mean + r * sin(theta)
            i += 2
        }
        if i < n { buffer[i] = normal(mean: mean, std: std) }
    }

    /// Fills `array` with normal samples; see `fill(normal:mean:std:)` on a buffer.
    public mutating func fill(normal array: inout [Float], mean: Float = 0, std: Float = 1) {
        array.withUnsafeMutableBufferPointer { fill(normal: $0, mean: mean, std: std) }
    }

    /// Fills `buffer` with uniform samples in `range`.
    public mutating func fill(uniform buffer: UnsafeMutableBufferPointer<Float>, in range: ClosedRange<Float> = 0...1) {
        for i in buffer.indices { buffer[i] = uniform(range) }
    }

    /// Fills `array` with uniform samples in `range`.
    public mutating func fill(uniform array: inout [Float], in range: ClosedRange<Float> = 0...1) {
        array.withUnsafeMutableBufferPointer { fill(uniform: $0, in: range) }
    }

    /// `count` normal samples `mean + std · N(0, 1)`.
    public mutating func normals(count: Int, mean: Float = 0, std: Float = 1) -> [Float] {
        var a = [Float](repeating: 0, count: count)
        fill(normal: &a, mean: mean, std: std)
        return a
    }

    /// `count` uniform samples in `range`.
    public mutating func uniforms(count: Int, in range: ClosedRange<Float> = 0...1) -> [Float] {
        var a = [Float](repeating: 0, count: count)
        fill(uniform: &a, in: range)
        return a
    }
}

// MARK: - Codable

extension RNG: Codable {
    private enum CodingKeys: String, CodingKey { case algorithm, state }

    /// The algorithm tag written next to the state, checked on decoding.
    public static let algorithmName = "xoshiro256**"

    /// Encodes `{"algorithm": "xoshiro256**", "state": ["<16 hex digits>", ×4]}`. Hex strings
    /// rather than JSON numbers: 64-bit integers above 2⁵³ lose precision in JavaScript and in
    /// any JSON reader that goes through `Double`.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Self.algorithmName, forKey: .algorithm)
        try c.encode([s0, s1, s2, s3].map(Self.hex), forKey: .state)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let algorithm = try c.decode(String.self, forKey: .algorithm)
        guard algorithm == Self.algorithmName else {
            throw DecodingError.dataCorruptedError(
                forKey: .algorithm, in: c,
                debugDescription: "RNG algorithm is \"\(algorithm)\", this build reads \"\(Self.algorithmName)\"")
        }
        let words = try c.decode([String].self, forKey: .state)
        let values = words.compactMap { UInt64($0, radix: 16) }
        guard words.count == 4, values.count == 4, values != [0, 0, 0, 0] else {
            throw DecodingError.dataCorruptedError(
                forKey: .state, in: c, debugDescription: "RNG state must be 4 hex words, not all zero; got \(words)")
        }
        (s0, s1, s2, s3) = (values[0], values[1], values[2], values[3])
    }

    private static func hex(_ v: UInt64) -> String {
        let s = String(v, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }
}

// MARK: - SplitMix64

/// SplitMix64 (Steele, Lea & Flood 2014): a 64-bit counter passed through a strong finaliser.
/// Used to seed and split `RNG`; fine as a generator by itself for non-critical uses.
public struct SplitMix64: RandomNumberGenerator, Sendable, Equatable, Codable {
    public var state: UInt64

    public init(state: UInt64) { self.state = state }

    /// Advances the counter by the golden-ratio increment and returns its mixed value.
    @inlinable
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 finaliser (a variant of MurmurHash3's fmix64): a bijection on `UInt64` with
    /// full avalanche.
    @inlinable
    public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
