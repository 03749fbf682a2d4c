import Foundation
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld
import Testing
@testable import KilnDistill

/// The tiny diffusers pipeline KilnPrior's tests use (16², camera projection).
let tinyPipeline = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../KilnPriorTests/Fixtures/pipelines/tiny").standardizedFileURL

/// Random reward models of the tiny prior's size.
func tinyRewards(seed: UInt64 = 5) throws -> RewardModels {
    var rng = RNG(seed: seed)
    var nets: [RewardTerm: RewardNet] = [:]
    for kind in RewardTerm.allCases { nets[kind] = RewardNet(heads: kind.heads, width: 8, imageSize: 16, rng: &rng) }
    return try RewardModels(nets: nets)
}

@Suite("Score distillation")
struct ScoreDistillationTests {
    let prior: PixelDiffusionPrior

    init() throws {
        prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", negativePrompt: "blurry", backgrounds: ToySample.backgrounds)
    }

    static func images(_ b: Int, seed: UInt64) -> Tensor {
        var rng = RNG(seed: seed)
        return Tensor(shape: [b, 3, 16, 16], storage: rng.uniforms(count: b * 3 * 256, in: -1...1))
    }

    @Test("batched guided prediction = separate unconditional and conditional UNet calls, view by view")
    func guidedPrediction() throws {
        let x = Self.images(2, seed: 1)
        let views = [ViewConditioning(azimuthDegrees: 30, elevationDegrees: 10), ViewConditioning(azimuthDegrees: 200, elevationDegrees: 40, time: 0.3)]
        let p = prior.predictNoise(x, timestep: 420, views: views, guidanceScale: 6)
        let pipeline = prior.pipeline
        for (v, view) in views.enumerated() {
            let image = x.chunked(2, axis: 0)[v]
            let labels = Tensor(shape: [1, ViewConditioning.length], storage: view.vector)
            let u = pipeline.unet.forward(image, timesteps: [420], encoderHiddenStates: pipeline.encode(["blurry"]), classLabels: labels).storage
            let c = pipeline.unet.forward(image, timesteps: [420], encoderHiddenStates: pipeline.encode(["a red snowman"]), classLabels: labels).storage
            let guided = p.guided.chunked(2, axis: 0)[v].storage
            var worst = 0.0
            for i in 0..<u.count {
                let expected = Double(u[i]) + 6 * (Double(c[i]) - Double(u[i]))
                worst = max(worst, abs(Double(guided[i]) - expected) / (1 + abs(expected)))
            }
            #expect(worst < 1e-4, "view \(v): worst relative error \(worst)")
        }
    }

