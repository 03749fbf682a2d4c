import RealModule

/// The plain reference for `MeshTexture`: per-sample loops that follow the sampling formulas
/// literally, in any precision (float64 for finite-difference checks). Same conventions, shapes
/// and rules as `MeshTexture` (see there); the texture is `[H, W, C]` texels `[R]` with its size.
///
/// For each level the continuous texel coordinates are sx = u·W − ½ (columns) and
/// sy = (1 − v)·H − ½ (rows, row 0 at the top); `.wrap` first reduces u and 1 − v to [0, 1] by
/// subtracting their floor, `.clamp` clamps sx to [−1, W] and sy to [−1, H] (beyond that both
/// taps sit on the edge texel). Bilinear: with x₀ = ⌊sx⌋, fx = sx − x₀ (rows alike),
/// out = (1−fy)((1−fx)·T[y₀,x₀] + fx·T[y₀,x₁]) + fy((1−fx)·T[y₁,x₀] + fx·T[y₁,x₁]), so
/// ∂out/∂u = W·((1−fy)(T[y₀,x₁] − T[y₀,x₀]) + fy(T[y₁,x₁] − T[y₁,x₀])) and
/// ∂out/∂v = −H·((1−fx)(T[y₁,x₀] − T[y₀,x₀]) + fx(T[y₁,x₁] − T[y₀,x₁])).
/// Trilinear: λ = ½·log₂ max(a, b), a = (du/dx·W)² + (dv/dx·H)², b = (du/dy·W)² + (dv/dy·H)²,
/// clamped to [0, L − 1]; out = (1 − f)·B_l + f·B_{l+1} with l = ⌊λ⌋, f = λ − l; ∂out/∂λ =
/// B_{l+1} − B_l where λ is not clamped, else 0.
public enum MeshTextureReference {
    /// One mip level: `[height, width, channels]` texels.
    public struct Level<R: BinaryFloatingPoint & Sendable>: Sendable {
        public var texels: [R]
        public var width: Int
        public var height: Int
    }

    // MARK: - Mip pyramid

    /// The mip pyramid of a texture, level 0 first, down to 1×1 (see `MipPyramid` for the rule:
    /// floor halving, the last texel of an odd row or column joins the box of the last parent).
    public static func mipLevels<R: BinaryFloatingPoint & Sendable>(_ texture: [R], width: Int, height: Int, channels: Int) -> [Level<R>] {
        precondition(width >= 1 && height >= 1 && texture.count == width * height * channels, "texture must be [height ≥ 1, width ≥ 1, channels]")
        var levels = [Level(texels: texture, width: width, height: height)]
        while let child = levels.last, child.width > 1 || child.height > 1 {
            let w = max(1, child.width / 2), h = max(1, child.height / 2)
            var texels = [R](repeating: 0, count: w * h * channels)
            for y in 0..<h {
                for x in 0..<w {
                    let xs = boxRange(x, parentSize: w, childSize: child.width)
                    let ys = boxRange(y, parentSize: h, childSize: child.height)
                    let count = R(xs.count * ys.count)
                    for cy in ys {
                        for cx in xs {
                            for c in 0..<channels { texels[(y * w + x) * channels + c] += child.texels[(cy * child.width + cx) * channels + c] / count }
                        }
                    }
                }
            }
            levels.append(Level(texels: texels, width: w, height: h))
        }
        return levels
    }

    /// The child texels (along one axis) averaged into parent texel `i`: `2i ..< 2i + 2`, the last
    /// parent also taking an odd child's leftover texel (and a size-1 axis staying put: `0 ..< 1`).
    static func boxRange(_ i: Int, parentSize: Int, childSize: Int) -> Range<Int> {
        i == parentSize - 1 ? 2 * i ..< childSize : 2 * i ..< 2 * i + 2
    }

