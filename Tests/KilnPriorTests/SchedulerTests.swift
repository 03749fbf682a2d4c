import Foundation
import KilnCore
@testable import KilnPrior
import Testing

// MARK: - Goldens written by tools/make_scheduler_goldens.py (diffusers)

struct SchedulerGoldens: Decodable {
    struct Step: Decodable {
        var numInferenceSteps: Int?
        var timestep: Int
        var shape: [Int]
        var modelOutput: [Double]
        var sample: [Double]
        var noise: [Double]?
        var prevSample: [Double]
        var prevSampleNoise: Double
        var predOriginalSample: [Double]
        var predOriginalSampleNoise: Double
        var eta: Double?
        var useClippedModelOutput: Bool?
    }
    struct AddNoise: Decodable {
        var timesteps: [Int]
        var shape: [Int]
        var original, noise, noisy, velocity: [Double]
        var noisyNoise, velocityNoise: Double
    }
    struct Case: Decodable {
        var name: String
        var `class`: String
        var configJson: String
        var scheduleIndices: [Int]
        var betas: [Double]
        var betasNoise: Double
        var alphasCumprod: [Double]
        var alphasCumprodNoise: Double
        var timesteps: [String: [Int]]
        var steps: [Step]
        var addNoise: AddNoise
    }
    struct Checksums: Decodable {
        var stepsOffset: Int
        var rows: [[Int]]
    }
    struct Guidance: Decodable {
        var scale, rescale: Double
        var shape: [Int]
        var uncond, cond, guided, rescaled: [Double]
        var guidedNoise, rescaledNoise: Double
    }
    var cases: [Case]
    var timestepChecksums: [String: Checksums]
    var guidance: [Guidance]

    static let shared: SchedulerGoldens = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/schedulers.json")
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(SchedulerGoldens.self, from: Data(contentsOf: url))
    }()

    static var caseNames: [String] { shared.cases.map(\.name) }
    static func named(_ name: String) -> Case { shared.cases.first { $0.name == name }! }
}

extension SchedulerGoldens.Case {
    var config: SchedulerConfig {
        get throws {
            // Conversions (a PNDM config run as DDIM) go through `as:`, like diffusers' from_config.
            let kind = SchedulerConfig.Kind(rawValue: `class`)!
            return try SchedulerConfig(json: Data(configJson.utf8), source: name, as: kind)
        }
    }
}

/// Checks Kiln's float32 output against diffusers': every element within
/// 1e-6·max(1, |want|) + 2·noise, where `noise` is the largest |float32 − float64| difference of
/// diffusers' own computation of this output (see tools/make_scheduler_goldens.py: 0 or ~1e-7 for
/// well-conditioned outputs, larger where float32 cancellation makes diffusers itself inexact).
/// NaNs and infinities must agree exactly. Returns the worst elements when a bound is exceeded.
func schedulerMismatch(_ got: [Float], _ want: [Double], noise: Double, relative: Bool = false) -> String? {
    guard got.count == want.count else { return "count \(got.count) vs \(want.count)" }
    var excess: [(index: Int, error: Double, bound: Double)] = []
    for (i, (g, w)) in zip(got, want).enumerated() {
        let g = Double(g)
        if w.isNaN || g.isNaN || w.isInfinite || g.isInfinite {
            if !((w.isNaN && g.isNaN) || w == g) { excess.append((i, .infinity, 0)) }
            continue
        }
        let bound = 1e-6 * (relative ? abs(w) : max(1, abs(w))) + 2 * noise
        if abs(g - w) > bound { excess.append((i, abs(g - w), bound)) }
    }
    guard !excess.isEmpty else { return nil }
    let worst = excess.sorted { $0.error / max($0.bound, 1e-30) > $1.error / max($1.bound, 1e-30) }.prefix(3)
    return "\(excess.count) elements beyond the bound; worst: "
        + worst.map { "[\($0.index)] \(got[$0.index]) vs \(want[$0.index]) (error \($0.error), bound \($0.bound))" }
            .joined(separator: ", ")
}

