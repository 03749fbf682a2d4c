import Foundation
import Testing
import KilnCore

func randomImage(_ rng: inout RNG, width: Int, height: Int, channels: Int) -> Image {
    Image(width: width, height: height, channels: channels,
          pixels: rng.uniforms(count: width * height * channels))
}

// MARK: - sRGB

@Test func srgbCurveMatchesTheStandard() {
    #expect(SRGB.encode(0) == 0)
    #expect(abs(SRGB.encode(1) - 1) < 1e-6)
    #expect(abs(SRGB.decode(1) - 1) < 1e-6)
    // Published values: 50% sRGB gray is 21.404% linear; 18% linear gray is 46.1% sRGB.
    #expect(abs(SRGB.decode(0.5) - 0.214041) < 1e-5)
    #expect(abs(SRGB.encode(0.18) - 0.461356) < 1e-5)
    // Linear segment and the knee (continuous to ~1e-7 by construction of the constants).
    #expect(abs(SRGB.encode(0.001) - 0.01292) < 1e-8)
    #expect(abs(SRGB.encode(0.0031308) - 0.04045) < 1e-5)
    #expect(abs(SRGB.decode(0.04045) - 0.0031308) < 1e-6)
    #expect(abs(SRGB.decode(0.04046) - 0.0031308) < 1e-6)
    for i in 0...1000 {
        let x = Float(i) / 1000
        #expect(abs(SRGB.decode(SRGB.encode(x)) - x) < 2e-6)
    }
    // Encoded images leave alpha alone.
    let img = Image(width: 1, height: 1, channels: 4, pixels: [0.5, 0.5, 0.5, 0.5])
    #expect(img.srgbDecoded().pixels[3] == 0.5)
    #expect(abs(img.srgbDecoded().pixels[0] - 0.214041) < 1e-5)
    #expect(abs(img.srgbDecoded().srgbEncoded().pixels[1] - 0.5) < 1e-6)
}

// MARK: - 8-bit conversion

