extension Image {
    // MARK: Resize

    /// The image resampled to `newWidth × newHeight` by bilinear interpolation, channels unchanged.
    ///
    /// Pixel centres are aligned (`align_corners = false`, as PIL, OpenCV `INTER_LINEAR` and
    /// PyTorch's default): output pixel `x` samples source coordinate `(x + 0.5)·W/w − 0.5`,
    /// clamped to the edge pixels. No prefilter: shrinking by more than 2× aliases, so shrink in
    /// halving steps where that matters.
    /// - Complexity: O(newWidth · newHeight · channels).
    public func resized(width newWidth: Int, height newHeight: Int) -> Image {
        precondition(newWidth >= 0 && newHeight >= 0, "resized size must be non-negative")
        if newWidth == width && newHeight == height { return self }
        var out = Image(width: newWidth, height: newHeight, channels: channels)
        if newWidth == 0 || newHeight == 0 { return out }
        precondition(width > 0 && height > 0,
                     "cannot resize an empty \(width)×\(height) image to \(newWidth)×\(newHeight)")
        let xs = Image.bilinearTaps(source: width, target: newWidth)
        let ys = Image.bilinearTaps(source: height, target: newHeight)
        let ch = channels, srcRow = width * channels
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                var o = 0
                for (y0, y1, ty) in ys {
                    let r0 = y0 * srcRow, r1 = y1 * srcRow
                    for (x0, x1, tx) in xs {
                        let a = r0 + x0 * ch, b = r0 + x1 * ch, c = r1 + x0 * ch, d = r1 + x1 * ch
                        for k in 0..<ch {
                            let top = src[a + k] + (src[b + k] - src[a + k]) * tx
                            let bottom = src[c + k] + (src[d + k] - src[c + k]) * tx
                            dst[o] = top + (bottom - top) * ty
                            o += 1
                        }
                    }
                }
            }
        }
        return out
    }

    /// For each of `target` output positions: the two source indices and the weight of the second,
    /// with half-pixel centre alignment and edge clamping.
    private static func bilinearTaps(source: Int, target: Int) -> [(Int, Int, Float)] {
        let scale = Float(source) / Float(target)
        return (0..<target).map { i in
            let s = Swift.min(Swift.max((Float(i) + 0.5) * scale - 0.5, 0), Float(source - 1))
            let i0 = Int(s)  // s ≥ 0, so truncation is floor
            return (i0, Swift.min(i0 + 1, source - 1), s - Float(i0))
        }
    }

    // MARK: Crop and paste

    /// The `width × height` region whose top-left pixel is (`x`, `y`).
    /// - Precondition: the region lies inside the image.
    public func cropped(x: Int, y: Int, width w: Int, height h: Int) -> Image {
        precondition(x >= 0 && y >= 0 && w >= 0 && h >= 0 && x + w <= width && y + h <= height,
                     "crop \(w)×\(h) at (\(x), \(y)) does not fit in a \(width)×\(height) image")
        var out = Image(width: w, height: h, channels: channels)
        let rowLength = w * channels
        if rowLength == 0 { return out }
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for row in 0..<h {
                    let s = ((y + row) * width + x) * channels
                    (dst.baseAddress! + row * rowLength).update(from: src.baseAddress! + s, count: rowLength)
                }
            }
        }
        return out
    }

    /// Copies `image` into this one with its top-left pixel at (`x`, `y`); the parts that fall
    /// outside are clipped (offsets may be negative). Values are copied, not blended.
    /// - Precondition: both images have the same channel count (convert with `withChannels`).
    public mutating func paste(_ image: Image, atX x: Int, y: Int) {
        precondition(image.channels == channels, "paste: \(image.channels)-channel image into a "
                     + "\(channels)-channel one; convert with withChannels first")
        let x0 = Swift.max(x, 0), x1 = Swift.min(x + image.width, width)
        let y0 = Swift.max(y, 0), y1 = Swift.min(y + image.height, height)
        guard x0 < x1 && y0 < y1 else { return }
        let rowLength = (x1 - x0) * channels
        let dstWidth = width, ch = channels
        image.pixels.withUnsafeBufferPointer { src in
            pixels.withUnsafeMutableBufferPointer { dst in
                for row in y0..<y1 {
                    let s = ((row - y) * image.width + (x0 - x)) * ch
                    let d = (row * dstWidth + x0) * ch
                    (dst.baseAddress! + d).update(from: src.baseAddress! + s, count: rowLength)
                }
            }
        }
    }

    /// Sets every pixel of the `w × h` rectangle at (`x`, `y`) (clipped to the image) to `value`,
    /// one entry per channel.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, value: [Float]) {
        precondition(value.count == channels, "fillRect: \(value.count) values for \(channels) channels")
        let x0 = Swift.max(x, 0), x1 = Swift.min(x + w, width)
        let y0 = Swift.max(y, 0), y1 = Swift.min(y + h, height)
        guard x0 < x1 && y0 < y1 else { return }
        let ch = channels, stride = width
        pixels.withUnsafeMutableBufferPointer { dst in
            for row in y0..<y1 {
                for col in x0..<x1 {
                    let o = (row * stride + col) * ch
                    for c in 0..<ch { dst[o + c] = value[c] }
                }
            }
        }
    }
}