@Suite struct SchedulerParityTests {
    @Test(arguments: SchedulerGoldens.caseNames)
    func betasAndAlphasCumprod(name: String) throws {
        let golden = SchedulerGoldens.named(name)
        let schedule = try NoiseSchedule(config: try golden.config)
        let betas = golden.scheduleIndices.map { schedule.betas[$0] }
        let cumprod = golden.scheduleIndices.map { schedule.alphasCumprod[$0] }
        if let m = schedulerMismatch(betas, golden.betas, noise: golden.betasNoise, relative: true) {
            Issue.record("\(name) betas: \(m)")
        }
        if let m = schedulerMismatch(cumprod, golden.alphasCumprod, noise: golden.alphasCumprodNoise, relative: true) {
            Issue.record("\(name) alphas_cumprod: \(m)")
        }
    }

    @Test(arguments: SchedulerGoldens.caseNames)
    func timesteps(name: String) throws {
        let golden = SchedulerGoldens.named(name)
        let config = try golden.config
        for (count, want) in golden.timesteps {
            #expect(try config.inferenceTimesteps(count: Int(count)!) == want, "\(name) n=\(count)")
        }
    }

    @Test(arguments: SchedulerGoldens.caseNames)
    func steps(name: String) throws {
        let golden = SchedulerGoldens.named(name)
        let config = try golden.config
        #expect(!golden.steps.isEmpty)
        for (k, s) in golden.steps.enumerated() {
            let output: SchedulerStepOutput
            let modelOutput = s.modelOutput.map(Float.init), sample = s.sample.map(Float.init)
            let noise = s.noise?.map(Float.init)
            switch config.kind {
            case .ddpm:
                var scheduler = try DDPMScheduler(config: config)
                if let n = s.numInferenceSteps { try scheduler.setTimesteps(n) }
                output = try scheduler.step(modelOutput: modelOutput, timestep: s.timestep, sample: sample,
                                            noise: noise, batchSize: s.shape[0])
            case .ddim:
                var scheduler = try DDIMScheduler(config: config)
                try scheduler.setTimesteps(s.numInferenceSteps!)
                output = try scheduler.step(modelOutput: modelOutput, timestep: s.timestep, sample: sample, eta: s.eta!,
                                            useClippedModelOutput: s.useClippedModelOutput!, noise: noise,
                                            batchSize: s.shape[0])
            }
            let label = "\(name) step \(k) (t=\(s.timestep), n=\(s.numInferenceSteps.map(String.init) ?? "-"), eta=\(s.eta ?? 0))"
            if let m = schedulerMismatch(output.predOriginalSample, s.predOriginalSample, noise: s.predOriginalSampleNoise) {
                Issue.record("\(label) pred_original_sample: \(m)")
            }
            if let m = schedulerMismatch(output.prevSample, s.prevSample, noise: s.prevSampleNoise) {
                Issue.record("\(label) prev_sample: \(m)")
            }
        }
    }

    @Test(arguments: SchedulerGoldens.caseNames)
    func addNoiseAndVelocity(name: String) throws {
        let golden = SchedulerGoldens.named(name)
        let schedule = try NoiseSchedule(config: try golden.config)
        let a = golden.addNoise
        let noisy = try schedule.addNoise(a.original.map(Float.init), noise: a.noise.map(Float.init), timesteps: a.timesteps)
        let velocity = try schedule.velocity(sample: a.original.map(Float.init), noise: a.noise.map(Float.init), timesteps: a.timesteps)
        if let m = schedulerMismatch(noisy, a.noisy, noise: a.noisyNoise) { Issue.record("\(name) add_noise: \(m)") }
        if let m = schedulerMismatch(velocity, a.velocity, noise: a.velocityNoise) { Issue.record("\(name) get_velocity: \(m)") }
    }

    /// Every count 1...1000 for each spacing (T = 1000): length and Σ (i+1)·tᵢ of diffusers' list,
    /// quirks included ("trailing" gives count + 1 timesteps ending at −1 for some counts).
    @Test(arguments: SchedulerConfig.TimestepSpacing.allCases)
    func timestepsForEveryCount(spacing: SchedulerConfig.TimestepSpacing) {
        let golden = SchedulerGoldens.shared.timestepChecksums[spacing.rawValue]!
        var mismatches: [Int] = []
        for (i, row) in golden.rows.enumerated() {
            let steps = spacing.timesteps(count: i + 1, numTrainTimesteps: 1000, stepsOffset: golden.stepsOffset)
            let sum = steps.enumerated().reduce(0) { $0 + ($1.offset + 1) * $1.element }
            if [steps.count, sum] != row { mismatches.append(i + 1) }
        }
        #expect(mismatches.isEmpty, "counts that differ from diffusers: \(mismatches.prefix(20))")
    }

