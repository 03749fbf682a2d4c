import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("Policy sampling for RL on the prior (DDPO)")
struct PolicySamplerTests {
    static let tiny = PriorPipelineTests.tiny

    @Test("stored log-probabilities are the policy's own; the parameter gradient of Σ w·log p matches finite differences")
    func gradient() throws {
        let pipeline = try PriorPipeline(folder: Self.tiny)
        let sampler = try PolicySampler(pipeline: pipeline, steps: 4, eta: 1, guidanceScale: 3)
        var rng = RNG(seed: 11)
        let views = [ViewConditioning(azimuthDegrees: 30), ViewConditioning(azimuthDegrees: 200)]
        let trajectories = try sampler.sample(prompts: ["a red snowman", "a blue house"], views: views, rng: &rng)
        #expect(trajectories.timesteps.count >= 3 && trajectories.final.shape == [2, 3, 16, 16] && trajectories.final.isFinite)
        for k in trajectories.timesteps.indices {
            let again = try sampler.logProbs(trajectories, step: k)
            #expect(zip(again, trajectories.logProbs[k]).allSatisfy { abs($0 - $1) < 1e-4 }, "step \(k): \(again) vs \(trajectories.logProbs[k])")
        }
        let k = 1, w: [Float] = [0.7, -1.3]
        pipeline.unet.zeroGradients()
        try sampler.accumulateGradient(trajectories, step: k) { _ in w }
        let named = Dictionary(uniqueKeysWithValues: pipeline.unet.namedParameters.map { ($0.name, $0.parameter) })
        func objective() throws -> Double {
            zip(try sampler.logProbs(trajectories, step: k), w).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        for name in ["conv_out.bias", "conv_in.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight"] {
            let p = named[name]!
            let index = p.shape.reduce(1, *) / 3
            let analytic = Double(p.gradient.storage[index])
            let original = p.value.storage[index], h: Float = 1e-2
            p.withUnsafeMutableValue { $0[index] = original + h }
            let up = try objective()
            p.withUnsafeMutableValue { $0[index] = original - h }
            let down = try objective()
            p.withUnsafeMutableValue { $0[index] = original }
            let numeric = (up - down) / Double(2 * h)
            #expect(abs(numeric - analytic) < 0.05 * max(0.05, abs(numeric)), "\(name): numeric \(numeric), analytic \(analytic)")
        }
    }

    @Test("PPO clipping: the gradient weight is −A·r inside the trust region and 0 where the clipped term wins")
    func ppoClip() {
        let old: [Float] = [0, 0, 0, 0]
        let current: [Float] = [0, Foundation.log(1.5), Foundation.log(1.5), Foundation.log(0.5)]
        let advantages: [Float] = [2, 1, -1, -1]
        let w = PPOClip.logProbWeights(current: current, old: old, advantages: advantages, clipRange: 0.2)
        #expect(w[0] == -2)                   // r = 1: −A
        #expect(w[1] == 0)                    // A > 0, r above 1 + ε: clipped
        #expect(abs(w[2] - 1.5) < 1e-6)       // A < 0, r above 1 + ε: the unclipped term is larger
        #expect(w[3] == 0)                    // A < 0, r below 1 − ε: clipped
        #expect(abs(PPOClip.loss(current: current, old: old, advantages: advantages, clipRange: 0.2) - (-2 - 1.2 + 1.5 + 0.8) / 4) < 1e-6)
    }
}
