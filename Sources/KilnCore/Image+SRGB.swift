import Foundation

// MARK: - sRGB transfer function

/// The sRGB transfer function of IEC 61966-2-1:1999, exact piecewise form.
///
/// `encode` maps linear light to sRGB-encoded values (what 8-bit files and displays hold),
/// `decode` the reverse. Both act on [0, 1]; inputs outside are extended by the same formulas
/// (negative inputs stay on the linear segment).
public enum SRGB {
    /// Linear → sRGB: `12.92·x` for `x ≤ 0.0031308`, else `1.055·x^(1/2.4) − 0.055`.
    @inlinable
    public static func encode(_ linear: Float) -> Float {
        linear <= 0.0031308 ? 12.92 * linear : 1.055 * pow(linear, 1 / 2.4) - 0.055
    }

    /// sRGB → linear: `c / 12.92` for `c ≤ 0.04045`, else `((c + 0.055) / 1.055)^2.4`.
    @inlinable
    public static func decode(_ srgb: Float) -> Float {
        srgb <= 0.04045 ? srgb / 12.92 : pow((srgb + 0.055) / 1.055, 2.4)
    }

    /// `encode` of each colour channel; alpha (the fourth) is kept as it is.
    @inlinable
    public static func encode(_ rgba: SIMD4<Float>) -> SIMD4<Float> { SIMD4(encode(rgba.x), encode(rgba.y), encode(rgba.z), rgba.w) }

    /// `decode` of each colour channel; alpha (the fourth) is kept as it is.
    @inlinable
    public static func decode(_ rgba: SIMD4<Float>) -> SIMD4<Float> { SIMD4(decode(rgba.x), decode(rgba.y), decode(rgba.z), rgba.w) }

    /// `decode` of each channel of an RGB colour.
    @inlinable
    public static func decode(_ rgb: SIMD3<Float>) -> SIMD3<Float> { SIMD3(decode(rgb.x), decode(rgb.y), decode(rgb.z)) }

    /// `decode(b / 255)` for every byte `b`: 8-bit sRGB → linear by table look-up.
    public static let decodedBytes: [Float] = (0..<256).map { decode(Float($0) / 255) }
}

extension Image {
    // MARK: Channel roles

    /// Whether channel `c` holds alpha: the last channel of a 2-channel (gray + alpha) or
    /// 4-channel (RGBA) image.
    @inlinable
    public func isAlphaChannel(_ c: Int) -> Bool {
        (channels == 2 || channels == 4) && c == channels - 1
    }

    /// The number of colour (non-alpha) channels: 1 for gray and gray + alpha, 3 for RGB and RGBA.
    @inlinable
    public var colorChannels: Int { channels == 2 || channels == 4 ? channels - 1 : channels }

    // MARK: sRGB conversion

    /// The image with `SRGB.encode` applied to its colour channels; alpha is copied unchanged.
    public func srgbEncoded() -> Image {
        mapColorChannels(SRGB.encode)
    }

    /// The image with `SRGB.decode` applied to its colour channels; alpha is copied unchanged.
    public func srgbDecoded() -> Image {
        mapColorChannels(SRGB.decode)
    }

    private func mapColorChannels(_ f: (Float) -> Float) -> Image {
        var out = self
        let ch = channels, colour = colorChannels
        out.pixels.withUnsafeMutableBufferPointer { p in
            var i = 0
            while i < p.count {
                for c in 0..<colour { p[i + c] = f(p[i + c]) }
                i += ch
            }
        }
        return out
    }

    // MARK: 8-bit bytes

    /// The pixels as 8-bit values, `[height, width, channels]` interleaved, same channel count.
    ///
    /// Each value is clamped to [0, 1] (NaN → 0) and rounded to the nearest of the 256 levels,
    /// halves up: `byte = ⌊255·v + 0.5⌋`. With `srgb: true` the colour channels are treated as
    /// linear light and sRGB-encoded first (alpha is never encoded).
    public func toUInt8(srgb: Bool = false) -> [UInt8] {
        let ch = channels
        return [UInt8](unsafeUninitializedCapacity: pixels.count) { out, initialized in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<src.count {
                    var v = src[i]
                    if srgb && !isAlphaChannel(i % ch) { v = SRGB.encode(clamp(v, 0, 1)) }
                    out[i] = UInt8(clamp(v, 0, 1) * 255 + 0.5)  // truncation of v+0.5 rounds half up
                }
            }
            initialized = pixels.count
        }
    }

    /// An image from 8-bit values, `[height, width, channels]` interleaved: `v = byte / 255`, or
    /// with `srgb: true` the colour channels decoded to linear light (`SRGB.decode(byte / 255)`).
    /// `toUInt8(srgb:)` with the same flag gives the bytes back exactly.
    public init(uint8 bytes: [UInt8], width: Int, height: Int, channels: Int, srgb: Bool = false) {
        precondition(bytes.count == width * height * channels,
                     "Image(uint8:) got \(bytes.count) bytes for \(width)×\(height)×\(channels)")
        self.init(width: width, height: height, channels: channels)
        let ch = channels
        let hasAlpha = channels == 2 || channels == 4
        let table = SRGB.decodedBytes
        pixels.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { src in
                table.withUnsafeBufferPointer { lut in
                    for i in 0..<src.count {
                        let isAlpha = hasAlpha && i % ch == ch - 1
                        out[i] = srgb && !isAlpha ? lut[Int(src[i])] : Float(src[i]) / 255
                    }
                }
            }
        }
    }
}