    @Test func classifierFreeGuidance() throws {
        for g in SchedulerGoldens.shared.guidance {
            let uncond = g.uncond.map(Float.init), cond = g.cond.map(Float.init)
            let guided = try ClassifierFreeGuidance.combine(uncond: uncond, cond: cond, scale: g.scale)
            if let m = schedulerMismatch(guided, g.guided, noise: g.guidedNoise) { Issue.record("scale \(g.scale) guided: \(m)") }
            let rescaled = try ClassifierFreeGuidance.rescale(guided, cond: cond, guidanceRescale: g.rescale, batchSize: g.shape[0])
            if let m = schedulerMismatch(rescaled, g.rescaled, noise: g.rescaledNoise) { Issue.record("rescale \(g.rescale): \(m)") }
            let both = try ClassifierFreeGuidance.guide(uncond: uncond, cond: cond, scale: g.scale,
                                                        guidanceRescale: g.rescale, batchSize: g.shape[0])
            #expect(both == (g.rescale > 0 ? rescaled : guided))
        }
    }
}

// MARK: - Schedule properties

@Suite struct NoiseScheduleTests {
    @Test func helpersAgree() throws {
        let schedule = try NoiseSchedule(config: .stableDiffusion(.ddim))
        for t in [0, 1, 250, 500, 999] {
            let a = Double(schedule.alphaCumprod(t))
            #expect(abs(Double(schedule.sqrtAlphaCumprod(t) * schedule.sqrtAlphaCumprod(t)) - a) < 1e-6)
            #expect(abs(Double(schedule.sqrtOneMinusAlphaCumprod(t) * schedule.sqrtOneMinusAlphaCumprod(t)) - (1 - a)) < 1e-6)
            #expect(abs(schedule.sigma(t) * schedule.sigma(t) * schedule.snr(t) - 1) < 1e-9)
        }
        #expect(schedule.alphasCumprod == schedule.alphasCumprod.sorted(by: >), "ᾱ decreases")
        #expect(abs(schedule.betas[0] - 0.00085) < 1e-9 && abs(schedule.betas[999] - 0.012) < 1e-9)
    }

    @Test func zeroTerminalSNR() throws {
        var config = SchedulerConfig.stableDiffusion(.ddim)
        config.rescaleBetasZeroSNR = true
        let schedule = try NoiseSchedule(config: config)
        #expect(schedule.alphasCumprod[999] == 0)
        #expect(schedule.snr(999) == 0)
        #expect(schedule.sigma(999).isInfinite)
        #expect(abs(schedule.alphasCumprod[0] - (try NoiseSchedule(config: .stableDiffusion(.ddim))).alphasCumprod[0]) < 1e-7,
                "the first ᾱ is kept")
    }

    /// xₜ from `addNoise`, and v from `velocity`, give back x₀ and ε: x₀ = √ᾱ xₜ − √(1−ᾱ) v.
    @Test func velocityInvertsAddNoise() throws {
        let schedule = try NoiseSchedule(config: SchedulerConfig(kind: .ddpm))
        var rng = RNG(seed: 7)
        let x0 = rng.normals(count: 32), noise = rng.normals(count: 32)
        let t = [10, 400, 700, 990]
        let xt = try schedule.addNoise(x0, noise: noise, timesteps: t)
        let v = try schedule.velocity(sample: x0, noise: noise, timesteps: t)
        for i in 0..<32 {
            let step = t[i / 8]
            let back = schedule.sqrtAlphaCumprod(step) * xt[i] - schedule.sqrtOneMinusAlphaCumprod(step) * v[i]
            #expect(abs(back - x0[i]) < 1e-5)
        }
    }

    @Test func addNoiseChecksInputs() throws {
        let schedule = try NoiseSchedule(config: SchedulerConfig(kind: .ddpm))
        #expect(throws: SchedulerError.sizeMismatch(what: "noise", expected: 4, actual: 3)) {
            try schedule.addNoise([0, 0, 0, 0], noise: [0, 0, 0], timesteps: [1])
        }
        #expect(throws: SchedulerError.batchMismatch(count: 4, batchSize: 3)) {
            try schedule.addNoise([0, 0, 0, 0], noise: [0, 0, 0, 0], timesteps: [1, 2, 3])
        }
        #expect(throws: SchedulerError.timestepOutOfRange(timestep: 1000, numTrainTimesteps: 1000)) {
            try schedule.addNoise([0], noise: [0], timesteps: [1000])
        }
    }
}

