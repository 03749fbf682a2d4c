import Foundation
import KilnCore
import Testing
@testable import KilnPrior

/// The stochastic DDIM step as a policy against DDPO's `ddim_step_with_logprob` on diffusers'
/// scheduler (goldens: tools/make_ddpo_goldens.py, float64 autograd).
@Suite("DDIM log-probabilities (DDPO)")
struct DDIMLogProbTests {
    struct Case: Decodable {
        var name: String
        var config: [String: ConfigValue]
        var steps: Int
        var timestep: Int
        var eta: Double
        var shape: [Int]
        var model_output: [Float]
        var sample: [Float]
        var noise: [Float]
        var weights: [Float]
        var prev_sample: [Double]
        var log_prob: [Double]
        var gradient: [Double]
    }

    static func cases() throws -> [Case] {
        struct File: Decodable { var cases: [Case] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ddpo_logprob.json")
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases
    }

    static func scheduler(_ c: Case) throws -> DDIMScheduler {
        var object = c.config
        object["_class_name"] = .string("DDIMScheduler")
        var s = try DDIMScheduler(config: SchedulerConfig(json: try JSONEncoder().encode(object), source: c.name))
        try s.setTimesteps(c.steps)
        return s
    }

    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        let scale = max(1, b.map(abs).max() ?? 0)
        return zip(a, b).map { abs(Double($0) - $1) }.max()! / scale
    }

    @Test("the step, its log-probability and the gradient match DDPO's on diffusers' scheduler (ε, v, x₀; clipped and not)")
    func parity() throws {
        let cases = try Self.cases()
        #expect(cases.count == 20 && Set(cases.map(\.name)).count == 4)
        for c in cases {
            let s = try Self.scheduler(c)
            let b = c.shape[0]
            let step = try s.stepWithLogProb(modelOutput: c.model_output, timestep: c.timestep, sample: c.sample, eta: c.eta, noise: c.noise, batchSize: b)
            let label = "\(c.name) t=\(c.timestep) η=\(c.eta)"
            #expect(Self.relativeError(step.prevSample, c.prev_sample) < 1e-5, "\(label): prev_sample")
            #expect(Self.relativeError(step.logProb, c.log_prob) < 1e-4, "\(label): log_prob \(step.logProb) vs \(c.log_prob)")
            // Re-scoring the stored step gives the same log-probability.
            let again = try s.stepWithLogProb(modelOutput: c.model_output, timestep: c.timestep, sample: c.sample, eta: c.eta,
                                              prevSample: step.prevSample, batchSize: b)
            #expect(again.logProb == step.logProb)
            let gradient = try s.logProbGradient(modelOutput: c.model_output, timestep: c.timestep, sample: c.sample, eta: c.eta,
                                                 prevSample: step.prevSample, weights: c.weights, batchSize: b)
            #expect(Self.relativeError(gradient, c.gradient) < 1e-4, "\(label): gradient")
        }
    }

    @Test("a noiseless step, η outside (0, 1] and thresholding are refused by name")
    func refusals() throws {
        var config = SchedulerConfig(kind: .ddim)
        var s = try DDIMScheduler(config: config)
        try s.setTimesteps(20)  // leading spacing without offset: the last timestep is 0, a step with σ = 0
        let x = [Float](repeating: 0.1, count: 4)
        #expect(throws: SchedulerError.deterministicStep(timestep: 0)) {
            try s.stepWithLogProb(modelOutput: x, timestep: 0, sample: x, eta: 1, noise: x, batchSize: 1)
        }
        for eta in [0.0, -1, 1.5, .nan] {
            #expect {
                try s.stepWithLogProb(modelOutput: x, timestep: 950, sample: x, eta: eta, noise: x, batchSize: 1)
            } throws: { "\($0)".contains("needs 0 < eta ≤ 1") }
        }
        config.thresholding = true
        s = try DDIMScheduler(config: config)
        try s.setTimesteps(20)
        #expect(throws: SchedulerError.thresholdingWithLogProb) {
            try s.stepWithLogProb(modelOutput: x, timestep: 950, sample: x, eta: 1, noise: x, batchSize: 1)
        }
    }
}
