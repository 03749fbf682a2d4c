import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("The denoising regulariser of tuning")
struct DenoisingRegularizerTests {
    /// Two fixed images (a red and a blue field with a gradient) and their conditions, at `size`.
    static func batch(size: Int) -> DenoisingRegularizer.Draw {
        { count, _ in
            let plane = size * size
            var storage = [Float](repeating: 0, count: count * 3 * plane)
            for b in 0..<count {
                for p in 0..<plane {
                    let ramp = Float(p % size) / Float(size)
                    storage[(b * 3 + (b % 2 == 0 ? 0 : 2)) * plane + p] = 0.3 + 0.6 * ramp
                    storage[(b * 3 + 1) * plane + p] = 0.2
                }
            }
            let conditions: [TuningCondition] = (0..<count).map { b in (b % 2 == 0 ? "a red snowman" : "a blue house", ViewConditioning(azimuthDegrees: Float(40 * b))) }
            return (Tensor(shape: [count, 3, size, size], storage: storage), conditions)
        }
    }

    @Test("its parameter gradient matches central differences of its loss (ε prior; v-prediction latent prior through the VAE)",
          arguments: [PriorPipelineTests.tiny, LatentPipelineTests.sd21])
    func gradient(folder: URL) throws {
        let pipeline = try PriorPipeline(folder: folder)
        var regularizer = DenoisingRegularizer(weight: 3, batchSize: 2, draw: Self.batch(size: pipeline.imageSize.height))
        regularizer.captionDropout = 0
        let start = RNG(seed: 5)
        pipeline.unet.namedParameters.forEach { $0.parameter.zeroGradient() }
        var rng = start
        let loss = try regularizer.accumulateGradient(pipeline, rng: &rng)
        #expect(loss.isFinite && loss > 0)
        let named = Dictionary(uniqueKeysWithValues: pipeline.unet.namedParameters.map { ($0.name, $0.parameter) })
        let names = ["conv_out.bias", "conv_in.weight"]
        // Read before the differences below add more into the gradients.
        let analytics = names.map { Double(named[$0]!.gradient.storage[named[$0]!.count / 2]) }
        func weighted() throws -> Double {
            var r = start
            return 3 * Double(try regularizer.accumulateGradient(pipeline, rng: &r))
        }
        for (name, analytic) in zip(names, analytics) {
            let p = named[name]!
            let numeric = try centralDifference(p, at: p.count / 2, weighted)
            #expect(abs(numeric - analytic) < 0.05 * max(0.002, abs(numeric)), "\(folder.lastPathComponent) \(name): numeric \(numeric), analytic \(analytic)")
        }
    }

    @Test("with a reward that gives no gradient, DRaFT epochs descend the denoising loss alone, measured on noise draws never trained on")
    func descends() throws {
        let pipeline = try PriorPipeline(folder: PriorPipelineTests.tiny)
        let trainer = try DRaFTTrainer(pipeline: pipeline, steps: 2, truncation: 1, guidanceScale: 2, learningRate: 3e-3, seed: 2)
        var regularizer = DenoisingRegularizer(weight: 1, batchSize: 2, draw: Self.batch(size: pipeline.imageSize.height))
        regularizer.captionDropout = 0
        trainer.regularizer = regularizer
        func heldOut() throws -> Float {
            var r = RNG(seed: 777), sum: Float = 0
            for _ in 0..<6 { sum += try regularizer.accumulateGradient(pipeline, rng: &r) / 6 }
            return sum
        }
        let before = try heldOut()
        let flat = TuningReward(differentiable: { _, images in ([Float](repeating: 0, count: images.shape[0]), Tensor(repeating: 0, shape: images.shape)) })
        var reports: [TuningEpochReport] = []
        for _ in 0..<20 { reports.append(try trainer.epoch(conditions: [("a red snowman", ViewConditioning())], reward: flat)) }
        let after = try heldOut()
        #expect(reports.allSatisfy { $0.denoisingLoss != nil && $0.times?.seconds[TuningStage.regularizer] != nil })
        #expect(after < 0.8 * before, "held-out denoising loss \(before) → \(after)")
    }
}
