import KilnNN

/// Renders to the prior's input and the prior's gradient back to the renders.
///
/// A render is `[H, W, 3]` colour in [0, 1] (the rasterizers' layout); the prior takes
/// `[3, H/f, W/f]` in [−1, 1]. Rendering at f× the prior's size and averaging f×f blocks
/// antialiases the picture the prior judges (DreamFusion renders at the prior's 64²; here the
/// renders are 64² and the prior 32², f = 2).
public enum PriorImage {
    /// x[c, y, x] = 2·mean over the f×f block of clamp(colour, 0, 1) − 1.
    ///
    /// Splat colours are not bounded above, and the prior has only seen [0, 1]; `renderGradient`
    /// lets a clamped pixel's gradient through only where it leads back into range.
    /// - Parameters:
    ///   - color: `[H, W, 3]`, H and W multiples of `factor`.
    /// - Returns: `[3, H/f, W/f]` flat.
    public static func fromRender(_ color: [Float], width: Int, height: Int, factor f: Int) -> [Float] {
        precondition(f > 0 && width % f == 0 && height % f == 0 && color.count == 3 * width * height,
                     "PriorImage.fromRender: a \(width)×\(height) render does not pool by \(f)")
        let w = width / f, h = height / f
        var out = [Float](repeating: 0, count: 3 * w * h)
        let scale = 2 / Float(f * f)
        for y in 0..<h {
            for x in 0..<w {
                for c in 0..<3 {
                    var sum: Float = 0
                    for dy in 0..<f {
                        for dx in 0..<f {
                            let v = color[((y * f + dy) * width + x * f + dx) * 3 + c]
                            sum += v.isNaN ? v : min(1, max(0, v))  // NaN stays NaN, so a broken render is seen
                        }
                    }
                    out[(c * h + y) * w + x] = scale * sum - 1
                }
            }
        }
        return out
    }

    /// The transpose of `fromRender`'s linear part: ∂L/∂colour[y, x, c] = 2/f² · ∂L/∂x[c, y/f, x/f],
    /// zeroed where `color` (when given) is clamped and a descent step would push it further out.
    /// - Parameter gradient: `[3, H/f, W/f]` flat. - Returns: `[H, W, 3]` flat.
    public static func renderGradient(_ gradient: [Float], width: Int, height: Int, factor f: Int, color: [Float]? = nil) -> [Float] {
        let w = width / f, h = height / f
        precondition(gradient.count == 3 * w * h, "PriorImage.renderGradient: \(gradient.count) values for \(w)×\(h)×3")
        var out = [Float](repeating: 0, count: 3 * width * height)
        let scale = 2 / Float(f * f)
        for py in 0..<height {
            for px in 0..<width {
                for c in 0..<3 {
                    let i = (py * width + px) * 3 + c
                    let g = scale * gradient[(c * h + py / f) * w + px / f]
                    if let color, (color[i] > 1 && g < 0) || (color[i] < 0 && g > 0) { continue }
                    out[i] = g
                }
            }
        }
        return out
    }
}

extension PriorImage {
    /// Images `[B, C, S, S]` averaged over f×f blocks to `[B, C, S/f, S/f]` (f = S / `size`): a large
    /// prior's display images at the size of reward models trained smaller. The identity when f = 1.
    public static func pooled(_ images: Tensor, to size: Int) -> Tensor {
        let s = images.shape[2], f = s / size
        precondition(images.shape.count == 4 && images.shape[3] == s && f * size == s, "PriorImage.pooled: \(images.shape) does not pool to \(size)²")
        guard f > 1 else { return images }
        let planes = images.shape[0] * images.shape[1], scale = 1 / Float(f * f)
        var out = [Float](repeating: 0, count: planes * size * size)
        images.storage.withUnsafeBufferPointer { x in
            for p in 0..<planes {
                for y in 0..<size {
                    for xo in 0..<size {
                        var sum: Float = 0
                        for dy in 0..<f {
                            let row = (p * s + y * f + dy) * s + xo * f
                            for dx in 0..<f { sum += x[row + dx] }
                        }
                        out[(p * size + y) * size + xo] = sum * scale
                    }
                }
            }
        }
        return Tensor(shape: [images.shape[0], images.shape[1], size, size], storage: out)
    }

    /// The transpose of `pooled`: each pooled pixel's gradient spread over its f×f block, divided by f².
    public static func pooledBackward(_ gradient: Tensor, from size: Int) -> Tensor {
        let small = gradient.shape[2], f = size / small
        guard f > 1 else { return gradient }
        let planes = gradient.shape[0] * gradient.shape[1], scale = 1 / Float(f * f)
        var out = [Float](repeating: 0, count: planes * size * size)
        for p in 0..<planes {
            for y in 0..<size {
                for x in 0..<size { out[(p * size + y) * size + x] = gradient.storage[(p * small + y / f) * small + x / f] * scale }
            }
        }
        return Tensor(shape: [gradient.shape[0], gradient.shape[1], size, size], storage: out)
    }
}