    /// Pushes per-level gradients down the pyramid (the transpose of `mipLevels`): level 0's total.
    static func mipLevelsBackward<R: BinaryFloatingPoint & Sendable>(_ gradients: [[R]], levels: [Level<R>], channels: Int) -> [R] {
        var gradients = gradients
        for k in stride(from: levels.count - 1, to: 0, by: -1) {
            let parent = levels[k], child = levels[k - 1]
            for y in 0..<parent.height {
                for x in 0..<parent.width {
                    let xs = boxRange(x, parentSize: parent.width, childSize: child.width)
                    let ys = boxRange(y, parentSize: parent.height, childSize: child.height)
                    let count = R(xs.count * ys.count)
                    for cy in ys {
                        for cx in xs {
                            for c in 0..<channels {
                                gradients[k - 1][(cy * child.width + cx) * channels + c] += gradients[k][(y * parent.width + x) * channels + c] / count
                            }
                        }
                    }
                }
            }
        }
        return gradients[0]
    }

    // MARK: - Forward

    /// Samples `[N, C]` values at `uv: [N, 2]` (see `MeshTexture.sample`).
    public static func sample<R: Real & BinaryFloatingPoint & Sendable>(
        _ texture: [R], width: Int, height: Int, channels: Int, uv: [R], uvDerivatives: [R]? = nil,
        filter: TextureFilter = .bilinear, boundary: TextureBoundary = .wrap
    ) -> [R] {
        let n = validate(uv: uv, uvDerivatives: uvDerivatives, filter: filter)
        let levels = mipLevels(texture, width: width, height: height, channels: channels)
        var out = [R](repeating: 0, count: n * channels)
        for i in 0..<n {
            guard let s = SampleSite(i, uv: uv, uvDerivatives: uvDerivatives, filter: filter, levels: levels) else { continue }
            var value = [R](repeating: 0, count: channels)
            switch filter {
            case .nearest:
                value = nearest(levels[0], u: s.u, v: s.v, channels: channels, boundary: boundary)
            case .bilinear:
                value = bilinear(levels[0], u: s.u, v: s.v, channels: channels, boundary: boundary).value
            case .trilinear:
                let b0 = bilinear(levels[s.level0], u: s.u, v: s.v, channels: channels, boundary: boundary).value
                let b1 = bilinear(levels[s.level1], u: s.u, v: s.v, channels: channels, boundary: boundary).value
                for c in 0..<channels { value[c] = (1 - s.fraction) * b0[c] + s.fraction * b1[c] }
            }
            for c in 0..<channels { out[i * channels + c] = value[c] }
        }
        return out
    }

    // MARK: - Backward

    /// Gradients of a loss given its gradient `outputGradient: [N, C]` with respect to the samples.
    public static func sampleBackward<R: Real & BinaryFloatingPoint & Sendable>(
        _ texture: [R], width: Int, height: Int, channels: Int, uv: [R], uvDerivatives: [R]? = nil,
        filter: TextureFilter = .bilinear, boundary: TextureBoundary = .wrap, outputGradient: [R]
    ) -> TextureGradients<R> {
        let n = validate(uv: uv, uvDerivatives: uvDerivatives, filter: filter)
        precondition(outputGradient.count == n * channels, "outputGradient must be [N, C] = [\(n), \(channels)]")
        let levels = mipLevels(texture, width: width, height: height, channels: channels)
        var levelGradients = levels.map { [R](repeating: 0, count: $0.texels.count) }
        var gUV = [R](repeating: 0, count: 2 * n)
        var gDerivatives: [R]? = filter == .trilinear ? [R](repeating: 0, count: 4 * n) : nil
        for i in 0..<n {
            guard let s = SampleSite(i, uv: uv, uvDerivatives: uvDerivatives, filter: filter, levels: levels) else { continue }
            let g = Array(outputGradient[(i * channels) ..< ((i + 1) * channels)])
            switch filter {
            case .nearest:
                let (x, y) = nearestTexel(levels[0], u: s.u, v: s.v, boundary: boundary)
                for c in 0..<channels { levelGradients[0][(y * width + x) * channels + c] += g[c] }
            case .bilinear:
                let b = bilinear(levels[0], u: s.u, v: s.v, channels: channels, boundary: boundary)
                bilinearBackward(levels[0], u: s.u, v: s.v, channels: channels, boundary: boundary, weight: 1, g: g, into: &levelGradients[0])
                for c in 0..<channels { gUV[2 * i] += g[c] * b.dU[c]; gUV[2 * i + 1] += g[c] * b.dV[c] }
            case .trilinear:
                let b0 = bilinear(levels[s.level0], u: s.u, v: s.v, channels: channels, boundary: boundary)
                let b1 = bilinear(levels[s.level1], u: s.u, v: s.v, channels: channels, boundary: boundary)
                bilinearBackward(levels[s.level0], u: s.u, v: s.v, channels: channels, boundary: boundary,
                                 weight: 1 - s.fraction, g: g, into: &levelGradients[s.level0])
                bilinearBackward(levels[s.level1], u: s.u, v: s.v, channels: channels, boundary: boundary,
                                 weight: s.fraction, g: g, into: &levelGradients[s.level1])
                var gLod: R = 0
                for c in 0..<channels {
                    gUV[2 * i] += g[c] * ((1 - s.fraction) * b0.dU[c] + s.fraction * b1.dU[c])
                    gUV[2 * i + 1] += g[c] * ((1 - s.fraction) * b0.dV[c] + s.fraction * b1.dV[c])
                    gLod += g[c] * (b1.value[c] - b0.value[c])
                }
                for k in 0..<4 { gDerivatives![4 * i + k] = gLod * s.lodGradient[k] }
            }
        }
        let gTexture = mipLevelsBackward(levelGradients, levels: levels, channels: channels)
        return TextureGradients(texture: gTexture, uv: gUV, uvDerivatives: gDerivatives)
    }