// MARK: - Stepping API

@Suite struct SchedulerStepTests {
    @Test func ddimNeedsTimesteps() throws {
        let scheduler = try DDIMScheduler(config: SchedulerConfig(kind: .ddim))
        #expect(throws: SchedulerError.timestepsNotSet) {
            try scheduler.step(modelOutput: [0], timestep: 10, sample: [0])
        }
    }

    @Test func stepCountsAreChecked() throws {
        var ddim = try DDIMScheduler(config: SchedulerConfig(kind: .ddim))
        #expect(throws: SchedulerError.invalidStepCount(count: 0, numTrainTimesteps: 1000, reason: "must be in 1...1000")) {
            try ddim.setTimesteps(0)
        }
        #expect(throws: SchedulerError.invalidStepCount(count: 1001, numTrainTimesteps: 1000, reason: "must be in 1...1000")) {
            try ddim.setTimesteps(1001)
        }
        var config = SchedulerConfig(kind: .ddpm)
        config.timestepSpacing = .trailing
        var ddpm = try DDPMScheduler(config: config)
        do {
            try ddpm.setTimesteps(61)
            Issue.record("61 trailing steps should be refused (diffusers ends them at timestep -1)")
        } catch let error as SchedulerError {
            guard case .invalidStepCount(61, 1000, let reason) = error else { Issue.record("\(error)"); return }
            #expect(reason.contains("62 timesteps ending at -1") && reason.contains("use 60 or 62 steps"), "\(reason)")
        }
        try ddpm.setTimesteps(60)
        #expect(ddpm.timesteps.count == 60 && ddpm.timesteps.first == 999 && ddpm.timesteps.last == 16)
    }

    @Test func wrongKindIsRefused() {
        #expect(throws: SchedulerError.wrongKind(expected: .ddpm, actual: .ddim)) {
            try DDPMScheduler(config: SchedulerConfig(kind: .ddim))
        }
        #expect(throws: SchedulerError.wrongKind(expected: .ddim, actual: .ddpm)) {
            try DDIMScheduler(config: SchedulerConfig(kind: .ddpm))
        }
    }

    @Test func stepChecksInputs() throws {
        var ddpm = try DDPMScheduler(config: SchedulerConfig(kind: .ddpm))
        #expect(throws: SchedulerError.missingNoise(timestep: 5)) {
            try ddpm.step(modelOutput: [0, 0], timestep: 5, sample: [0, 0], noise: nil)
        }
        _ = try ddpm.step(modelOutput: [0, 0], timestep: 0, sample: [0, 0], noise: nil)  // t = 0 adds no noise
        #expect(throws: SchedulerError.sizeMismatch(what: "modelOutput", expected: 2, actual: 1)) {
            try ddpm.step(modelOutput: [0], timestep: 0, sample: [0, 0], noise: nil)
        }
        #expect(throws: SchedulerError.sizeMismatch(what: "noise", expected: 2, actual: 3)) {
            try ddpm.step(modelOutput: [0, 0], timestep: 3, sample: [0, 0], noise: [0, 0, 0])
        }
        #expect(throws: SchedulerError.batchMismatch(count: 2, batchSize: 3)) {
            try ddpm.step(modelOutput: [0, 0], timestep: 0, sample: [0, 0], noise: nil, batchSize: 3)
        }
        #expect(throws: SchedulerError.timestepOutOfRange(timestep: -1, numTrainTimesteps: 1000)) {
            try ddpm.step(modelOutput: [0], timestep: -1, sample: [0], noise: nil)
        }
        try ddpm.setTimesteps(10)
        #expect(try ddpm.previousTimestep(900) == 800)
        #expect(try ddpm.previousTimestep(0) == -1)
        #expect(throws: SchedulerError.self) { try ddpm.step(modelOutput: [0], timestep: 901, sample: [0], noise: [0]) }

        var ddim = try DDIMScheduler(config: SchedulerConfig(kind: .ddim))
        try ddim.setTimesteps(10)
        #expect(throws: SchedulerError.invalidEta(-0.5)) {
            try ddim.step(modelOutput: [0], timestep: 900, sample: [0], eta: -0.5)
        }
        #expect(throws: SchedulerError.missingNoise(timestep: 900)) {
            try ddim.step(modelOutput: [0], timestep: 900, sample: [0], eta: 0.5)
        }
    }

    /// The `rng:` variants draw standard normals of the sample's size and step with them.
    @Test func rngVariantsUseTheirNoise() throws {
        var ddpm = try DDPMScheduler(config: .stableDiffusion(.ddpm))
        try ddpm.setTimesteps(20)
        var ddim = try DDIMScheduler(config: .stableDiffusion(.ddim))
        try ddim.setTimesteps(20)
        var source = RNG(seed: 3)
        let x = source.normals(count: 16), e = source.normals(count: 16)
        var a = RNG(seed: 11), b = RNG(seed: 11)
        let t = ddpm.timesteps[3]
        #expect(try ddpm.step(modelOutput: e, timestep: t, sample: x, rng: &a)
                == ddpm.step(modelOutput: e, timestep: t, sample: x, noise: b.normals(count: 16)))
        #expect(a == b)
        let s = ddim.timesteps[3]
        #expect(try ddim.step(modelOutput: e, timestep: s, sample: x, eta: 0.3, rng: &a)
                == ddim.step(modelOutput: e, timestep: s, sample: x, eta: 0.3, noise: b.normals(count: 16)))
        var c = a
        _ = try ddim.step(modelOutput: e, timestep: s, sample: x, eta: 0, rng: &c)
        #expect(c == a, "η = 0 draws nothing")
    }

    /// A full deterministic DDIM loop with a model that knows x₀ recovers x₀.
    @Test func ddimRecoversKnownCleanSample() throws {
        var scheduler = try DDIMScheduler(config: .stableDiffusion(.ddim))
        try scheduler.setTimesteps(25)
        var rng = RNG(seed: 5)
        let x0 = rng.normals(count: 8).map { $0 * 0.5 }
        var x = rng.normals(count: 8)
        var lastPrediction: [Float] = []
        for t in scheduler.timesteps {
            // The exact ε for this x₀ and xₜ: ε = (xₜ − √ᾱ x₀)/√(1−ᾱ).
            let sa = scheduler.schedule.sqrtAlphaCumprod(t), sb = scheduler.schedule.sqrtOneMinusAlphaCumprod(t)
            let eps = zip(x, x0).map { ($0 - sa * $1) / sb }
            let output = try scheduler.step(modelOutput: eps, timestep: t, sample: x)
            x = output.prevSample
            lastPrediction = output.predOriginalSample
        }
        // The last step lands on ᾱ₀ (set_alpha_to_one is false for SD), so compare its x̂₀.
        for (a, b) in zip(lastPrediction, x0) { #expect(abs(a - b) < 1e-4) }
    }
}

