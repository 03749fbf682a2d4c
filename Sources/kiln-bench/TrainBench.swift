import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// `kiln-bench train --prior-config FILE --vae-config FILE [--threads N] [--steps N] [--only vae|prior] [--json]`:
/// times `kiln train-prior`'s and `kiln train-vae`'s training steps (`PriorTrainer.trainStep`,
/// `VAETrainer.trainStep`, the code the commands run) on synthetic data of the configs' sizes,
/// with the wall time of each stage. A latent prior config (one with `vae`) gets a VAE of
/// `--vae-config`'s shape with random weights. `tools/bench_train_torch.py` runs the same steps in
/// PyTorch and prints both. `--only` times one of the two (for a profiler: `perf record` on a
/// run of one model's steps).
func benchTrain(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    guard let priorConfigPath = value("--prior-config"), let vaeConfigPath = value("--vae-config") else {
        print("usage: kiln-bench train --prior-config FILE --vae-config FILE [--threads N] [--steps N] [--only vae|prior] [--json]")
        exit(2)
    }
    let threads = Int(value("--threads") ?? "2") ?? 2
    let steps = Int(value("--steps") ?? "5") ?? 5
    let json = arguments.contains("--json")
    let only = value("--only")
    guard only == nil || only == "vae" || only == "prior" else {
        print("kiln-bench train: --only takes vae or prior")
        exit(2)
    }
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    do {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-bench-train-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var vaeConfig = try VAETrainingConfig(contentsOf: URL(fileURLWithPath: vaeConfigPath))
        vaeConfig.training.steps = steps + 1
        let imageSize = vaeConfig.vae.sampleSize ?? 128
        let data = SyntheticImages(size: imageSize, count: 64, seed: 1)
        var results: [String: Any] = [:]

        // The VAE's training step.
        let vaeTrainer = try VAETrainer(config: vaeConfig, data: data)
        if only != "prior" {
            vaeTrainer.trainStep()  // warm-up: allocations, BLAS threads
            vaeTrainer.times = StageTimes()
            let vaeStart = ContinuousClock.now
            for _ in 0..<steps { vaeTrainer.trainStep() }
            let vaeSeconds = (ContinuousClock.now - vaeStart).seconds
            results["vae"] = report(vaeTrainer.times, seconds: vaeSeconds, steps: steps, batch: vaeConfig.training.batchSize,
                                    parameters: vaeTrainer.vae.parameterCount, input: "\(vaeTrainer.cropSize)² crops")
        }

        // The prior's training step (on the VAE's latents for a latent config; the VAE's weights are
        // random, as the timing does not depend on them).
        var priorConfig = try PriorTrainingConfig(contentsOf: URL(fileURLWithPath: priorConfigPath))
        if priorConfig.vaeFolder != nil {
            try vaeTrainer.export(to: scratch.appendingPathComponent("vae"), scalingFactor: 1)
            priorConfig.vaeFolder = scratch.appendingPathComponent("vae")
        }
        let priorData = priorConfig.vaeFolder == nil ? SyntheticImages(size: priorConfig.unet.sampleHeight ?? 32, count: 64, seed: 2) : data
        if only != "vae" {
            let prior = try PriorTrainer(config: priorConfig, data: priorData)
            try prior.prepareLatents()
            try prior.trainStep()
            prior.times = StageTimes()
            let priorStart = ContinuousClock.now
            for _ in 0..<steps { try prior.trainStep() }
            let priorSeconds = (ContinuousClock.now - priorStart).seconds
            results["prior"] = report(prior.times, seconds: priorSeconds, steps: steps, batch: priorConfig.training.batchSize,
                                      parameters: prior.unet.parameterCount + prior.textEncoder.parameterCount,
                                      input: "\(prior.sampleSize)² × \(priorConfig.unet.inChannels)")
        }
        results["threads"] = threads
        results["blas"] = BLAS.configuration
        if json {
            print(String(decoding: try JSONSerialization.data(withJSONObject: results, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for name in ["vae", "prior"] {
                guard let r = results[name] as? [String: Any] else { continue }
                print("\(name): \(r["parameters"]!) parameters, \(r["input"]!), batch \(r["batch"]!): \(String(format: "%.1f", r["samples_per_second"] as! Double)) samples/s")
                for (stage, ms) in (r["stages_ms"] as! [String: Double]).sorted(by: { $0.value > $1.value }) { print(String(format: "  %@  %.1f ms", stage, ms)) }
            }
        }
    } catch {
        FileHandle.standardError.write(Data("kiln-bench train: \(error)\n".utf8))
        exit(1)
    }
}

/// Per-step milliseconds of each stage, the step, and samples per second.
private func report(_ times: StageTimes, seconds: Double, steps: Int, batch: Int, parameters: Int, input: String) -> [String: Any] {
    var stages: [String: Double] = [:]
    for stage in times.stages { stages[stage] = 1000 * (times.seconds[stage] ?? 0) / Double(steps) }
    return ["stages_ms": stages, "step_ms": 1000 * seconds / Double(steps), "samples_per_second": Double(steps * batch) / seconds,
            "batch": batch, "parameters": parameters, "input": input]
}

/// Random images with toy captions and views: data of the right shapes for timing.
private struct SyntheticImages: PriorTrainingData {
    let size: Int
    let count: Int
    let images: [UInt8]
    let views: [Float]
    let captions: [String]
    var vocabulary: [String]? { nil }

    init(size: Int, count: Int, seed: UInt64) {
        var rng = RNG(seed: seed)
        (self.size, self.count) = (size, count)
        images = (0..<(count * 3 * size * size)).map { _ in UInt8(rng.next() % 256) }
        views = (0..<(count * ViewConditioning.length)).map { _ in rng.uniform(-1...1) }
        let words = ["a red duck", "a blue house with a yellow roof", "a green car spinning", "a white mug with a black handle"]
        captions = (0..<count).map { _ in words[Int(rng.next() % UInt64(words.count))] }
    }
}