    // MARK: - Formulas

    /// Checks the shapes; returns N.
    static func validate<R>(uv: [R], uvDerivatives: [R]?, filter: TextureFilter) -> Int {
        precondition(uv.count % 2 == 0, "uv must be [N, 2], got \(uv.count) values")
        precondition(filter != .trilinear || uvDerivatives?.count == 2 * uv.count, "trilinear filtering needs uvDerivatives [N, 4]")
        return uv.count / 2
    }

    /// Where sample `i` reads: its UV and, for trilinear, its two levels, blend and ∂λ/∂derivatives.
    /// Nil when an input it uses is not finite (the sample reads 0 and gets no gradient).
    struct SampleSite<R: Real & BinaryFloatingPoint & Sendable> {
        var u: R, v: R
        var level0 = 0, level1 = 0
        var fraction: R = 0
        /// ∂λ/∂(du/dx, dv/dx, du/dy, dv/dy), zero where λ is clamped.
        var lodGradient: [R] = [0, 0, 0, 0]

        init?(_ i: Int, uv: [R], uvDerivatives: [R]?, filter: TextureFilter, levels: [Level<R>]) {
            u = uv[2 * i]; v = uv[2 * i + 1]
            guard u.isFinite, v.isFinite else { return nil }
            guard filter == .trilinear else { return }
            let d = Array(uvDerivatives![(4 * i) ..< (4 * i + 4)])
            guard d.allSatisfy({ $0.isFinite }) else { return nil }
            let w = R(levels[0].width), h = R(levels[0].height)
            let a = (d[0] * w) * (d[0] * w) + (d[1] * h) * (d[1] * h)
            let b = (d[2] * w) * (d[2] * w) + (d[3] * h) * (d[3] * h)
            let m = max(a, b)
            let raw = R.log2(m) / 2
            let top = R(levels.count - 1)
            let lod = min(max(raw, 0), top)
            level0 = Int(lod.rounded(.down))
            level1 = min(level0 + 1, levels.count - 1)
            fraction = lod - R(level0)
            if raw > 0 && raw < top {
                // ∂(½·log₂ m)/∂m = 1/(2·m·ln 2), ∂a/∂(du/dx) = 2·(du/dx)·W², …
                let scale = 1 / (m * R.log(2))
                lodGradient = a >= b ? [d[0] * w * w * scale, d[1] * h * h * scale, 0, 0]
                                     : [0, 0, d[2] * w * w * scale, d[3] * h * h * scale]
            }
        }
    }