    @Test("the SDS term is w(t)·(ε̂ − ε) with x_t and x̂₀ from the schedule (float64 reference)")
    func sdsTerm() throws {
        let x = Self.images(2, seed: 2)
        var rng = RNG(seed: 3)
        let noise = rng.normals(count: x.count)
        let views = [ViewConditioning(azimuthDegrees: 0), ViewConditioning(azimuthDegrees: 90)]
        for weighting in SDSWeighting.allCases {
            var settings = SDSSettings()
            settings.weighting = weighting
            settings.guidanceScale = 4
            let term = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: 600, noise: noise, settings: settings)
            let a = Double(prior.schedule.alphaCumprod(600))
            let w: Double = switch weighting { case .sds: 1 - a; case .uniform: 1; case .fantasia: a.squareRoot() * (1 - a) }
            let guided = prior.predictNoise(Tensor(shape: x.shape, storage: term.noisy), timestep: 600, views: views, guidanceScale: 4).guided.storage
            for i in stride(from: 0, to: x.count, by: 37) {
                let xt = a.squareRoot() * Double(x.storage[i]) + (1 - a).squareRoot() * Double(noise[i])
                #expect(abs(Double(term.noisy[i]) - xt) < 1e-5)
                #expect(abs(Double(term.gradient[i]) - w * (Double(guided[i]) - Double(noise[i]))) < 1e-5)
                let x0 = (xt - (1 - a).squareRoot() * Double(guided[i])) / a.squareRoot()
                #expect(abs(Double(term.predictedOriginal[i]) - x0) < 1e-4 * (1 + abs(x0)))
            }
        }
        // With the true noise as the prediction, x̂₀ is x.
        let a: Float = 0.3
        let noisy = ScoreDistillation.addNoise(x.storage, noise: noise, alphaCumprod: a)
        let back = ScoreDistillation.predictedOriginal(noisy: noisy, prediction: noise, alphaCumprod: a)
        #expect(zip(back, x.storage).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("CSD is w·s·(ε_y − ε_∅) and NFSD adds ε_∅ below 0.2·T only; neither depends on the sampled noise beyond x_t (float64 reference)")
    func objectives() throws {
        let x = Self.images(2, seed: 5)
        var rng = RNG(seed: 6)
        let noise = rng.normals(count: x.count)
        let views = [ViewConditioning(azimuthDegrees: 10), ViewConditioning(azimuthDegrees: 250, elevationDegrees: 30)]
        for objective in [DistillationObjective.csd, .nfsd] {
            for t in [100, 600] {
                var settings = SDSSettings()
                settings.objective = objective
                settings.guidanceScale = 5
                let term = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: t, noise: noise, settings: settings)
                let a = Double(prior.schedule.alphaCumprod(t)), w = 1 - a
                let p = prior.predictNoise(Tensor(shape: x.shape, storage: term.noisy), timestep: t, views: views, guidanceScale: 5)
                let (u, c) = (p.unconditional.storage, p.conditional.storage)
                for i in stride(from: 0, to: x.count, by: 29) {
                    var expected = 5 * (Double(c[i]) - Double(u[i]))
                    if objective == .nfsd && t < 200 { expected += Double(u[i]) }
                    #expect(abs(Double(term.gradient[i]) - w * expected) < 1e-5 * (1 + abs(w * expected)), "\(objective) t \(t) at \(i)")
                }
                #expect(term.prediction == p.guided.storage)
            }
        }
        // SDS differs from CSD by w·(ε_∅ − ε) at guidance s: ε̂ − ε = ε_∅ − ε + s·(ε_y − ε_∅).
        var sds = SDSSettings(), csd = SDSSettings()
        (sds.guidanceScale, csd.guidanceScale, csd.objective) = (5, 5, .csd)
        let a = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: 600, noise: noise, settings: sds)
        let b = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: 600, noise: noise, settings: csd)
        let u = prior.predictNoise(Tensor(shape: x.shape, storage: a.noisy), timestep: 600, views: views, guidanceScale: 5).unconditional.storage
        let w = 1 - prior.schedule.alphaCumprod(600)
        for i in stride(from: 0, to: x.count, by: 31) { #expect(abs(a.gradient[i] - b.gradient[i] - w * (u[i] - noise[i])) < 1e-4) }
    }

    @Test("ISM: DDIM inversion to s = t − δ·T in equal steps, one more step to t, g = w·(ε̂(x_t) − ε̂_u(x_s)) (float64 reference)")
    func intervalScoreMatching() throws {
        let x = Self.images(2, seed: 7)
        let views = [ViewConditioning(azimuthDegrees: 40), ViewConditioning(azimuthDegrees: 160, elevationDegrees: 20)]
        var settings = SDSSettings()
        (settings.objective, settings.guidanceScale, settings.ismInterval, settings.ismInversionStep) = (.ism, 4, 0.05, 0.2)
        for t in [30, 700] {
            let term = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: t, noise: [Float](repeating: 9, count: x.count), settings: settings)
            // The reference: the same walk in Double, the predictions from the prior itself.
            let schedule = prior.schedule
            func alpha(_ k: Int) -> Double { k < 0 ? 1 : Double(schedule.alphaCumprod(k)) }
            func step(_ v: [Double], _ e: [Float], _ from: Int, _ to: Int) -> [Double] {
                let (a0, a1) = (alpha(from), alpha(to))
                return v.indices.map { i in a1.squareRoot() * (v[i] - (1 - a0).squareRoot() * Double(e[i])) / a0.squareRoot() + (1 - a1).squareRoot() * Double(e[i]) }
            }
            let s = max(0, t - 50), stride = 200, steps = max(1, (s + stride - 1) / stride)
            var v = x.storage.map(Double.init), at = -1
            for k in 1...steps {
                let e = prior.predictUnconditionalNoise(Tensor(shape: x.shape, storage: v.map(Float.init)), timestep: max(at, 0), views: views).storage
                v = step(v, e, at, s * k / steps)
                at = s * k / steps
            }
            let eps = prior.predictUnconditionalNoise(Tensor(shape: x.shape, storage: v.map(Float.init)), timestep: s, views: views).storage
            let xt = step(v, eps, s, t)
            let guided = prior.predictNoise(Tensor(shape: x.shape, storage: xt.map(Float.init)), timestep: t, views: views, guidanceScale: 4).guided.storage
            let w = 1 - alpha(t)
            for i in Swift.stride(from: 0, to: x.count, by: 23) {
                #expect(abs(Double(term.noisy[i]) - xt[i]) < 1e-4 * (1 + abs(xt[i])), "t \(t): x_t at \(i)")
                #expect(abs(Double(term.gradient[i]) - w * (Double(guided[i]) - Double(eps[i]))) < 1e-3, "t \(t): g at \(i)")
            }
            // The sampled noise (9 everywhere) never enters: the term's noise is the inversion's.
            #expect(zip(term.noise, eps).allSatisfy { abs($0 - $1) < 1e-4 })
        }
        // The unconditional prediction alone is the unconditional half of the guided call.
        let p = prior.predictNoise(x, timestep: 333, views: views, guidanceScale: 3)
        let u = prior.predictUnconditionalNoise(x, timestep: 333, views: views)
        #expect(zip(p.unconditional.storage, u.storage).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("DreamTime: t falls with progress as the tail sums of W(t) ∝ √((1−ᾱ)/ᾱ)·exp(−(t−m)²/2s²) say, most steps near m (float64 reference)")
    func dreamtime() throws {
        var settings = SDSSettings()
        settings.timestepSchedule = .dreamtime
        let schedule = prior.schedule, T = schedule.numTrainTimesteps
        var rng = RNG(seed: 8)
        let progress = (0...200).map { Double($0) / 200 }
        let ts = progress.map { ScoreDistillation.timestep(settings, progress: $0, schedule: schedule, rng: &rng) }
        #expect(zip(ts, ts.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(ts.first! >= 900 && ts.last! == Int((0.02 * Double(T)).rounded()))
        // The reference: W, its tails and the argmin, written out.
        let w = (0..<T).map { t -> Double in
            let a = Double(schedule.alphaCumprod(t))
            return ((1 - a) / a).squareRoot() * exp(-pow(Double(t) - 500, 2) / (2 * 125 * 125))
        }
        let z = w.reduce(0, +)
        for (p, t) in zip(progress, ts) {
            let tails = (0..<T).map { t0 in w[t0...].reduce(0, +) / z }
            let expected = min(980, max(20, tails.indices.min { abs(tails[$0] - p) < abs(tails[$1] - p) }!))
            #expect(abs(t - expected) <= 1, "progress \(p): \(t) against \(expected)")
        }
        // Most of the run is spent within one spread of the centre.
        #expect(Double(ts.filter { (375...625).contains($0) }.count) / Double(ts.count) > 0.5)
        // At zero terminal SNR (ᾱ_{T−1} = 0) the last timestep is left out, not every other one.
        let zeroSNR = try SchedulerConfig(json: Data(#"{"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "rescale_betas_zero_snr": true, "prediction_type": "v_prediction"}"#.utf8), source: "test", as: .ddpm)
        let rescaled = try NoiseSchedule(config: zeroSNR)
        #expect(rescaled.alphaCumprod(T - 1) == 0)
        let zs = progress.map { ScoreDistillation.timestep(settings, progress: $0, schedule: rescaled, rng: &rng) }
        #expect(zs.first! >= 900 && zs.last! == 20 && zip(zs, zs.dropFirst()).allSatisfy { $0 >= $1 })
        // The other schedules draw as before through the same entry point.
        settings.timestepSchedule = .annealed
        var a = RNG(seed: 9), b = RNG(seed: 9)
        #expect(ScoreDistillation.timestep(settings, progress: 0.3, schedule: schedule, rng: &a) == ScoreDistillation.timestep(settings, progress: 0.3, trainSteps: T, rng: &b))
    }

    @Test("VSD: g = w·(ε̂_s − ε̂_φ) with the particle model's prediction; the adapters change ε̂_φ but never the prior's predictions")
    func variationalScoreDistillation() throws {
        // A prior of its own: the particle model attaches adapters to its UNet.
        let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman", negativePrompt: "blurry", backgrounds: ToySample.backgrounds)
        let x = Self.images(2, seed: 9)
        var rng = RNG(seed: 10)
        let noise = rng.normals(count: x.count)
        let views = [ViewConditioning(azimuthDegrees: 20), ViewConditioning(azimuthDegrees: 200, elevationDegrees: 35)]
        let xt = Tensor(shape: x.shape, storage: ScoreDistillation.addNoise(x.storage, noise: noise, alphaCumprod: prior.schedule.alphaCumprod(500)))
        let before = prior.predictNoise(xt, timestep: 500, views: views, guidanceScale: 4)
        let particle = prior.makeParticleModel(rank: 2, learningRate: 1e-2, seed: 3)
        // Fresh adapters add nothing (B = 0): ε̂_φ is the conditional prediction without guidance
        // (up to the rounding of a batch of 2 against the guided call's batch of 4).
        #expect(zip(particle.predictNoise(xt, timestep: 500, views: views).storage, before.conditional.storage).allSatisfy { abs($0 - $1) < 1e-5 })
        for _ in 0..<5 { particle.train(on: x, views: views, rng: &rng) }
        let phi = particle.predictNoise(xt, timestep: 500, views: views)
        #expect(phi != before.conditional)
        let after = prior.predictNoise(xt, timestep: 500, views: views, guidanceScale: 4)
        #expect(after.guided == before.guided && after.unconditional == before.unconditional)
        var settings = SDSSettings()
        (settings.objective, settings.guidanceScale) = (.vsd, 4)
        let term = ScoreDistillation.term(prior: prior, images: x, views: views, timestep: 500, noise: noise, settings: settings, particle: particle)
        let w = 1 - prior.schedule.alphaCumprod(500)
        for i in Swift.stride(from: 0, to: x.count, by: 13) {
            #expect(abs(term.gradient[i] - w * (before.guided.storage[i] - phi.storage[i])) < 1e-5)
        }
    }

    @Test("timesteps stay in [min, max]·T; annealing walks from max to min")
    func timesteps() {
        var settings = SDSSettings()
        var rng = RNG(seed: 4)
        settings.timestepSchedule = .random
        let random = (0..<500).map { _ in ScoreDistillation.timestep(settings, progress: 0.5, trainSteps: 1000, rng: &rng) }
        #expect(random.min()! >= 20 && random.max()! <= 980 && random.max()! - random.min()! > 800)
        settings.timestepSchedule = .annealed
        let start = (0..<50).map { _ in ScoreDistillation.timestep(settings, progress: 0, trainSteps: 1000, rng: &rng) }
        let end = (0..<50).map { _ in ScoreDistillation.timestep(settings, progress: 1, trainSteps: 1000, rng: &rng) }
        #expect(start.allSatisfy { (930...980).contains($0) } && end.allSatisfy { (20...70).contains($0) })
    }

    @Test("non-finite gradient elements are zeroed and counted; the clamp bounds the rest")
    func sanitize() {
        var g: [Float] = [1, -5, .nan, 0.2, .infinity, -.infinity]
        #expect(ScoreDistillation.sanitize(&g, clamp: 2) == 3)
        #expect(g == [1, -2, 0, 0.2, 0, 0])
        #expect(ScoreDistillation.surrogateLoss([3, 4], batch: 1) == 12.5)
    }
}

/// Runs `steps` steps straight, and again with a checkpoint after `at` steps restored into a fresh
/// run; returns both runs at the end, for the caller to compare bit for bit.
func straightAndResumed<Scene: DistilledScene>(_ make: () throws -> DistillationRun<Scene>, steps: Int, at: Int) throws
    -> (straight: DistillationRun<Scene>, first: DistillationRun<Scene>, resumed: DistillationRun<Scene>, folder: URL) {
    let straight = try make()
    for _ in 0..<steps { _ = try straight.step() }
    let first = try make()
    for _ in 0..<at { _ = try first.step() }
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-resume-\(UUID().uuidString)")
    try first.saveCheckpoint(to: folder)
    let resumed = try make()
    try resumed.restore(from: folder)
    #expect(resumed.completedSteps == at)
    for _ in at..<steps { _ = try resumed.step() }
    return (straight, first, resumed, folder)
}

@Suite("Time guidance for 4D")
struct TimeGuidanceTests {
    @Test("ε̂ gains s_τ·(ε̂_c − ε̂_c,still); views without a time are unchanged")
    func timeGuidance() throws {
        let prior = try PixelDiffusionPrior(pipeline: PriorPipeline(folder: tinyPipeline), prompt: "a red snowman bouncing", backgrounds: ToySample.backgrounds)
        var rng = RNG(seed: 1)
        let size = prior.imageSize
        let x = Tensor(shape: [2, 3, size, size], storage: rng.uniforms(count: 2 * 3 * size * size, in: -1...1))
        let timed = [ViewConditioning(azimuthDegrees: 10, elevationDegrees: 20, time: 0.3), ViewConditioning(azimuthDegrees: 190, elevationDegrees: 5, time: 0.8)]
        let still = timed.map { ViewConditioning(azimuthDegrees: $0.azimuthDegrees, elevationDegrees: $0.elevationDegrees) }
        let plain = prior.predictNoise(x, timestep: 500, views: timed, guidanceScale: 4)
        let guided = prior.predictNoise(x, timestep: 500, views: timed, guidanceScale: 4, timeGuidanceScale: 2)
        let stillPrediction = prior.predictNoise(x, timestep: 500, views: still, guidanceScale: 4)
        var worst: Float = 0, difference: Float = 0
        for i in 0..<x.count {
            let expected = plain.guided.storage[i] + 2 * (plain.conditional.storage[i] - stillPrediction.conditional.storage[i])
            worst = max(worst, abs(guided.guided.storage[i] - expected))
            difference = max(difference, abs(guided.guided.storage[i] - plain.guided.storage[i]))
        }
        #expect(worst < 1e-4 && difference > 1e-3, "worst \(worst), effect \(difference)")
        #expect(prior.predictNoise(x, timestep: 500, views: still, guidanceScale: 4, timeGuidanceScale: 2).guided == stillPrediction.guided)
    }
}