// MARK: - Config files

@Suite struct SchedulerConfigTests {
    static func parse(_ json: String, as kind: SchedulerConfig.Kind? = nil) throws -> SchedulerConfig {
        try SchedulerConfig(json: Data(json.utf8), source: "scheduler_config.json", as: kind)
    }

    static func error(_ json: String, as kind: SchedulerConfig.Kind? = nil) -> SchedulerConfigError? {
        do { _ = try parse(json, as: kind) } catch let e as SchedulerConfigError { return e } catch { return nil }
        return nil
    }

    @Test func defaultsAreDiffusers() throws {
        #expect(try Self.parse(#"{"_class_name": "DDIMScheduler"}"#) == SchedulerConfig(kind: .ddim))
        #expect(try Self.parse(#"{"_class_name": "DDPMScheduler"}"#) == SchedulerConfig(kind: .ddpm))
        // diffusers' own DDIM defaults file, as save_pretrained writes it.
        let saved = SchedulerGoldens.named("ddim_linear_v_trailing_clip").configJson
        #expect(saved.contains("_diffusers_version") && saved.contains("\"trained_betas\": null"))
        let config = try Self.parse(saved)
        #expect(config.predictionType == .vPrediction && config.timestepSpacing == .trailing && config.ignoredKeys.isEmpty)
    }

