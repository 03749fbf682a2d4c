import Foundation
import KilnCore
import Testing
@testable import KilnRender

// MARK: - Support

/// A random texture-sampling problem in float64 with a fixed random loss Σ weight·output.
struct MeshTextureProblem {
    var width: Int, height: Int, channels: Int
    /// `[H, W, C]` level 0.
    var texels: [Double]
    /// `[N, 2]`.
    var uv: [Double]
    /// `[N, 4]` (du/dx, dv/dx, du/dy, dv/dy).
    var derivatives: [Double]
    /// `[N, C]` ∂loss/∂output.
    var lossWeights: [Double]
    var filter: TextureFilter
    var boundary: TextureBoundary

    var count: Int { uv.count / 2 }
    var levelCount: Int { Int(log2(Double(max(width, height)))) + 1 }

    /// `count` samples with UVs in [−1.5, 2.5] and λ in [−1, levels]; with `differentiable`, only
    /// samples whose every used fractional coordinate (texel, λ) stays 0.05 away from a crossing
    /// and whose two footprint axes differ, so central differences see one smooth piece.
    init(width: Int, height: Int, channels: Int, count: Int, filter: TextureFilter, boundary: TextureBoundary,
         differentiable: Bool, seed: UInt64) {
        self.width = width; self.height = height; self.channels = channels
        self.filter = filter; self.boundary = boundary
        var rng = RNG(seed: seed)
        texels = (0..<(width * height * channels)).map { _ in Double(rng.uniform(0...1)) }
        lossWeights = (0..<(count * channels)).map { _ in Double(rng.uniform(-1...1)) }
        uv = []; derivatives = []
        let top = Double(Int(log2(Double(max(width, height)))))
        while uv.count < 2 * count {
            let u = Double(rng.uniform(-1.5...2.5)), v = Double(rng.uniform(-1.5...2.5))
            let lod = Double(rng.uniform(-1...Float(top + 1)))
            var d = (0..<4).map { _ in Double(rng.normal()) }
            let m = max(Self.footprint(d, width, height).a, Self.footprint(d, width, height).b)
            d = d.map { $0 * pow(2, lod) / m.squareRoot() }
            if !differentiable || Self.smooth(u: u, v: v, d: d, width: width, height: height, top: top, filter: filter) {
                uv += [u, v]; derivatives += d
            }
        }
    }

    static func footprint(_ d: [Double], _ width: Int, _ height: Int) -> (a: Double, b: Double) {
        let w = Double(width), h = Double(height)
        return ((d[0] * w) * (d[0] * w) + (d[1] * h) * (d[1] * h), (d[2] * w) * (d[2] * w) + (d[3] * h) * (d[3] * h))
    }

    static func awayFromInteger(_ x: Double) -> Bool { let f = x - x.rounded(.down); return f > 0.05 && f < 0.95 }

    /// True where the filter's output is smooth in u, v, the derivatives and the texels.
    static func smooth(u: Double, v: Double, d: [Double], width: Int, height: Int, top: Double, filter: TextureFilter) -> Bool {
        func bilinearSmooth(_ w: Int, _ h: Int) -> Bool {
            awayFromInteger(u * Double(w) - 0.5) && awayFromInteger((1 - v) * Double(h) - 0.5)
        }
        switch filter {
        case .nearest:
            return awayFromInteger(u * Double(width)) && awayFromInteger((1 - v) * Double(height))
        case .bilinear:
            return bilinearSmooth(width, height)
        case .trilinear:
            let (a, b) = footprint(d, width, height)
            let raw = log2(max(a, b)) / 2
            if raw < -0.05 || raw > top + 0.05 {  // clamped: only the one level's bilinear matters
                let level = raw < 0 ? 0 : Int(top)
                return bilinearSmooth(levelSize(width, level), levelSize(height, level))
            }
            guard raw > 0.05, raw < top - 0.05, awayFromInteger(raw), abs(a - b) > 0.1 * max(a, b) else { return false }
            let l0 = Int(raw.rounded(.down))
            return bilinearSmooth(levelSize(width, l0), levelSize(height, l0))
                && bilinearSmooth(levelSize(width, l0 + 1), levelSize(height, l0 + 1))
        }
    }

    static func levelSize(_ size: Int, _ level: Int) -> Int { max(1, size >> level) }

