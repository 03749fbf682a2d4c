import Foundation
import KilnCore
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnEval

@Suite("4D: motion analysis and temporal stability")
struct MotionAnalysisTests {
    /// A toy duck's vertices as opaque Gaussians, moved by a toy motion at each frame.
    static func frames(_ motion: ToyMotion?, count: Int = 9) -> (frames: [SplatParameters<Float>], times: [Float]) {
        let mesh = ToyKind.duck.mesh(main: .yellow, second: .orange)
        var base = SplatParameters<Float>(zerosLike: mesh.positions.count, shDegree: 0)
        for (i, p) in mesh.positions.enumerated() {
            for a in 0..<3 { base.means[3 * i + a] = p[a] }
            base.rotations[4 * i] = 1
            base.opacityLogits[i] = 3
        }
        let times = (0..<count).map { Float($0) / Float(count - 1) }
        let frames = times.map { tau -> SplatParameters<Float> in
            guard let motion else { return base }
            let (l, t) = motion.transform(at: tau)
            var q = base
            for i in 0..<base.count {
                let p = l * SIMD3(base.means[3 * i], base.means[3 * i + 1], base.means[3 * i + 2]) + t
                for a in 0..<3 { q.means[3 * i + a] = p[a] }
            }
            return q
        }
        return (frames, times)
    }

    @Test("each toy motion is recognised from its frames, a still object is still, and rigid motion leaves no residual",
          arguments: [ToyMotion?.none] + ToyMotion.allCases.map { Optional($0) })
    func knownMotions(motion: ToyMotion?) {
        let (frames, times) = Self.frames(motion)
        let analysis = MotionAnalysis.measure(frames, times: times)
        #expect(analysis.dominant == (motion?.rawValue ?? "still"), "\(motion?.rawValue ?? "still"): \(analysis.fractions)")
        #expect(analysis.nonRigid.allSatisfy { $0 < 1e-3 }, "\(analysis.nonRigid)")
        if let motion {
            // The toy world's own amplitude is a fraction of about 1 (bouncing: its height is near 1 unit).
            #expect(analysis.fractions[motion.rawValue]! > 0.5, "\(analysis.fractions)")
        }
        if motion == .spinning { #expect(abs(abs(analysis.yawDegrees.last!) - 360) < 1, "\(analysis.yawDegrees)") }
        if motion == .growing { #expect(abs(analysis.scale.last! - 2) < 1e-3, "\(analysis.scale)") }
    }

    @Test("similarity: a known rotation, scale and translation are recovered")
    func similarity() {
        var rng = RNG(seed: 3)
        let x = (0..<50).map { _ in SIMD3<Float>(rng.normal(), rng.normal(), rng.normal()) }
        let r = Mat3.rotation(axis: normalize(SIMD3(1, 2, 3)), angleRadians: 0.7)
        let y = x.map { 1.5 * (r * $0) + SIMD3(0.3, -0.2, 1) }
        let fit = MotionAnalysis.similarity(from: x, to: y, weights: [Float](repeating: 1, count: 50))
        #expect(abs(fit.scale - 1.5) < 1e-4 && fit.residual < 1e-4 && length(fit.translation - SIMD3(0.3, -0.2, 1)) < 1e-4, "\(fit)")
        for row in 0..<3 { for c in 0..<3 { #expect(abs(fit.rotation[row][c] - r[row: row, column: c]) < 1e-4) } }
    }

    @Test("temporal stability: smooth motion changes frames without flicker; noise flickers")
    func stability() {
        func frame(_ shift: Float, noise: Float, rng: inout RNG) -> Image {
            var image = Image(width: 16, height: 16, channels: 1)
            for y in 0..<16 { for x in 0..<16 {
                image.pixels[y * 16 + x] = 0.5 + 0.4 * Foundation.sin((Float(x) + shift) * 0.4) + noise * rng.uniform(-1...1)
            } }
            return image
        }
        var rng = RNG(seed: 1)
        let smooth = TemporalStability.measure([(0..<8).map { frame(Float($0) * 0.3, noise: 0, rng: &rng) }])
        let noisy = TemporalStability.measure([(0..<8).map { frame(Float($0) * 0.3, noise: 0.1, rng: &rng) }])
        #expect(smooth.frameChange > 0.02 && smooth.flicker < smooth.frameChange / 5, "\(smooth)")
        #expect(noisy.flicker > 3 * smooth.flicker && noisy.flicker > 0.03, "\(noisy) vs \(smooth)")
    }
}
