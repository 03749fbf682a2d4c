import Foundation
import KilnCore
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnEval

@Suite("Speckle measure")
struct SpeckleTests {
    /// A 48² view of a disc of radius 18 whose colour at each pixel is `inside(x, y)`, on a
    /// background coloured `outside(x, y)`.
    static func disc(_ inside: (Int, Int) -> SIMD3<Float>, outside: (Int, Int) -> SIMD3<Float> = { _, _ in SIMD3(1, 1, 1) },
                     radius: Float = 18) -> (Image, Image) {
        let n = 48
        var color = Image(width: n, height: n, channels: 3), alpha = Image(width: n, height: n, channels: 1)
        for y in 0..<n {
            for x in 0..<n {
                let dx = Float(x) - 23.5, dy = Float(y) - 23.5
                let a: Float = dx * dx + dy * dy <= radius * radius ? 1 : 0
                let c = a > 0 ? inside(x, y) : outside(x, y)
                alpha.pixels[y * n + x] = a
                for k in 0..<3 { color.pixels[(y * n + x) * 3 + k] = c[k] }
            }
        }
        return (color, alpha)
    }

    static func noise(seed: UInt64) -> (Int, Int) -> SIMD3<Float> {
        var rng = RNG(seed: seed)
        let values = (0..<(48 * 48 * 3)).map { _ in Float.random(in: 0.2...0.8, using: &rng) }
        return { x, y in SIMD3(values[(y * 48 + x) * 3], values[(y * 48 + x) * 3 + 1], values[(y * 48 + x) * 3 + 2]) }
    }

    @Test("flat and smoothly shaded colour score near 0, per-pixel noise √0.76 of its standard deviation (the share a 1-pixel blur removes)")
    func extremes() {
        let (flat, mask) = Self.disc { _, _ in SIMD3(0.8, 0.2, 0.1) }
        #expect(SpeckleMeasure.speckle(color: flat, alpha: mask)! < 1e-9)
        let (ramp, _) = Self.disc { x, y in SIMD3(Float(x) / 48, Float(y) / 48, 0.5) }
        #expect(SpeckleMeasure.speckle(color: ramp, alpha: mask)! < 0.003)
        // Uniform on [0.2, 0.8]: σ = 0.6/√12; the blur keeps a share 0.24 of white noise's power (less near the border).
        let (noisy, _) = Self.disc(Self.noise(seed: 3))
        let s = SpeckleMeasure.speckle(color: noisy, alpha: mask)!, sigma = 0.6 / 12.0.squareRoot()
        #expect(s > 0.8 * sigma && s < 0.95 * sigma, "\(s) against σ \(sigma)")
    }

    @Test("only the object counts: noise on the background, or a sharp silhouette against it, adds nothing")
    func maskOnly() {
        let (color, mask) = Self.disc({ x, _ in SIMD3(0.3 + Float(x) / 200, 0.6, 0.2) }, outside: Self.noise(seed: 4))
        #expect(SpeckleMeasure.speckle(color: color, alpha: mask)! < 0.003)
        // Fewer than 16 object pixels once shrunk: no score, and out of the mean.
        let (tiny, tinyMask) = Self.disc(Self.noise(seed: 5), radius: 2)
        #expect(SpeckleMeasure.speckle(color: tiny, alpha: tinyMask) == nil)
        let camera = Camera.orbit(azimuthDegrees: 0, elevationDegrees: 0, radius: 3, target: .zero, width: 48, height: 48, fovYRadians: 0.7)
        let m = SpeckleMeasure.measure([PosedView(camera: camera, color: tiny, alpha: tinyMask), PosedView(camera: camera, color: color, alpha: mask)])
        #expect(m.perView[0] == nil && m.mean == m.perView[1]!)
    }

    @Test("more speckled colour scores higher; the mean is over the views")
    func ordering() {
        let smooth = Self.noise(seed: 6)
        func mixed(_ share: Float) -> (Int, Int) -> SIMD3<Float> {
            { x, y in SIMD3(0.5 + 0.3 * Float(x - 24) / 24, 0.4, 0.5 - 0.3 * Float(y - 24) / 24) * (1 - share) + smooth(x, y) * share }
        }
        let shares: [Float] = [0, 0.1, 0.3, 1]
        let views = shares.map { share -> PosedView in
            let (c, a) = Self.disc(mixed(share))
            let camera = Camera.orbit(azimuthDegrees: 0, elevationDegrees: 0, radius: 3, target: .zero, width: 48, height: 48, fovYRadians: 0.7)
            return PosedView(camera: camera, color: c, alpha: a)
        }
        let m = SpeckleMeasure.measure(views)
        let values = m.perView.map { $0! }
        #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "\(values)")
        #expect(abs(m.mean - values.reduce(0, +) / 4) < 1e-12)
    }

    @Test("a clean two-coloured toy mesh scores far below noise: only the border between its parts counts")
    func toyMesh() {
        let views = ViewConsistencyTests.duckViews(count: 4, size: 48)
        let m = SpeckleMeasure.measure(views)
        #expect(m.mean > 0 && m.mean < 0.03, "\(m.perView)")
    }
}