    func sample() -> [Double] {
        MeshTextureReference.sample(texels, width: width, height: height, channels: channels, uv: uv,
                                    uvDerivatives: derivatives, filter: filter, boundary: boundary)
    }

    func loss(_ out: [Double]) -> Double { zip(out, lossWeights).reduce(0) { $0 + $1.0 * $1.1 } }

    func referenceGradients() -> TextureGradients<Double> {
        MeshTextureReference.sampleBackward(texels, width: width, height: height, channels: channels, uv: uv, uvDerivatives: derivatives,
                                            filter: filter, boundary: boundary, outputGradient: lossWeights)
    }

    // Float views for the fast path.
    var image: Image { Image(width: width, height: height, channels: channels, pixels: texels.map { Float($0) }) }
    var uvFloat: [Float] { uv.map { Float($0) } }
    var derivativesFloat: [Float] { derivatives.map { Float($0) } }
    var lossWeightsFloat: [Float] { lossWeights.map { Float($0) } }

    /// The largest |a − b| / max(1, |b|) over two arrays, with where it happened, for failure messages.
    static func worstError<A: BinaryFloatingPoint, B: BinaryFloatingPoint>(_ a: [A], _ b: [B]) -> (error: Double, index: Int, a: Double, b: Double) {
        precondition(a.count == b.count, "compared arrays differ in length: \(a.count) vs \(b.count)")
        var worst = (error: 0.0, index: -1, a: 0.0, b: 0.0)
        for i in a.indices {
            let x = Double(a[i]), y = Double(b[i])
            let error = abs(x - y) / max(1, abs(y))
            if !(error <= worst.error) { worst = (error.isNaN ? .infinity : error, i, x, y) }
        }
        return worst
    }
}


// MARK: - Fast path against the reference

@Suite("MeshTexture fast path against MeshTextureReference")
struct MeshTextureFastTests {
    /// Sizes: odd and non-square (levels 7×5, 3×2, 1×1), wide, tall, and a single texel.
    static let sizes = [(7, 5, 3), (16, 9, 1), (4, 16, 2), (1, 1, 4)]

    @Test("Forward and every gradient, random inputs", arguments: TextureFilter.allCases, TextureBoundary.allCases)
    func matchesReference(filter: TextureFilter, boundary: TextureBoundary) {
        for (k, (w, h, c)) in Self.sizes.enumerated() {
            var p = MeshTextureProblem(width: w, height: h, channels: c, count: 160, filter: filter, boundary: boundary,
                                   differentiable: false, seed: UInt64(100 + k))
            // A few hostile samples ride along: huge and non-finite UVs, non-finite and zero derivatives.
            p.uv[0] = 1e8; p.uv[3] = -3e7; p.uv[4] = .nan; p.uv[7] = .infinity
            p.derivatives[20] = .nan; p.derivatives[24...27] = [0, 0, 0, 0]
            // Reference in float32, the fast path's precision: the same rounding decides the same taps.
            let texels = p.texels.map { Float($0) }
            let reference = MeshTextureReference.sample(texels, width: w, height: h, channels: c, uv: p.uvFloat,
                                                        uvDerivatives: p.derivativesFloat, filter: filter, boundary: boundary)
            let fast = MeshTexture.sample(p.image, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: boundary, threads: 2)
            let forward = MeshTextureProblem.worstError(fast, reference)
            #expect(forward.error <= 1e-5, "\(w)×\(h)×\(c) forward worst at \(forward.index): fast \(forward.a), reference \(forward.b)")

            let rg = MeshTextureReference.sampleBackward(texels, width: w, height: h, channels: c, uv: p.uvFloat, uvDerivatives: p.derivativesFloat,
                                                         filter: filter, boundary: boundary, outputGradient: p.lossWeightsFloat)
            let fg = MeshTexture.sampleBackward(p.image, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: boundary,
                                                outputGradient: p.lossWeightsFloat, threads: 2)
            for (name, a, b) in [("texture", fg.texture, rg.texture), ("uv", fg.uv, rg.uv),
                                 ("uvDerivatives", fg.uvDerivatives ?? [], rg.uvDerivatives ?? [])] {
                let e = MeshTextureProblem.worstError(a, b)
                #expect(e.error <= 1e-5, "\(w)×\(h)×\(c) gradient \(name) worst at \(e.index): fast \(e.a), reference \(e.b)")
            }
            #expect((fg.uvDerivatives == nil) == (filter != .trilinear))
            #expect(fg.texture.contains { $0 != 0 }, "no texture gradient at all")
        }
    }