    @Test func stableDiffusionPresetMatchesItsConfigFile() throws {
        let sd = SchedulerGoldens.named("ddim_from_sd15_pndm_config").configJson
        var converted = try Self.parse(sd, as: .ddim)
        #expect(converted.ignoredKeys == ["skip_prk_steps"])
        converted.ignoredKeys = []
        #expect(converted == .stableDiffusion(.ddim))
    }

    @Test func otherSchedulersNeedExplicitConversion() {
        let pndm = #"{"_class_name": "PNDMScheduler", "skip_prk_steps": true}"#
        #expect(Self.error(pndm) == .unsupportedClass(source: "scheduler_config.json", className: "PNDMScheduler"))
        #expect(Self.error("{}") == .unsupportedClass(source: "scheduler_config.json", className: "(no _class_name)"))
        #expect(Self.error(pndm, as: .ddpm) == nil)
        // Only classes on DDPM's beta schedule convert; others fail by name.
        for name in ["FlowMatchEulerDiscreteScheduler", "EDMEulerScheduler", "LCMScheduler", "MyScheduler"] {
            let e = Self.error("{\"_class_name\": \"\(name)\"}", as: .ddim)
            #expect(e == .notConvertible(source: "scheduler_config.json", className: name, target: "DDIMScheduler"))
            #expect(e?.description.contains(name) == true && e?.description.contains("PNDMScheduler") == true)
        }
    }

