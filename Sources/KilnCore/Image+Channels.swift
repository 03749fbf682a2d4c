extension Image {
    // MARK: Channel conversion

    /// Rec. 709 / sRGB luma weights, used when colour becomes gray: `Y = 0.2126 R + 0.7152 G + 0.0722 B`.
    public static let lumaWeights = Vec3(0.2126, 0.7152, 0.0722)

    /// The image with `channels` channels (1 gray, 2 gray + alpha, 3 RGB, 4 RGBA).
    ///
    /// - Gray → colour replicates the gray value; colour → gray takes the luma (`lumaWeights`).
    /// - Adding alpha sets it to 1.
    /// - Dropping alpha composites the straight-alpha colour over `background`:
    ///   `c·a + background·(1 − a)` (its luma when the result is gray).
    /// - The same channel count returns the image unchanged.
    /// - Parameters:
    ///   - background: RGB colour under transparent pixels, only used when alpha is dropped.
    public func withChannels(_ newChannels: Int, background: Vec3 = Vec3(0, 0, 0)) -> Image {
        precondition((1...4).contains(newChannels), "Image channels must be 1...4, got \(newChannels)")
        if newChannels == channels { return self }
        var out = Image(width: width, height: height, channels: newChannels)
        let srcCh = channels, dstCh = newChannels
        let srcGray = colorChannels == 1, srcAlpha = channels == 2 || channels == 4
        let dstGray = newChannels <= 2, dstAlpha = newChannels == 2 || newChannels == 4
        let compositing = srcAlpha && !dstAlpha
        let w = Image.lumaWeights
        let bgGray = dot(background, w)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for p in 0..<(width * height) {
                    let s = p * srcCh, d = p * dstCh
                    let a: Float = srcAlpha ? src[s + srcCh - 1] : 1
                    if dstGray {
                        var g = srcGray ? src[s] : src[s] * w.x + src[s + 1] * w.y + src[s + 2] * w.z
                        if compositing { g = g * a + bgGray * (1 - a) }
                        dst[d] = g
                    } else {
                        var rgb = srcGray ? Vec3(repeating: src[s]) : Vec3(src[s], src[s + 1], src[s + 2])
                        if compositing { rgb = rgb * a + background * (1 - a) }
                        dst[d] = rgb.x; dst[d + 1] = rgb.y; dst[d + 2] = rgb.z
                    }
                    if dstAlpha { dst[d + dstCh - 1] = a }
                }
            }
        }
        return out
    }

    /// The image with alpha removed by compositing over `background` (straight alpha:
    /// `c·a + background·(1 − a)`): RGBA → RGB, gray + alpha → gray (over the background's luma).
    /// Images without alpha are returned unchanged.
    public func compositeOver(background: Vec3) -> Image {
        withChannels(colorChannels, background: background)
    }
}