    @Test("Mip pyramid against the reference, odd and non-square sizes")
    func pyramidMatchesReference() {
        var rng = RNG(seed: 3)
        for (w, h, c) in [(7, 5, 3), (5, 3, 1), (1, 6, 2), (16, 16, 4), (9, 2, 1)] {
            let image = Image(width: w, height: h, channels: c, pixels: rng.uniforms(count: w * h * c))
            let pyramid = MipPyramid(image, threads: 3)
            let reference = MeshTextureReference.mipLevels(image.pixels, width: w, height: h, channels: c)
            #expect(pyramid.levelCount == reference.count)
            #expect(pyramid.widths.last == 1 && pyramid.heights.last == 1)
            for (k, level) in reference.enumerated() {
                #expect(pyramid.widths[k] == level.width && pyramid.heights[k] == level.height)
                let e = MeshTextureProblem.worstError(pyramid.level(k).pixels, level.texels)
                #expect(e.error <= 1e-6, "\(w)×\(h) level \(k) worst at \(e.index): \(e.a) vs \(e.b)")
            }
        }
    }

    @Test("Bit-identical results for any thread count", arguments: TextureFilter.allCases)
    func deterministicAcrossThreads(filter: TextureFilter) {
        let p = MeshTextureProblem(width: 9, height: 7, channels: 3, count: 400, filter: filter, boundary: .wrap,
                               differentiable: false, seed: 77)
        let pyramid = MipPyramid(p.image, threads: 1)
        let baseOut = MeshTexture.sample(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, threads: 1)
        let base = MeshTexture.sampleBackward(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter,
                                              outputGradient: p.lossWeightsFloat, threads: 1)
        for threads in [2, 3, 5, 8] {
            #expect(MipPyramid(p.image, threads: threads) == pyramid, "pyramid differs with \(threads) threads")
            let out = MeshTexture.sample(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, threads: threads)
            let g = MeshTexture.sampleBackward(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter,
                                               outputGradient: p.lossWeightsFloat, threads: threads)
            #expect(out == baseOut, "forward differs with \(threads) threads")
            #expect(g.texture == base.texture, "texture gradient differs with \(threads) threads")
            #expect(g.uv == base.uv && g.uvDerivatives == base.uvDerivatives, "UV gradients differ with \(threads) threads")
        }
    }

    @Test("Image and prebuilt-pyramid entry points agree", arguments: TextureFilter.allCases)
    func pyramidOverload(filter: TextureFilter) {
        let p = MeshTextureProblem(width: 6, height: 10, channels: 2, count: 50, filter: filter, boundary: .clamp, differentiable: false, seed: 8)
        let pyramid = MipPyramid(p.image)
        #expect(MeshTexture.sample(p.image, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: .clamp)
            == MeshTexture.sample(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: .clamp))
        let a = MeshTexture.sampleBackward(p.image, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: .clamp,
                                           outputGradient: p.lossWeightsFloat)
        let b = MeshTexture.sampleBackward(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter, boundary: .clamp,
                                           outputGradient: p.lossWeightsFloat)
        #expect(a.texture == b.texture && a.uv == b.uv && a.uvDerivatives == b.uvDerivatives)
    }
}

// MARK: - Reference gradients against finite differences

