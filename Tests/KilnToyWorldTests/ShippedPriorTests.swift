import Foundation
import KilnCore
import KilnNN
import KilnPrior
import Testing
@testable import KilnToyWorld

/// The prior and reward models in assets/ (skipped in a checkout without them).
@Suite("The shipped prior")
struct ShippedPriorTests {
    static let assets = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../assets").standardizedFileURL
    static var present: Bool {
        FileManager.default.fileExists(atPath: assets.appendingPathComponent("prior/unet/diffusion_pytorch_model.safetensors").path)
            && FileManager.default.fileExists(atPath: assets.appendingPathComponent("rewards/alignment.safetensors").path)
    }

    @Test("loads as a 32² view-conditioned pipeline with the toy vocabulary, and draws the kind and colour asked for", .enabled(if: present))
    func loadsAndSamples() throws {
        let pipeline = try PriorPipeline(folder: Self.assets.appendingPathComponent("prior"))
        #expect(pipeline.hasViewConditioning && pipeline.imageSize == (32, 32) && pipeline.settings.vocabulary == ToySample.vocabulary)
        let x = try pipeline.sample(SampleRequest(prompt: "a red snowman", count: 2, steps: 10, guidanceScale: 3, seed: 1))
        #expect(x.shape == [2, 3, 32, 32] && x.isFinite)
        var nets: [RewardTerm: RewardNet] = [:]
        for kind in RewardTerm.allCases {
            nets[kind] = try RewardNet.load(Self.assets.appendingPathComponent("rewards/\(kind.rawValue).safetensors")).net
        }
        // 24 held-in captions and cameras; the model card has the 200-sample numbers.
        let score = try PriorScore.measure(prior: pipeline, rewards: nets, count: 24, seed: 3, steps: 20, guidanceScale: 3)
        // The card's 200 samples at 30 steps: kind 0.905, main colour 0.900; chance is 0.083 and 0.091.
        #expect(score.kind >= 0.7 && score.mainColor >= 0.7, "kind \(score.kind), main colour \(score.mainColor)")
    }
}
