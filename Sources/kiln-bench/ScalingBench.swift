import Foundation
import KilnCore
import KilnDistill
import KilnNN
import KilnPrior

/// `kiln-bench scaling --prior DIR [--steps N] [--threads N] [--quick]`: the distillation step's
/// time as the Gaussians (5k → 100k), the render size (64² → 512²) and the 4D frames (still → 16)
/// grow, one at a time from 20k Gaussians still at the prior's default render size (64² for the
/// 32² prior; sizes the prior cannot take are listed as such), with where each step's time goes
/// (`Profiler`). Densification is kept out of the measured steps, so each row has the Gaussians
/// it names. "growth" is the step time's ratio to the sweep's first row over the ratio of the
/// swept quantity (pixels for the size): 1 is linear, above 1 worse than linear.
func benchScaling(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    guard let priorPath = value("--prior") else {
        print("usage: kiln-bench scaling --prior DIR [--steps N] [--threads N] [--quick] [--only gaussians|render|frames] [--parts]")
        exit(2)
    }
    let quick = arguments.contains("--quick")
    let steps = Int(value("--steps") ?? (quick ? "2" : "5")) ?? 5
    let threads = Int(value("--threads") ?? "2") ?? 2
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    do {
        let pipeline = try PriorPipeline(folder: URL(fileURLWithPath: priorPath))
        let prompt = "a red snowman"
        let prior: any DiffusionPrior = pipeline.vae == nil
            ? try PixelDiffusionPrior(pipeline: pipeline, prompt: prompt, backgrounds: [SIMD3(1, 1, 1)])
            : try LatentDiffusionPrior(pipeline: pipeline, prompt: prompt)
        print("Distillation step scaling: prior \(URL(fileURLWithPath: priorPath).lastPathComponent) (\(prior.imageSize)²), 4 views per step, "
              + "\(threads) threads, mean of \(steps) steps after one warm-up step")
        print("| sweep | value | ms / step | render forward | render backward | prior (encode, forward, backward) | optimiser | other | growth |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        var sweeps: [(name: String, values: [Int])] = quick
            ? [("gaussians", [5_000, 20_000]), ("render size", [64, 128]), ("frames", [1, 4])]
            : [("gaussians", [5_000, 10_000, 20_000, 50_000, 100_000]), ("render size", [64, 128, 256, 512]), ("frames", [1, 2, 4, 8, 16])]
        if let only = value("--only") { sweeps = sweeps.filter { $0.name.hasPrefix(only) } }
        let detail = arguments.contains("--parts")
        for sweep in sweeps {
            var first: (ms: Double, amount: Double)? = nil
            for v in sweep.values {
                var gaussians = 20_000, size = max(64, prior.imageSize), frames = 1
                switch sweep.name {
                case "gaussians": gaussians = v
                case "render size": size = v
                default: frames = v
                }
                var views = ViewSettings()
                views.renderSize = size
                do { try views.validate(priorSize: prior.imageSize) } catch {
                    print("| \(sweep.name) | \(v) | – (\(error)) | | | | | | |")
                    continue
                }
                let row: (ms: Double, parts: [String: Double])
                do { row = try stepTimes(prior: prior, gaussians: gaussians, views: views, frames: frames, steps: steps, threads: threads) } catch {
                    print("| \(sweep.name) | \(v) | – (\(error)) | | | | | | |")
                    continue
                }
                let amount = sweep.name == "render size" ? Double(v * v) : Double(max(1, v))
                if first == nil { first = (row.ms, amount) }
                let growth = (row.ms / first!.ms) / (amount / first!.amount)
                func part(_ names: [String]) -> String { String(format: "%.1f", names.reduce(0) { $0 + (row.parts[$1] ?? 0) } * 1000 / Double(steps)) }
                let named = ["render forward", "render backward", "prior encode", "prior forward", "prior encode backward", "optimiser"]
                let other = row.parts.filter { !named.contains($0.key) }.values.reduce(0, +) * 1000 / Double(steps)
                print(String(format: "| %@ | %d | %.1f | %@ | %@ | %@ | %@ | %.1f | %@ |", sweep.name, v, row.ms, part(["render forward"]), part(["render backward"]),
                             part(["prior encode", "prior forward", "prior encode backward"]), part(["optimiser"]), other,
                             amount == first!.amount ? "1" : String(format: "%.2f", growth)))
                if detail {
                    // Every part of "other", by name (ms per step).
                    let rest = row.parts.filter { !named.contains($0.key) && $0.value * 1000 / Double(steps) >= 0.05 }.sorted { $0.value > $1.value }
                    print("|  | | | \(rest.map { String(format: "%@ %.1f", $0.key, $0.value * 1000 / Double(steps)) }.joined(separator: ", ")) | | | | | |")
                }
            }
        }
    } catch {
        FileHandle.standardError.write(Data("kiln-bench scaling: \(error)\n".utf8))
        exit(1)
    }
}

/// Mean milliseconds per distillation step and the seconds of each kind of work over `steps`
/// steps (after one warm-up step), for a still (frames 1) or 4D scene of `gaussians` Gaussians.
private func stepTimes(prior: any DiffusionPrior, gaussians: Int, views: ViewSettings, frames: Int, steps: Int,
                       threads: Int) throws -> (ms: Double, parts: [String: Double]) {
    var settings = GaussianSettings()
    settings.initialGaussians = gaussians
    settings.maxGaussians = max(settings.maxGaussians, gaussians)
    // A long nominal run whose densification starts after the measured steps.
    let length = 100_000
    settings.densifyFrom = 0.5
    func measure<Scene: DistilledScene>(_ scene: Scene) throws -> (ms: Double, parts: [String: Double]) {
        let run = try DistillationRun(scene: scene, prior: prior, rewards: nil, steps: length, sds: SDSSettings(), guidance: RewardGuidanceSettings(),
                                      views: views, rng: RNG(seed: 1))
        _ = try run.step()
        let profiler = Profiler(), clock = ContinuousClock(), start = clock.now
        try profiler.activate { try profiler.measure("steps") { for _ in 0..<steps { _ = try run.step() } } }
        // A skipped step (a non-finite gradient) leaves out the optimiser: say so rather than time it short.
        if run.skippedSteps > 0 {
            FileHandle.standardError.write(Data("kiln-bench scaling: \(run.skippedSteps) of \(steps + 1) steps skipped (non-finite gradients); their optimiser time is missing\n".utf8))
        }
        let parts = profiler.profile.stages.first?.parts ?? []
        return ((clock.now - start).seconds * 1000 / Double(steps), Dictionary(uniqueKeysWithValues: parts.map { ($0.part, $0.seconds) }))
    }
    if frames <= 1 {
        return try measure(GaussianScene(settings: settings, steps: length, extent: views.objectRadius, seed: 1, threads: threads))
    }
    var motion = MotionSettings()
    motion.frames = frames
    motion.staticFraction = 0  // moving from the first step, so that the motion's cost is measured
    return try measure(DynamicGaussianScene(settings: settings, motion: motion, steps: length, extent: views.objectRadius, seed: 1, threads: threads))
}