@Suite("MeshTextureReference gradients against float64 finite differences")
struct MeshTextureGradientTests {
    @Test("Texture, UV and UV-derivative gradients", arguments: TextureFilter.allCases, TextureBoundary.allCases)
    func finiteDifferences(filter: TextureFilter, boundary: TextureBoundary) {
        // 6×5: odd levels (6×5, 3×2, 1×1); 8×4: even (8×4, 4×2, 2×1, 1×1).
        for (k, (w, h, c)) in [(6, 5, 2), (8, 4, 1)].enumerated() {
            let p = MeshTextureProblem(width: w, height: h, channels: c, count: 14, filter: filter, boundary: boundary,
                                   differentiable: true, seed: UInt64(40 + k))
            let analytic = p.referenceGradients()
            let eps = 1e-6
            var worst = (error: 0.0, name: "", analytic: 0.0, numeric: 0.0)
            func compare(_ name: String, _ a: Double, _ edit: (inout MeshTextureProblem, Double) -> Void) {
                var plus = p, minus = p
                edit(&plus, eps); edit(&minus, -eps)
                let n = (p.loss(plus.sample())
                    - p.loss(minus.sample())) / (2 * eps)
                let error = abs(a - n) / max(1e-2, abs(n))  // relative, absolute near zero
                if error > worst.error { worst = (error, name, a, n) }
            }
            for i in p.texels.indices { compare("texture[\(i)]", analytic.texture[i]) { $0.texels[i] += $1 } }
            for i in p.uv.indices { compare("uv[\(i)]", analytic.uv[i]) { $0.uv[i] += $1 } }
            if filter == .trilinear {
                for i in p.derivatives.indices { compare("uvDerivatives[\(i)]", analytic.uvDerivatives![i]) { $0.derivatives[i] += $1 } }
            }
            #expect(worst.error < 1e-5, "\(w)×\(h) worst \(worst.name): analytic \(worst.analytic), numeric \(worst.numeric)")
            // The check means something: gradients reach the UVs (and λ) for the smooth filters.
            if filter != .nearest { #expect(analytic.uv.contains { abs($0) > 1e-3 }) }
            if filter == .trilinear { #expect(analytic.uvDerivatives!.contains { abs($0) > 1e-3 }) }
        }
    }
}

// MARK: - Hand-checked cases

@Suite("MeshTexture hand-checked cases")
struct MeshTextureCaseTests {
    /// A 5×3 texture whose texel (x, y) holds 10·y + x (one channel).
    static let grid = Image(width: 5, height: 3, channels: 1, pixels: (0..<15).map { Float(10 * ($0 / 5) + $0 % 5) })

    @Test("Sampling at a texel centre returns that texel (5×3, v up)", arguments: TextureBoundary.allCases)
    func texelCentres(boundary: TextureBoundary) {
        var uv: [Float] = [], expected: [Float] = []
        for y in 0..<3 {
            for x in 0..<5 {
                uv += [(Float(x) + 0.5) / 5, 1 - (Float(y) + 0.5) / 3]
                expected.append(Self.grid[x, y, 0])
            }
        }
        // λ = 0 exactly: one texel per pixel along both axes.
        let derivatives = [Float]((0..<15).flatMap { _ in [1 / 5, 0, 0, 1 / 3] as [Float] })
        for filter in TextureFilter.allCases {
            let out = MeshTexture.sample(Self.grid, uv: uv, uvDerivatives: derivatives, filter: filter, boundary: boundary)
            let e = MeshTextureProblem.worstError(out, expected)
            #expect(e.error <= 1e-5, "\(filter): at \(e.index) got \(e.a), texel holds \(e.b)")
        }
        // v near 0 is the bottom row, the image's last; v near 1 the top row.
        #expect(MeshTexture.sample(Self.grid, uv: [0.1, 0.02, 0.1, 0.98], filter: .nearest, boundary: boundary) == [20, 0])
    }

    @Test("Wrap and clamp at u = −0.25 and v = −0.25")
    func wrapVersusClamp() {
        let row = Image(width: 4, height: 1, channels: 1, pixels: [10, 20, 30, 40])
        // Wrap: u = −0.25 ≡ 0.75, sx = 2.5, halfway between texels 2 and 3. Clamp: the first texel.
        #expect(MeshTexture.sample(row, uv: [-0.25, 0.5], boundary: .wrap) == [35])
        #expect(MeshTexture.sample(row, uv: [-0.25, 0.5], boundary: .clamp) == [10])
        #expect(MeshTexture.sample(row, uv: [-0.25, 0.5], filter: .nearest, boundary: .wrap) == [40])
        #expect(MeshTexture.sample(row, uv: [-0.25, 0.5], filter: .nearest, boundary: .clamp) == [10])
        // Rows top to bottom 10…40. Wrap: v = −0.25 ≡ 0.75, between rows 0 and 1. Clamp: below the
        // bottom edge, the last row.
        let column = Image(width: 1, height: 4, channels: 1, pixels: [10, 20, 30, 40])
        #expect(MeshTexture.sample(column, uv: [0.5, -0.25], boundary: .wrap) == [15])
        #expect(MeshTexture.sample(column, uv: [0.5, -0.25], boundary: .clamp) == [40])
        // Clamped taps share the edge texel: no UV gradient there.
        let g = MeshTexture.sampleBackward(row, uv: [-0.25, 0.5], boundary: .clamp, outputGradient: [1])
        #expect(g.uv == [0, 0] && g.texture == [1, 0, 0, 0])
        let gw = MeshTexture.sampleBackward(row, uv: [-0.25, 0.5], boundary: .wrap, outputGradient: [1])
        #expect(gw.uv == [40, 0] && gw.texture == [0, 0, 0.5, 0.5])  // ∂/∂u = W·(40 − 30)
    }

    @Test("A 1×1 texture reads its texel everywhere, with no UV gradient", arguments: TextureFilter.allCases, TextureBoundary.allCases)
    func singleTexel(filter: TextureFilter, boundary: TextureBoundary) {
        let texel: [Float] = [0.2, 0.4, 0.6, 0.8]
        let image = Image(width: 1, height: 1, channels: 4, pixels: texel)
        let uv: [Float] = [0.5, 0.5, -3.7, 12.25, 1e8, -1e8, 0, 1]
        let derivatives: [Float] = [0.1, 0, 0, 0.1, 5, 5, 5, 5, 0, 0, 0, 0, 1e-4, 2e-4, 3, -1]
        let out = MeshTexture.sample(image, uv: uv, uvDerivatives: derivatives, filter: filter, boundary: boundary)
        // The bilinear weights sum to 1 up to rounding.
        #expect(MeshTextureProblem.worstError(out, texel + texel + texel + texel).error < 1e-6, "\(out)")
        let weights: [Float] = (0..<16).map { Float($0) - 7.5 }
        let g = MeshTexture.sampleBackward(image, uv: uv, uvDerivatives: derivatives, filter: filter, boundary: boundary, outputGradient: weights)
        #expect(g.uv.allSatisfy { $0 == 0 })
        #expect(g.uvDerivatives?.allSatisfy { $0 == 0 } ?? true)
        let expected = (0..<4).map { c in (0..<4).reduce(Float(0)) { $0 + weights[4 * $1 + c] } }
        #expect(MeshTextureProblem.worstError(g.texture, expected).error < 1e-5, "\(g.texture) vs \(expected)")
    }

    @Test("5×3 pyramid: floor halving, the leftover column joins the last box")
    func nonSquarePyramid() {
        let pyramid = MipPyramid(Self.grid)
        #expect(pyramid.widths == [5, 2, 1] && pyramid.heights == [3, 1, 1] && pyramid.offsets == [0, 15, 17, 18])
        // Level 1: columns 0–1 and 2–4 of all three rows; the rows average to 10, the columns to 0.5 and 3.
        let level1 = pyramid.level(1).pixels, level2 = pyramid.level(2).pixels
        #expect(abs(level1[0] - 10.5) < 1e-5 && abs(level1[1] - 13) < 1e-5, "level 1 = \(level1)")
        #expect(abs(level2[0] - 11.75) < 1e-5, "level 2 = \(level2)")
        // A gradient on the top level spreads over level 0 by the boxes' areas: 1/2·1/6 and 1/2·1/9.
        let g = MeshTexture.sampleBackward(pyramid, uv: [0.3, 0.6], uvDerivatives: [100, 0, 0, 0], filter: .trilinear,
                                           outputGradient: [1])
        let expected = (0..<15).map { Float($0 % 5 < 2 ? 1.0 / 12 : 1.0 / 18) }
        #expect(MeshTextureProblem.worstError(g.texture, expected).error < 1e-6, "\(g.texture)")
        #expect(g.uv == [0, 0] && g.uvDerivatives == [0, 0, 0, 0])  // λ clamped at the top, 1×1 level
    }

    @Test("A constant texture is that constant at every level and every sample")
    func constantTexture() {
        let value: [Float] = [0.3, 0.6, 0.9]
        let image = Image(width: 13, height: 6, channels: 3, pixels: Array((0..<78).map { _ in value }.joined()))
        let pyramid = MipPyramid(image)
        #expect(pyramid.levelCount == 4)
        for k in 0..<pyramid.levelCount {
            let level = pyramid.level(k).pixels
            #expect(level.indices.allSatisfy { abs(level[$0] - value[$0 % 3]) < 1e-6 }, "level \(k)")
        }
        let p = MeshTextureProblem(width: 13, height: 6, channels: 3, count: 60, filter: .trilinear, boundary: .wrap, differentiable: false, seed: 9)
        for filter in TextureFilter.allCases {
            let out = MeshTexture.sample(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter)
            #expect(out.indices.allSatisfy { abs(out[$0] - value[$0 % 3]) < 1e-6 }, "\(filter)")
            // Weights sum to one and the pyramid's boxes conserve totals: the texture gradient sums to Σ g.
            let g = MeshTexture.sampleBackward(pyramid, uv: p.uvFloat, uvDerivatives: p.derivativesFloat, filter: filter,
                                               outputGradient: p.lossWeightsFloat)
            for c in 0..<3 {
                let total = stride(from: c, to: g.texture.count, by: 3).reduce(Float(0)) { $0 + g.texture[$1] }
                let expected = stride(from: c, to: p.lossWeightsFloat.count, by: 3).reduce(Float(0)) { $0 + p.lossWeightsFloat[$1] }
                #expect(abs(total - expected) < 1e-4, "\(filter) channel \(c): \(total) vs \(expected)")
            }
            #expect(g.uv.allSatisfy { abs($0) < 1e-4 }, "\(filter): UV gradient on a constant texture")
        }
    }

    @Test("Non-finite inputs read 0 with no gradient; huge UVs stay in bounds", arguments: TextureFilter.allCases, TextureBoundary.allCases)
    func hostileInputs(filter: TextureFilter, boundary: TextureBoundary) {
        let image = Image(width: 5, height: 3, channels: 2, pixels: (0..<30).map { Float($0) / 30 + 0.1 })
        let bad: [Float] = [.nan, 0.5, 0.5, .infinity, -.infinity, 0.2, 0.4, 0.6]  // samples 0–2 bad UVs, sample 3 bad derivatives
        let huge: [Float] = [1e8, -1e8, -1e30, 3e38, .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1e8 + 0.5, 0.3]
        let uv = bad + huge
        var derivatives = [Float](repeating: 0.05, count: 4 * 8)
        derivatives[12] = .nan
        derivatives[20...23] = [1e30, 1e30, -1e30, 0]  // λ overflows to +∞: clamped to the top level
        let out = MeshTexture.sample(image, uv: uv, uvDerivatives: derivatives, filter: filter, boundary: boundary)
        let skipped = filter == .trilinear ? 0..<4 : 0..<3
        #expect(out[(2 * skipped.lowerBound) ..< (2 * skipped.upperBound)].allSatisfy { $0 == 0 })
        #expect(out[(2 * skipped.upperBound)...].allSatisfy { $0 >= 0.1 && $0 <= 1.1 }, "\(out)")
        let weights = [Float](repeating: 1, count: 16)
        let g = MeshTexture.sampleBackward(image, uv: uv, uvDerivatives: derivatives, filter: filter, boundary: boundary, outputGradient: weights)
        #expect(g.uv[(2 * skipped.lowerBound) ..< (2 * skipped.upperBound)].allSatisfy { $0 == 0 })
        #expect(g.uv.allSatisfy { $0.isFinite } && g.texture.allSatisfy { $0.isFinite })
        if let gd = g.uvDerivatives {
            #expect(gd.allSatisfy { $0.isFinite })
            #expect(gd[12..<16].allSatisfy { $0 == 0 } && gd[20..<24].allSatisfy { $0 == 0 })
        }
        // Only the valid samples' weights reach the texture (each sample's weights sum to 1 per channel).
        let total = g.texture.reduce(0, +)
        #expect(abs(total - Float(2 * (8 - skipped.count))) < 1e-4, "texture gradient total \(total)")
        // The reference agrees, in float64.
        let reference = MeshTextureReference.sample(image.pixels.map { Double($0) }, width: 5, height: 3, channels: 2, uv: uv.map { Double($0) },
                                                    uvDerivatives: derivatives.map { Double($0) }, filter: filter, boundary: boundary)
        #expect(reference[(2 * skipped.lowerBound) ..< (2 * skipped.upperBound)].allSatisfy { $0 == 0 })
        #expect(reference.allSatisfy { $0.isFinite })
    }
}