@Test(arguments: [1, 2, 3, 4])
func byteRoundTripIsExactForAll256Values(channels: Int) {
    let bytes = (0..<(256 * channels)).map { UInt8($0 / channels) }  // every channel sees 0...255
    for srgb in [false, true] {
        let image = Image(uint8: bytes, width: 16, height: 16, channels: channels, srgb: srgb)
        #expect(image.channels == channels)
        let back = image.toUInt8(srgb: srgb)
        #expect(back == bytes, "channels \(channels) srgb \(srgb)")
    }
    // srgb: true really decodes colour (not alpha).
    let mid = Image(uint8: [UInt8](repeating: 128, count: channels), width: 1, height: 1,
                    channels: channels, srgb: true)
    #expect(abs(mid.pixels[0] - SRGB.decode(128.0 / 255)) < 1e-7)
    if channels == 2 || channels == 4 { #expect(mid.pixels[channels - 1] == 128.0 / 255) }
}

@Test func byteQuantisationRoundsAndClamps() {
    let image = Image(width: 7, height: 1, channels: 1,
                      pixels: [-1, 2, .nan, 0.5 / 255, 0.499 / 255, 0.5, 254.5 / 255])
    #expect(image.toUInt8() == [0, 255, 0, 1, 0, 128, 255])
    // Alpha is never sRGB-encoded; colour is.
    // decode(128/255) = 0.2158605 linear encodes back to byte 128; alpha 0.5 → 128 either way.
    let rgba = Image(width: 1, height: 1, channels: 4, pixels: [0.2158605, 0.2158605, 0.2158605, 0.5])
    #expect(rgba.toUInt8(srgb: true) == [128, 128, 128, 128])
    #expect(rgba.toUInt8(srgb: false) == [55, 55, 55, 128])
}

// MARK: - Channels

@Test func channelConversions() {
    let gray = Image(width: 2, height: 1, channels: 1, pixels: [0.25, 0.75])
    #expect(gray.withChannels(3).pixels == [0.25, 0.25, 0.25, 0.75, 0.75, 0.75])
    #expect(gray.withChannels(4).pixels == [0.25, 0.25, 0.25, 1, 0.75, 0.75, 0.75, 1])
    #expect(gray.withChannels(2).pixels == [0.25, 1, 0.75, 1])
    #expect(gray.withChannels(4).withChannels(1) == gray)
    #expect(gray.withChannels(1) == gray)

    let rgb = Image(width: 1, height: 1, channels: 3, pixels: [1, 0.5, 0])
    #expect(rgb.withChannels(4).pixels == [1, 0.5, 0, 1])
    #expect(abs(rgb.withChannels(1).pixels[0] - (0.2126 + 0.7152 * 0.5)) < 1e-6)
    #expect(rgb.withChannels(4).withChannels(3) == rgb)

    // Straight alpha over a background: c·a + bg·(1 − a).
    let rgba = Image(width: 1, height: 1, channels: 4, pixels: [1, 0, 0, 0.25])
    let over = rgba.withChannels(3, background: Vec3(0, 0, 1))
    #expect(over.pixels == [0.25, 0, 0.75])
    #expect(rgba.compositeOver(background: Vec3(0, 0, 1)) == over)
    #expect(rgba.compositeOver(background: Vec3(1, 1, 1)).pixels == [1, 0.75, 0.75])
    let grayAlpha = Image(width: 1, height: 1, channels: 2, pixels: [1, 0.5])
    #expect(grayAlpha.compositeOver(background: Vec3(0, 0, 0)).pixels == [0.5])
    #expect(grayAlpha.compositeOver(background: Vec3(0, 0, 0)).channels == 1)
    #expect(grayAlpha.withChannels(4).pixels == [1, 1, 1, 0.5])
    #expect(rgb.compositeOver(background: Vec3(0, 1, 0)) == rgb)  // no alpha: unchanged
}

// MARK: - Resize

/// Plain versions of `Image`'s resampling, for the tests.
enum ImageReference {
    /// Plain bilinear resize, pixel-centre aligned: the reference for `Image.resized`.
    static func resized(_ image: Image, width: Int, height: Int) -> Image {
        var out = Image(width: width, height: height, channels: image.channels)
        func sample(_ x: Float, _ y: Float, _ c: Int) -> Float {
            let sx = min(max(x, 0), Float(image.width - 1)), sy = min(max(y, 0), Float(image.height - 1))
            let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
            let x1 = min(x0 + 1, image.width - 1), y1 = min(y0 + 1, image.height - 1)
            let tx = sx - Float(x0), ty = sy - Float(y0)
            let top = image[x0, y0, c] * (1 - tx) + image[x1, y0, c] * tx
            let bottom = image[x0, y1, c] * (1 - tx) + image[x1, y1, c] * tx
            return top * (1 - ty) + bottom * ty
        }
        for y in 0..<height { for x in 0..<width { for c in 0..<image.channels {
            out[x, y, c] = sample((Float(x) + 0.5) * Float(image.width) / Float(width) - 0.5,
                                  (Float(y) + 0.5) * Float(image.height) / Float(height) - 0.5, c)
        } } }
        return out
    }
}

@Test func bilinearResizeKnownValues() {
    let row = Image(width: 2, height: 1, channels: 1, pixels: [0, 1])
    #expect(row.resized(width: 4, height: 1).pixels == [0, 0.25, 0.75, 1])
    let ramp = Image(width: 4, height: 1, channels: 1, pixels: [0, 1, 2, 3])
    #expect(ramp.resized(width: 2, height: 1).pixels == [0.5, 2.5])
    let constant = Image(width: 5, height: 3, channels: 3, fill: 0.4)
    #expect(constant.resized(width: 11, height: 7).pixels.allSatisfy { abs($0 - 0.4) < 1e-6 })
    #expect(constant.resized(width: 5, height: 3) == constant)
    #expect(constant.resized(width: 0, height: 4).pixels.isEmpty)
}

@Test(arguments: [(7, 5, 13, 9), (16, 16, 5, 3), (3, 8, 3, 2), (1, 1, 4, 4), (10, 6, 10, 12)])
func bilinearResizeMatchesReference(size: (Int, Int, Int, Int)) {
    var rng = RNG(seed: 30)
    for channels in 1...4 {
        let image = randomImage(&rng, width: size.0, height: size.1, channels: channels)
        let fast = image.resized(width: size.2, height: size.3)
        let ref = ImageReference.resized(image, width: size.2, height: size.3)
        let worst = zip(fast.pixels, ref.pixels).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-6, "\(size) × \(channels): max error \(worst)")
    }
}

// MARK: - Crop, paste, fill

@Test func cropAndPaste() {
    var rng = RNG(seed: 31)
    let image = randomImage(&rng, width: 9, height: 7, channels: 3)
    let crop = image.cropped(x: 2, y: 3, width: 4, height: 2)
    #expect(crop.width == 4 && crop.height == 2 && crop.channels == 3)
    for y in 0..<2 { for x in 0..<4 { for c in 0..<3 { #expect(crop[x, y, c] == image[x + 2, y + 3, c]) } } }
    #expect(image.cropped(x: 0, y: 0, width: 9, height: 7) == image)

    var canvas = Image(width: 9, height: 7, channels: 3, fill: -1)
    canvas.paste(crop, atX: 2, y: 3)
    #expect(canvas.cropped(x: 2, y: 3, width: 4, height: 2) == crop)
    let untouched = canvas.pixels.enumerated().filter { i, v in
        let p = i / 3, x = p % 9, y = p / 9
        return !(2..<6).contains(x) || !(3..<5).contains(y) ? v != -1 : false
    }
    #expect(untouched.isEmpty)

    // Clipping at every edge.
    var small = Image(width: 3, height: 3, channels: 1)
    let ones = Image(width: 2, height: 2, channels: 1, fill: 1)
    small.paste(ones, atX: -1, y: -1)
    small.paste(ones, atX: 2, y: 2)
    small.paste(ones, atX: 5, y: 0)  // entirely outside
    #expect(small.pixels == [1, 0, 0, 0, 0, 0, 0, 0, 1])

    var filled = Image(width: 4, height: 2, channels: 2)
    filled.fillRect(x: 3, y: -1, width: 5, height: 2, value: [0.5, 1])
    #expect(filled.pixels == [0, 0, 0, 0, 0, 0, 0.5, 1, 0, 0, 0, 0, 0, 0, 0, 0])
}
