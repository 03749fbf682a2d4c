import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnRender
import Testing
@testable import KilnDistill

@Suite("Gaussian distillation")
struct GaussianDistillationTests {
    static func run(method: DistillationMethod = .sds, steps: Int = 6, seed: UInt64 = 3, threads: Int = 2) throws -> DistillationRun<GaussianScene> {
        let prior = try DistillationPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman")
        var views = ViewSettings()
        views.renderSize = 32
        views.viewsPerStep = 2
        var settings = GaussianSettings()
        settings.initialGaussians = 300
        settings.densifyEvery = 2
        settings.densifyGradientThreshold = 0  // every visible Gaussian densifies: the checkpoint must carry the new ones
        var guidance = RewardGuidanceSettings()
        guidance.method = method
        guidance.noises = 2
        let scene = try GaussianScene(settings: settings, steps: steps, extent: views.objectRadius, seed: seed, threads: threads)
        return try DistillationRun(scene: scene, prior: prior, rewards: method == .sds ? nil : tinyRewards(), steps: steps, sds: SDSSettings(),
                                   guidance: guidance, views: views, rng: RNG(seed: seed).split(2))
    }

    @Test("steps change the splats, densify, and repeat exactly for a seed", arguments: [DistillationMethod.sds, .rewardWeighted])
    func deterministic(method: DistillationMethod) throws {
        let a = try Self.run(method: method), b = try Self.run(method: method)
        let initial = a.scene.parameters
        let reports = try (0..<6).map { _ in try a.step() }
        for _ in 0..<6 { _ = try b.step() }
        #expect(a.scene.parameters == b.scene.parameters && a.scene.parameters != initial)
        #expect(a.scene.parameters.count > initial.count, "densification should add Gaussians: \(initial.count) → \(a.scene.parameters.count)")
        #expect(reports.map(\.step) == Array(1...6) && reports.allSatisfy { !$0.skipped && $0.sdsLoss.isFinite })
        // RewardSDS scores its noises for the first 70% of the run, then is plain SDS.
        #expect(method == .sds || (reports.prefix(5).allSatisfy { $0.reward != nil } && reports.last!.reward == nil))
    }

    @Test("a checkpoint resumes bit-identically")
    func resume() throws {
        let (straight, _, resumed, folder) = try straightAndResumed({ try Self.run() }, steps: 6, at: 3)
        defer { try? FileManager.default.removeItem(at: folder) }
        #expect(resumed.scene.parameters == straight.scene.parameters)
        #expect(resumed.rng == straight.rng)
        // A damaged checkpoint is an error naming the file, not a crash.
        try Data("{}".utf8).write(to: folder.appendingPathComponent("state.json"))
        #expect(throws: DistillError.self) { try Self.run().restore(from: folder) }
    }

    @Test("a non-finite gradient skips the update; twenty in a row stop the run")
    func nonFinite() throws {
        let run = try Self.run(steps: 40)
        // NaN colours make the renders, the prior's prediction and the gradient NaN.
        var p = run.scene.parameters
        p.sh = p.sh.map { _ in .nan }
        run.scene.parameters = p
        let before = run.scene.parameters
        let report = try run.step()
        #expect(report.skipped && report.nonFinite > 0 && run.skippedSteps == 1)
        #expect(run.scene.parameters.means == before.means && run.scene.parameters.opacityLogits == before.opacityLogits)
        var thrown = false
        for _ in 0..<30 {
            do { _ = try run.step() } catch is DistillError { thrown = true; break }
        }
        #expect(thrown)
    }

    @Test("the render-to-prior bridge: 2×2 means in [−1, 1] and its exact transpose")
    func bridge() {
        var rng = RNG(seed: 9)
        let color = rng.uniforms(count: 4 * 6 * 3)  // a 4×6 render… 6 wide, 4 high
        let x = PriorImage.fromRender(color, width: 6, height: 4, factor: 2)
        #expect(x.count == 3 * 3 * 2)
        let expected = 2 * (color[0] + color[3] + color[18] + color[21]) / 4 - 1
        #expect(abs(x[0] - expected) < 1e-6)
        // ⟨A c, g⟩ = ⟨c, Aᵀ g⟩ for the linear part.
        let g = rng.normals(count: x.count)
        let back = PriorImage.renderGradient(g, width: 6, height: 4, factor: 2)
        let lhs = zip(x.map { $0 + 1 }, g).map { Double($0 * $1) }.reduce(0, +)
        let rhs = zip(color, back).map { Double($0 * $1) }.reduce(0, +)
        #expect(abs(lhs - rhs) < 1e-4)
        // Out of range: the value is clamped, and only gradients that lead back into [0, 1] pass.
        var bright = color
        bright[0] = 1.5; bright[1] = -0.2
        let clamped = PriorImage.fromRender(bright, width: 6, height: 4, factor: 2)
        #expect(abs(clamped[0] - (2 * (1 + color[3] + color[18] + color[21]) / 4 - 1)) < 1e-6)
        let up = PriorImage.renderGradient([Float](repeating: -1, count: x.count), width: 6, height: 4, factor: 2, color: bright)
        let down = PriorImage.renderGradient([Float](repeating: 1, count: x.count), width: 6, height: 4, factor: 2, color: bright)
        #expect(up[0] == 0 && down[0] == 0.5 && up[1] == -0.5 && down[1] == 0)
    }
}