    @Test func unknownKeysAreErrors() {
        guard case .unknownKey(_, "beta_strat", "DDPMScheduler", let known)? =
                Self.error(#"{"_class_name": "DDPMScheduler", "beta_strat": 0.001}"#) else {
            Issue.record("expected unknownKey"); return
        }
        #expect(known.contains("variance_type"))
        let e = Self.error(#"{"_class_name": "DDIMScheduler", "solver_ordre": 2}"#)
        #expect(e?.description.contains("`solver_ordre`") == true)
        #expect(Self.error(#"{"_class_name": "DDPMScheduler", "_diffusers_version": "0.30.0", "trained_betas": null}"#) == nil)
    }

    /// diffusers drops the settings of its other schedulers silently when it loads a DDPM/DDIM
    /// config (SD 2.x's DDIM config carries PNDM's `skip_prk_steps`); Kiln skips and lists them.
    @Test func otherSchedulersKeysAreListed() throws {
        let ddim = try Self.parse(#"{"_class_name": "DDIMScheduler", "variance_type": "fixed_small", "skip_prk_steps": true, "solver_order": 2}"#)
        #expect(ddim.ignoredKeys == ["skip_prk_steps", "solver_order", "variance_type"])
        let ddpm = try Self.parse(#"{"_class_name": "DDPMScheduler", "set_alpha_to_one": false}"#)
        #expect(ddpm.ignoredKeys == ["set_alpha_to_one"] && ddpm == { var c = SchedulerConfig(kind: .ddpm); c.ignoredKeys = ["set_alpha_to_one"]; return c }())
    }

    /// diffusers' `extract_init_dict`: keys named in `_use_default_values` take the class's default.
    @Test func useDefaultValuesAreHonoured() throws {
        let c = try Self.parse(#"{"_class_name": "EulerDiscreteScheduler", "_use_default_values": ["timestep_spacing"], "timestep_spacing": "linspace", "steps_offset": 1}"#, as: .ddim)
        #expect(c.timestepSpacing == .leading && c.stepsOffset == 1 && c.ignoredKeys == ["timestep_spacing"])
        guard case .wrongType(_, "_use_default_values", _, _)? = Self.error(#"{"_class_name": "DDIMScheduler", "_use_default_values": "x"}"#) else {
            Issue.record("expected wrongType"); return
        }
    }

    /// What converts must be honoured: a value DDIM cannot apply fails by name.
    @Test(arguments: [
        (#""prediction_type": "flow_prediction""#, "prediction_type"),
        (#""beta_schedule": "laplace""#, "beta_schedule"),
        (#""timestep_spacing": "karras""#, "timestep_spacing"),
        (#""use_flow_sigmas": true"#, "use_flow_sigmas"),
    ])
    func conversionRefusesWhatItCannotHonour(entry: String, key: String) {
        let e = Self.error("{\"_class_name\": \"DPMSolverMultistepScheduler\", \(entry)}", as: .ddim)
        guard case .unsupportedValue(_, let k, _, _, _)? = e else {
            Issue.record("\(entry): expected unsupportedValue, got \(String(describing: e))"); return
        }
        #expect(k == key)
    }

    @Test(arguments: [
        (#""beta_schedule": "sigmoid""#, "beta_schedule"),
        (#""beta_schedule": "laplace""#, "beta_schedule"),
        (#""variance_type": "learned_range""#, "variance_type"),
        (#""variance_type": "fixed_large_log""#, "variance_type"),
        (#""prediction_type": "x0""#, "prediction_type"),
        (#""timestep_spacing": "karras""#, "timestep_spacing"),
    ])
    func unsupportedValues(entry: String, key: String) {
        let e = Self.error("{\"_class_name\": \"DDPMScheduler\", \(entry)}")
        guard case .unsupportedValue(let s, let k, _, let supported, _)? = e else {
            Issue.record("\(entry): expected unsupportedValue, got \(String(describing: e))"); return
        }
        #expect(s == "scheduler_config.json" && k == key && !supported.isEmpty)
        #expect(e!.description.contains("`\(key)`"))
    }

    @Test(arguments: [
        (#""clip_sample": 1"#, "clip_sample"),
        (#""num_train_timesteps": "1000""#, "num_train_timesteps"),
        (#""beta_start": true"#, "beta_start"),
        (#""steps_offset": 1.5"#, "steps_offset"),
        (#""trained_betas": [0.1, "x"]"#, "trained_betas"),
        (#""thresholding": null"#, "thresholding"),
    ])
    func wrongTypes(entry: String, key: String) {
        guard case .wrongType(_, let k, _, _)? = Self.error("{\"_class_name\": \"DDPMScheduler\", \(entry)}") else {
            Issue.record("\(entry): expected wrongType"); return
        }
        #expect(k == key)
    }

    @Test(arguments: [
        (#""beta_end": 1.5"#, "beta_end"),
        (#""beta_start": 0"#, "beta_start"),
        (#""num_train_timesteps": 0"#, "num_train_timesteps"),
        (#""trained_betas": [0.1, 0.2]"#, "trained_betas"),
        (#""steps_offset": -1"#, "steps_offset"),
        (#""clip_sample_range": 0"#, "clip_sample_range"),
        (#""dynamic_thresholding_ratio": 1.5"#, "dynamic_thresholding_ratio"),
    ])
    func invalidValues(entry: String, key: String) {
        guard case .invalidValue(_, let k, _, _)? = Self.error("{\"_class_name\": \"DDIMScheduler\", \(entry)}") else {
            Issue.record("\(entry): expected invalidValue"); return
        }
        #expect(k == key)
    }

    @Test func readsFilesAndNamesThem() throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("kiln-prior-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let url = folder.appendingPathComponent("scheduler_config.json")
        try Data(SchedulerGoldens.named("ddim_sd_leading_offset").configJson.utf8).write(to: url)
        let config = try SchedulerConfig(contentsOf: url)
        #expect(config.kind == .ddim && config.stepsOffset == 1 && !config.setAlphaToOne)
        guard case .unreadable(let s, _)? = { () -> SchedulerConfigError? in
            do { _ = try SchedulerConfig(contentsOf: folder.appendingPathComponent("missing.json")) }
            catch let e as SchedulerConfigError { return e } catch {}
            return nil
        }() else { Issue.record("expected unreadable"); return }
        #expect(s.hasSuffix("missing.json"))
        #expect(Self.error("[1, 2]").map { if case .unreadable = $0 { true } else { false } } == true)
    }
}

// MARK: - Other schedulers' configs (tools/make_scheduler_conversion_goldens.py)

struct SchedulerConversionGoldens: Decodable {
    struct Case: Decodable {
        var name: String
        var `class`: String
        var ddimConfigJson: String
        var ignoredKeys: [String]
        var scheduleIndices: [Int]
        var alphasCumprod: [Double]
        var alphasCumprodNoise: Double
        var timesteps: [String: [Int]]
    }
    var diffusersVersion: String
    var compatibleClasses: [String]
    var otherSchedulerKeys: [String]
    var cases: [Case]

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let shared: SchedulerConversionGoldens = {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try! decoder.decode(SchedulerConversionGoldens.self,
                                   from: Data(contentsOf: fixtures.appendingPathComponent("scheduler_conversions.json")))
    }()
    static var caseNames: [String] { shared.cases.map(\.name) }
    static func named(_ name: String) -> Case { shared.cases.first { $0.name == name }! }
}

@Suite struct SchedulerConversionTests {
    /// The pipeline's scheduler_config.json, read as Kiln's pipeline reads it.
    static func converted(_ name: String) throws -> SchedulerConfig {
        try SchedulerConfig(contentsOf: SchedulerConversionGoldens.fixtures.appendingPathComponent("scheduler_configs/\(name)/scheduler_config.json"),
                            as: .ddim)
    }

    /// Same settings as diffusers' `DDIMScheduler.from_config(file)`, the same keys skipped, the
    /// same ᾱ and the same timesteps.
    @Test(arguments: SchedulerConversionGoldens.caseNames)
    func convertsAsDiffusers(name: String) throws {
        let golden = SchedulerConversionGoldens.named(name)
        var config = try Self.converted(name)
        #expect(config.ignoredKeys == golden.ignoredKeys)
        config.ignoredKeys = []
        #expect(config == (try SchedulerConfig(json: Data(golden.ddimConfigJson.utf8), source: name)))
        let schedule = try NoiseSchedule(config: config)
        let cumprod = golden.scheduleIndices.map { schedule.alphasCumprod[$0] }
        if let m = schedulerMismatch(cumprod, golden.alphasCumprod, noise: golden.alphasCumprodNoise, relative: true) {
            Issue.record("\(name) alphas_cumprod: \(m)")
        }
        var scheduler = try DDIMScheduler(config: config)
        for (count, want) in golden.timesteps {
            try scheduler.setTimesteps(Int(count)!)
            #expect(scheduler.timesteps == want, "\(name) n=\(count)")
        }
    }

    @Test func stableDiffusionConfigsKeepTheirSettings() throws {
        #expect(try Self.converted("sd21_ddim_v_prediction").predictionType == .vPrediction)
        let sdxl = try Self.converted("sdxl_euler")
        #expect(sdxl.timestepSpacing == .leading && sdxl.stepsOffset == 1 && !sdxl.clipSample && !sdxl.setAlphaToOne)
        let dpm = try Self.converted("dpmsolver_pp_v_trailing_zero_snr")
        #expect(dpm.rescaleBetasZeroSNR && dpm.timestepSpacing == .trailing && dpm.predictionType == .vPrediction)
        // SD 2.x's DDIM file loads as it is, too (PNDM's skip_prk_steps listed, not refused).
        let url = SchedulerConversionGoldens.fixtures.appendingPathComponent("scheduler_configs/sd21_ddim_v_prediction/scheduler_config.json")
        #expect(try SchedulerConfig(contentsOf: url).ignoredKeys == ["skip_prk_steps"])
    }

    /// Kiln's copies of diffusers' lists are current.
    @Test func classAndKeyListsMatchDiffusers() {
        let golden = SchedulerConversionGoldens.shared
        #expect(SchedulerConfig.convertibleClassNames == golden.compatibleClasses.filter { $0 != "EDMEulerScheduler" },
                "diffusers \(golden.diffusersVersion)")
        #expect(SchedulerConfig.otherSchedulerKeys == golden.otherSchedulerKeys, "diffusers \(golden.diffusersVersion)")
    }
}
