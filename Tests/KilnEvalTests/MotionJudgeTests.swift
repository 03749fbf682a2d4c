import Foundation
import KilnCore
import KilnPrior
import KilnRender
import KilnToyWorld
import Testing
@testable import KilnEval

@Suite("4D: the motion-pair model as a judge of rendered frames")
struct MotionJudgeTests {
    static func model() throws -> MotionPairReward { try MotionPairReward.load(shippedRewards.appendingPathComponent("motion_pair.safetensors")) }
    static let times = (0..<16).map { Float($0) / 15 }

    /// A toy duck with `motion`, seen from two fixed cameras over 16 frames, drawn by `draw`.
    static func sequences(_ motion: ToyMotion?, draw: (ToySample, Int) -> Image) -> [[Image]] {
        var sample = ToySample(seed: 5, index: 0)
        sample.kind = .duck
        sample.mainColor = .yellow
        sample.secondColor = .orange
        sample.motion = motion
        sample.background = SIMD3(1, 1, 1)
        sample.distanceScale = 1.1
        return [Float(30), 120].map { azimuth in
            sample.azimuthDegrees = azimuth
            sample.elevationDegrees = 15
            return times.map { tau in
                sample.time = motion == nil ? nil : tau
                return draw(sample, 32)
            }
        }
    }

    @Test("the toy world's own renders: each motion is named, a still object is still",
          arguments: [ToyMotion?.none] + ToyMotion.allCases.map { Optional($0) })
    func toyRenders(motion: ToyMotion?) throws {
        let model = try Self.model()
        let judgement = try #require(MotionJudgement.judge(model, sequences: Self.sequences(motion) { s, size in s.render(size: size) }, times: Self.times))
        // 16 frames 1/15 apart: gaps 3/15, 4/15 and 5/15 fall in 0.15…0.35 (13 + 12 + 11 pairs), at 2 cameras.
        #expect(judgement.pairs == 72)
        #expect(judgement.dominant == (motion?.rawValue ?? "still"), "\(judgement.probabilities)")
        #expect(judgement.probabilities[motion?.rawValue ?? "still"]! > 0.8, "\(judgement.probabilities)")
        #expect(abs(judgement.probabilities.values.reduce(0, +) - 1) < 1e-4)
    }

    @Test("splats sampled on the moving duck: the judge carries over from meshes to splat renders",
          arguments: [ToyMotion?.none] + ToyMotion.allCases.map { Optional($0) })
    func splatRenders(motion: ToyMotion?) throws {
        let model = try Self.model()
        let sequences = Self.sequences(motion) { sample, size in
            var rng = RNG(seed: 9)  // the same draw at every frame: the same Gaussians on the moved surface
            let cloud = SplatParameters<Float>(GaussianCloud.sampled(on: sample.mesh, count: 4000, opacity: 0.95, rng: &rng))
            return SplatRasterizer.render(cloud, camera: sample.camera(size: size), settings: SplatRenderSettings(background: SIMD3(1, 1, 1))).color
        }
        let judgement = try #require(MotionJudgement.judge(model, sequences: sequences, times: Self.times))
        #expect(judgement.dominant == (motion?.rawValue ?? "still"), "\(judgement.probabilities)")
    }

    @Test("frames too far apart for the model's gaps give no judgement")
    func noPairs() throws {
        let model = try Self.model()
        let image = Image(width: 32, height: 32, channels: 3)
        #expect(MotionJudgement.judge(model, sequences: [[image, image, image]], times: [0, 0.5, 1]) == nil)
    }
}