    /// The two texel indices and the blend along one axis of `size` texels for the normalised
    /// coordinate `a` (u, or 1 − v), bilinear.
    static func axis<R: BinaryFloatingPoint>(_ a: R, size: Int, boundary: TextureBoundary) -> (i0: Int, i1: Int, f: R) {
        switch boundary {
        case .wrap:
            let reduced = a - a.rounded(.down)  // [0, 1]
            let s = reduced * R(size) - R(0.5)  // [−½, size − ½]
            let x0 = s.rounded(.down)
            let i0 = (Int(x0) + size) % size
            return (i0, (i0 + 1) % size, s - x0)
        case .clamp:
            let s = min(max(a * R(size) - R(0.5), -1), R(size))
            let x0 = s.rounded(.down)
            return (min(max(Int(x0), 0), size - 1), min(max(Int(x0) + 1, 0), size - 1), s - x0)
        }
    }

    /// The texel that contains the point, along one axis.
    static func nearestAxis<R: BinaryFloatingPoint>(_ a: R, size: Int, boundary: TextureBoundary) -> Int {
        switch boundary {
        case .wrap:
            let reduced = a - a.rounded(.down)
            return min(Int((reduced * R(size)).rounded(.down)), size - 1)  // reduced = 1 only by rounding a tiny negative
        case .clamp:
            return min(max(Int(min(max(a * R(size), 0), R(size)).rounded(.down)), 0), size - 1)
        }
    }

    static func nearestTexel<R: BinaryFloatingPoint>(_ level: Level<R>, u: R, v: R, boundary: TextureBoundary) -> (x: Int, y: Int) {
        (nearestAxis(u, size: level.width, boundary: boundary), nearestAxis(1 - v, size: level.height, boundary: boundary))
    }

    static func nearest<R: BinaryFloatingPoint>(_ level: Level<R>, u: R, v: R, channels: Int, boundary: TextureBoundary) -> [R] {
        let (x, y) = nearestTexel(level, u: u, v: v, boundary: boundary)
        return (0..<channels).map { level.texels[(y * level.width + x) * channels + $0] }
    }

    /// Bilinear value `[C]` at (u, v) and its derivatives with respect to u and v.
    static func bilinear<R: BinaryFloatingPoint>(_ level: Level<R>, u: R, v: R, channels: Int,
                                                 boundary: TextureBoundary) -> (value: [R], dU: [R], dV: [R]) {
        let (x0, x1, fx) = axis(u, size: level.width, boundary: boundary)
        let (y0, y1, fy) = axis(1 - v, size: level.height, boundary: boundary)
        var value = [R](repeating: 0, count: channels), dU = value, dV = value
        for c in 0..<channels {
            func t(_ x: Int, _ y: Int) -> R { level.texels[(y * level.width + x) * channels + c] }
            value[c] = (1 - fy) * ((1 - fx) * t(x0, y0) + fx * t(x1, y0)) + fy * ((1 - fx) * t(x0, y1) + fx * t(x1, y1))
            dU[c] = R(level.width) * ((1 - fy) * (t(x1, y0) - t(x0, y0)) + fy * (t(x1, y1) - t(x0, y1)))
            dV[c] = -R(level.height) * ((1 - fx) * (t(x0, y1) - t(x0, y0)) + fx * (t(x1, y1) - t(x1, y0)))
        }
        return (value, dU, dV)
    }

    /// Adds `weight · g[c]` times each bilinear weight to the four texels' gradients.
    static func bilinearBackward<R: BinaryFloatingPoint>(_ level: Level<R>, u: R, v: R, channels: Int, boundary: TextureBoundary,
                                                         weight: R, g: [R], into gradient: inout [R]) {
        let (x0, x1, fx) = axis(u, size: level.width, boundary: boundary)
        let (y0, y1, fy) = axis(1 - v, size: level.height, boundary: boundary)
        for (x, y, w) in [(x0, y0, (1 - fx) * (1 - fy)), (x1, y0, fx * (1 - fy)), (x0, y1, (1 - fx) * fy), (x1, y1, fx * fy)] {
            for c in 0..<channels { gradient[(y * level.width + x) * channels + c] += weight * w * g[c] }
        }
    }
}
