import Foundation
import KilnCore
import KilnNN

/// What a training run (`PriorTrainer`, `VAETrainer`) keeps besides its step count and RNG: the
/// named parameters, their AdamW moments and their EMA, written to and read from a checkpoint
/// folder for a bit-identical `--resume`.
///
///     weights.safetensors   the trained weights        ema.safetensors   their moving average
///     adam.safetensors      m.NAME, v.NAME moments      state.json        step, RNG, counters (last)
///
/// Each tensor file records the step it was saved at, so that a save cut short between files
/// (a second Ctrl-C) is refused on `load` instead of mixing two steps' state.
struct TrainingState {
    let named: [(name: String, parameter: Parameter)]
    let optimizer: Adam
    let ema: EMA

    struct Counters: Codable {
        var step: Int
        var rng: RNG
        var emaStep: Int
        var adamStep: Int
    }

    /// AdamW over `named` and an EMA of them, as both trainers start.
    init(named: [(name: String, parameter: Parameter)], learningRate: Double, weightDecay: Double, emaDecay: Float) {
        let parameters = named.map(\.parameter)
        self.named = named
        optimizer = Adam(parameters: parameters, configuration: .adamW(learningRate: learningRate, weightDecay: weightDecay))
        ema = EMA(parameters: parameters, configuration: EMA.Configuration(maxDecay: emaDecay))
    }

    var parameters: [Parameter] { named.map(\.parameter) }

    /// Writes the state, each file atomically, `state.json` last.
    func save(to folder: URL, step: Int, rng: RNG) throws {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stamp = ["step": "\(step)"]
        var weights = SafeTensorsWriter(metadata: stamp), averages = SafeTensorsWriter(metadata: stamp), moments = SafeTensorsWriter(metadata: stamp)
        for (i, (name, p)) in named.enumerated() {
            try weights.add(name, shape: p.shape, values: p.value.storage)
            try averages.add(name, shape: p.shape, values: ema.shadow[i].storage)
            try moments.add("m." + name, shape: p.shape, values: optimizer.firstMoments[i].storage)
            try moments.add("v." + name, shape: p.shape, values: optimizer.secondMoments[i].storage)
        }
        try weights.write(to: folder.appendingPathComponent("weights.safetensors"))
        try averages.write(to: folder.appendingPathComponent("ema.safetensors"))
        try moments.write(to: folder.appendingPathComponent("adam.safetensors"))
        let counters = Counters(step: step, rng: rng, emaStep: ema.optimizationStep, adamStep: optimizer.stepCount)
        try AtomicFile.write(try JSONEncoder().encode(counters), to: folder.appendingPathComponent("state.json"))
    }

    /// Restores what `save` wrote; returns the step and the RNG.
    func load(from folder: URL) throws -> (step: Int, rng: RNG) {
        let stateURL = folder.appendingPathComponent("state.json")
        guard let data = FileManager.default.contents(atPath: stateURL.path), let counters = try? JSONDecoder().decode(Counters.self, from: data) else {
            throw PriorConfigError(source: stateURL.path, key: nil, problem: "is missing or unreadable", fix: "start a new run without --resume")
        }
        let weights = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("weights.safetensors"))
        let averages = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("ema.safetensors"))
        let moments = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("adam.safetensors"))
        for (name, file) in [("weights", weights), ("ema", averages), ("adam", moments)] {
            // Files of checkpoints older than the stamp carry none.
            if let saved = file.metadata["step"], saved != "\(counters.step)" {
                throw PriorConfigError(source: folder.appendingPathComponent("\(name).safetensors").path, key: nil,
                                       problem: "was saved at step \(saved) but state.json at step \(counters.step): the last save was cut short",
                                       fix: "start a new run with --force, or restore the checkpoint folder from a copy")
            }
        }
        var shadow: [Tensor] = [], first: [Tensor] = [], second: [Tensor] = []
        for (name, p) in named {
            p.load(Tensor(shape: p.shape, storage: try weights.expect(name, shape: p.shape)), name: name)
            shadow.append(Tensor(shape: p.shape, storage: try averages.expect(name, shape: p.shape)))
            first.append(Tensor(shape: p.shape, storage: try moments.expect("m." + name, shape: p.shape)))
            second.append(Tensor(shape: p.shape, storage: try moments.expect("v." + name, shape: p.shape)))
        }
        ema.restore(shadow: shadow, optimizationStep: counters.emaStep)
        optimizer.restore(stepCount: counters.adamStep, firstMoments: first, secondMoments: second)
        return (counters.step, counters.rng)
    }

    /// Clips the gradients' global norm, sets the warmed-up learning rate of `step` and takes one
    /// AdamW step, then updates the EMA.
    func update(step: Int, learningRate: Double, warmupSteps: Int, maxGradNorm: Float) {
        let parameters = parameters
        _ = clipGradientNorm(parameters, maxNorm: maxGradNorm)
        optimizer.configuration.learningRate = learningRate * min(1, Double(step) / Double(max(1, warmupSteps)))
        optimizer.step()
        ema.update(parameters)
    }

    /// Runs `body` with the EMA weights in the parameters, then puts the trained weights back.
    func withAveragedWeights<T>(_ body: () throws -> T) rethrows -> T {
        let parameters = parameters
        let current = parameters.map(\.value)
        ema.copy(to: parameters)
        defer { for (p, v) in zip(parameters, current) { p.load(v) } }
        return try body()
    }
}
