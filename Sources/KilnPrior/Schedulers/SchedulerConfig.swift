import Foundation

/// The settings of a DDPM or DDIM noise scheduler, read from a diffusers
/// `scheduler/scheduler_config.json`.
///
/// Field names, defaults and meanings are diffusers' (`DDPMScheduler` / `DDIMScheduler.__init__`);
/// the Swift names are their camel-case forms.
///
/// ## Key policy
/// - `_class_name` must be `DDPMScheduler` or `DDIMScheduler`, unless the caller converts another
///   scheduler's config with `as:` (what `DDIMScheduler.from_config(pipe.scheduler.config)` does in
///   diffusers, e.g. for Stable Diffusion's `PNDMScheduler` config). Only `convertibleClassNames`
///   convert: classes on the same βₜ noise schedule. Any other name fails, naming it.
/// - Other keys starting with `_` (`_diffusers_version`, …) are bookkeeping and accepted. Keys named
///   in `_use_default_values` are skipped (the class's default is used, as in diffusers) and listed in
///   `ignoredKeys`.
/// - `trained_betas` may be `null` (the usual value) or an array of `num_train_timesteps` betas,
///   which then replace the beta schedule.
/// - Every key the class takes is applied, and must have a value Kiln supports; otherwise a
///   `SchedulerConfigError` names the key. When converting, that covers everything that changes
///   what DDPM/DDIM does (betas, `prediction_type`, `timestep_spacing`, `steps_offset`,
///   `rescale_betas_zero_snr`, clipping, thresholding).
/// - Keys the class does not take are skipped and listed in `ignoredKeys`, so the caller can report
///   them, when they belong to another scheduler class (`otherSchedulerKeys`, or the other one of
///   DDPM/DDIM: diffusers drops these silently, and SD 2.x's DDIM config carries PNDM's
///   `skip_prk_steps`) or when converting (diffusers skips them too). Any other key (a typo) is an
///   error: Kiln never ignores a setting silently. `use_flow_sigmas: true` is refused: it marks a
///   flow-matching model, which no βₜ schedule describes.
public struct SchedulerConfig: Sendable, Equatable {
    /// The scheduler class.
    public enum Kind: String, Sendable, CaseIterable {
        case ddpm = "DDPMScheduler"
        case ddim = "DDIMScheduler"
    }

    /// How betas are laid out over the training timesteps.
    public enum BetaSchedule: String, Sendable, CaseIterable {
        /// β linear in t from `betaStart` to `betaEnd` (DDPM, Ho et al. 2020).
        case linear
        /// √β linear in t (Stable Diffusion, 0.00085 … 0.012).
        case scaledLinear = "scaled_linear"
        /// Cosine ᾱ(t) = cos²((t + 0.008)/1.008 · π/2), β capped at 0.999 (Nichol & Dhariwal 2021).
        case squaredCosCapV2 = "squaredcos_cap_v2"
    }

    /// What the model predicts.
    public enum PredictionType: String, Sendable, CaseIterable {
        /// The added noise ε.
        case epsilon
        /// v = √ᾱ ε − √(1−ᾱ) x₀ (Salimans & Ho 2022).
        case vPrediction = "v_prediction"
        /// The clean sample x₀.
        case sample
    }

    /// How `setTimesteps(n)` picks n of the training timesteps (Lin et al. 2023, table 2).
    public enum TimestepSpacing: String, Sendable, CaseIterable {
        case leading, trailing, linspace
    }

    /// The DDPM posterior variance used when stepping.
    public enum VarianceType: String, Sendable, CaseIterable {
        /// β̃ₜ = (1−ᾱₜ₋₁)/(1−ᾱₜ) · βₜ.
        case fixedSmall = "fixed_small"
        /// β̃ₜ through its logarithm (the noise scale is exp(½ log β̃ₜ)).
        case fixedSmallLog = "fixed_small_log"
        /// βₜ.
        case fixedLarge = "fixed_large"
    }

    public var kind: Kind
    public var numTrainTimesteps = 1000
    public var betaStart = 0.0001
    public var betaEnd = 0.02
    public var betaSchedule = BetaSchedule.linear
    /// Explicit betas (`trained_betas`), overriding `betaSchedule` when set.
    public var trainedBetas: [Double]?
    public var predictionType = PredictionType.epsilon
    /// Clip the predicted x₀ to ±`clipSampleRange` (ignored when `thresholding`).
    public var clipSample = true
    public var clipSampleRange = 1.0
    /// Dynamic thresholding of the predicted x₀ (Saharia et al. 2022, Imagen).
    public var thresholding = false
    public var dynamicThresholdingRatio = 0.995
    public var sampleMaxValue = 1.0
    public var timestepSpacing = TimestepSpacing.leading
    /// Added to "leading" timesteps (Stable Diffusion uses 1).
    public var stepsOffset = 0
    /// Rescale betas to zero terminal SNR (Lin et al. 2023, algorithm 1).
    public var rescaleBetasZeroSNR = false
    /// DDIM: ᾱ before the first training step is 1 (true) or ᾱ₀ (false).
    public var setAlphaToOne = true
    /// DDPM: the posterior variance used by `step`.
    public var varianceType = VarianceType.fixedSmall
    /// Keys skipped while reading the file (another scheduler's settings, see the key policy), sorted.
    public var ignoredKeys: [String] = []

    /// diffusers' defaults for `kind`.
    public init(kind: Kind) {
        self.kind = kind
    }

    /// Stable Diffusion 1.x/2.x-base's noise schedule (scaled linear 0.00085 … 0.012, T = 1000,
    /// steps offset 1, no clipping) for DDPM or DDIM.
    public static func stableDiffusion(_ kind: Kind) -> SchedulerConfig {
        var c = SchedulerConfig(kind: kind)
        c.betaSchedule = .scaledLinear
        c.betaStart = 0.00085
        c.betaEnd = 0.012
        c.clipSample = false
        c.setAlphaToOne = false
        c.stepsOffset = 1
        return c
    }

    // MARK: Keys

    /// The config keys each class takes (its `__init__` parameters).
    public static func keys(for kind: Kind) -> [String] {
        let common = ["num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
                      "clip_sample", "clip_sample_range", "prediction_type", "thresholding",
                      "dynamic_thresholding_ratio", "sample_max_value", "timestep_spacing", "steps_offset",
                      "rescale_betas_zero_snr"]
        switch kind {
        case .ddpm: return common + ["variance_type"]
        case .ddim: return common + ["set_alpha_to_one"]
        }
    }

    /// The diffusers classes whose configs convert to DDPM/DDIM with `as:`: the classes diffusers
    /// 0.42.1 lists as compatible with `DDIMScheduler` (`DDIMScheduler.compatibles`), which all build
    /// the same βₜ from `beta_start`, `beta_end`, `beta_schedule`, less `EDMEulerScheduler` (σ-based,
    /// no betas: as DDIM it would run the model on a schedule it was not trained for).
    public static let convertibleClassNames = [
        "DDIMScheduler", "DDPMScheduler", "DEISMultistepScheduler", "DPMSolverMultistepScheduler",
        "DPMSolverSDEScheduler", "DPMSolverSinglestepScheduler", "EulerAncestralDiscreteScheduler",
        "EulerDiscreteScheduler", "HeunDiscreteScheduler", "KDPM2AncestralDiscreteScheduler",
        "KDPM2DiscreteScheduler", "LMSDiscreteScheduler", "PNDMScheduler", "UniPCMultistepScheduler",
    ]

    /// Settings only other schedulers take (solver order, σ spacing, …): the `__init__` parameters of
    /// diffusers 0.42.1's DDIM-compatible classes that neither DDPM nor DDIM takes. None changes the
    /// noise schedule; they choose how those samplers step (tools/make_scheduler_conversion_goldens.py
    /// lists them again, and a test compares).
    public static let otherSchedulerKeys = [
        "algorithm_type", "disable_corrector", "euler_at_final", "final_sigmas_type", "flow_shift",
        "interpolation_type", "lambda_min_clipped", "lower_order_final", "predict_x0", "rho", "shift_terminal",
        "sigma_data", "sigma_max", "sigma_min", "sigma_schedule", "skip_prk_steps", "solver_order", "solver_p",
        "solver_type", "time_shift_type", "timestep_type", "use_beta_sigmas", "use_dynamic_shifting",
        "use_exponential_sigmas", "use_flow_sigmas", "use_karras_sigmas", "use_lu_lambdas",
    ]

    // MARK: Loading

    /// Reads `scheduler_config.json`.
    /// - Parameter kind: convert another scheduler's config to this class (see the key policy).
    public init(contentsOf url: URL, as kind: Kind? = nil) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw SchedulerConfigError.unreadable(source: url.path, reason: "cannot read the file (\(error.localizedDescription)); check the path")
        }
        try self.init(json: data, source: url.path, as: kind)
    }

    /// Parses the JSON text of a scheduler config.
    /// - Parameters:
    ///   - source: the file name used in errors.
    ///   - kind: convert another scheduler's config to this class (see the key policy).
    /// - Throws: `SchedulerConfigError` naming the key and the value.
    public init(json: Data, source: String = "<memory>", as kind: Kind? = nil) throws {
        let object: [String: ConfigValue]
        do {
            // JSON5 for Python's `Infinity`/`NaN`: diffusers writes DPMSolverMultistepScheduler's default
            // `lambda_min_clipped` as `-Infinity`.
            let decoder = JSONDecoder()
            decoder.allowsJSON5 = true
            object = try decoder.decode([String: ConfigValue].self, from: json)
        } catch {
            throw SchedulerConfigError.unreadable(source: source, reason: "not a JSON object (\(error))")
        }
        let className: String?
        switch object["_class_name"] {
        case .string(let s): className = s
        case nil: className = nil
        case .some(let v): throw SchedulerConfigError.wrongType(source: source, key: "_class_name", expected: "a string", found: v.kindName)
        }
        let native = className.flatMap(Kind.init(rawValue:))
        guard let target = kind ?? native else {
            throw SchedulerConfigError.unsupportedClass(source: source, className: className ?? "(no _class_name)")
        }
        if let className, !Self.convertibleClassNames.contains(className) {
            throw SchedulerConfigError.notConvertible(source: source, className: className, target: target.rawValue)
        }
        let converting = native != target
        // diffusers' `extract_init_dict`: keys the saver filled with its class's defaults give way
        // to the new class's defaults.
        var useDefaults: Set<String> = []
        switch object["_use_default_values"] {
        case nil: break
        case .array(let items):
            for item in items {
                guard case .string(let key) = item else {
                    throw SchedulerConfigError.wrongType(source: source, key: "_use_default_values",
                                                         expected: "an array of key names", found: item.kindName)
                }
                useDefaults.insert(key)
            }
        case .some(let v):
            throw SchedulerConfigError.wrongType(source: source, key: "_use_default_values", expected: "an array of key names", found: v.kindName)
        }
        self.init(kind: target)
        let known = Set(Self.keys(for: target))
        let otherClasses = Set(Self.otherSchedulerKeys + Self.keys(for: target == .ddim ? .ddpm : .ddim))
        var ignored: [String] = []
        for key in object.keys.sorted() {
            let value = object[key]!
            if key.hasPrefix("_") { continue }
            if useDefaults.contains(key) { ignored.append(key); continue }
            guard known.contains(key) else {
                if key == "use_flow_sigmas", case .bool(true) = value {
                    throw SchedulerConfigError.unsupportedValue(
                        source: source, key: key, value: "true", supported: ["false"],
                        reason: "it marks a flow-matching model (σ from a flow shift, not from betas), which DDPM/DDIM cannot sample")
                }
                if converting || otherClasses.contains(key) { ignored.append(key); continue }
                throw SchedulerConfigError.unknownKey(source: source, key: key, className: target.rawValue,
                                                      known: Self.keys(for: target).sorted())
            }
            try apply(key, value, source: source)
        }
        ignoredKeys = ignored
        try validate(source: source)
    }

    private mutating func apply(_ key: String, _ value: ConfigValue, source: String) throws {
        func wrong(_ expected: String) -> SchedulerConfigError {
            .wrongType(source: source, key: key, expected: expected, found: value.kindName)
        }
        func int() throws -> Int { guard case .int(let v) = value else { throw wrong("an integer") }; return v }
        func double() throws -> Double {
            switch value {
            case .int(let v): return Double(v)
            case .double(let v): return v
            default: throw wrong("a number")
            }
        }
        func bool() throws -> Bool { guard case .bool(let v) = value else { throw wrong("true or false") }; return v }
        func choice<E: RawRepresentable & CaseIterable>(_: E.Type, unsupported: [String: String] = [:]) throws -> E
        where E.RawValue == String {
            guard case .string(let s) = value else { throw wrong("a string") }
            if let e = E(rawValue: s) { return e }
            throw SchedulerConfigError.unsupportedValue(source: source, key: key, value: s,
                                                        supported: E.allCases.map(\.rawValue), reason: unsupported[s])
        }
        switch key {
        case "num_train_timesteps": numTrainTimesteps = try int()
        case "beta_start": betaStart = try double()
        case "beta_end": betaEnd = try double()
        case "beta_schedule":
            betaSchedule = try choice(BetaSchedule.self, unsupported: [
                "sigmoid": "Kiln does not implement the sigmoid schedule (DDPM-only in diffusers)",
                "laplace": "Kiln does not implement the laplace schedule (DDPM-only in diffusers)",
            ])
        case "trained_betas":
            switch value {
            case .null: trainedBetas = nil
            case .array(let items):
                trainedBetas = try items.map {
                    switch $0 {
                    case .int(let v): return Double(v)
                    case .double(let v): return v
                    default: throw wrong("null or an array of numbers")
                    }
                }
            default: throw wrong("null or an array of numbers")
            }
        case "clip_sample": clipSample = try bool()
        case "clip_sample_range": clipSampleRange = try double()
        case "prediction_type": predictionType = try choice(PredictionType.self)
        case "thresholding": thresholding = try bool()
        case "dynamic_thresholding_ratio": dynamicThresholdingRatio = try double()
        case "sample_max_value": sampleMaxValue = try double()
        case "timestep_spacing": timestepSpacing = try choice(TimestepSpacing.self)
        case "steps_offset": stepsOffset = try int()
        case "rescale_betas_zero_snr": rescaleBetasZeroSNR = try bool()
        case "set_alpha_to_one": setAlphaToOne = try bool()
        case "variance_type":
            varianceType = try choice(VarianceType.self, unsupported: [
                "fixed_large_log": "diffusers' DDPM step takes the square root of this log variance (NaN); "
                    + "use fixed_large",
                "learned": "it needs a model that also predicts its variance (2× output channels); "
                    + "Kiln's UNets predict the noise only",
                "learned_range": "it needs a model that also predicts its variance (2× output channels); "
                    + "Kiln's UNets predict the noise only",
            ])
        default:
            preconditionFailure("keys(for:) and apply(_:_:source:) disagree on \(key)")
        }
    }

    /// Checks the values (ranges, lengths), naming the offending key. The schedulers call it too,
    /// so a config built in code is checked as strictly as one read from a file.
    public func validate(source: String = "<config>") throws {
        func invalid(_ key: String, _ value: Any, _ reason: String) -> SchedulerConfigError {
            .invalidValue(source: source, key: key, value: "\(value)", reason: reason)
        }
        guard (1...1_000_000).contains(numTrainTimesteps) else {
            throw invalid("num_train_timesteps", numTrainTimesteps, "must be between 1 and 1000000")
        }
        if let trainedBetas {
            guard trainedBetas.count == numTrainTimesteps else {
                throw invalid("trained_betas", "\(trainedBetas.count) values", "needs num_train_timesteps = \(numTrainTimesteps) values")
            }
            if let bad = trainedBetas.firstIndex(where: { !($0 > 0 && $0 < 1) }) {
                throw invalid("trained_betas", trainedBetas[bad], "element \(bad) must be in (0, 1)")
            }
        } else if betaSchedule != .squaredCosCapV2 {
            guard betaStart > 0 && betaStart < 1 else { throw invalid("beta_start", betaStart, "must be in (0, 1)") }
            guard betaEnd > 0 && betaEnd < 1 else { throw invalid("beta_end", betaEnd, "must be in (0, 1)") }
        }
        guard clipSampleRange > 0 && clipSampleRange.isFinite else {
            throw invalid("clip_sample_range", clipSampleRange, "must be a positive number")
        }
        guard dynamicThresholdingRatio > 0 && dynamicThresholdingRatio <= 1 else {
            throw invalid("dynamic_thresholding_ratio", dynamicThresholdingRatio, "must be in (0, 1] (a quantile)")
        }
        guard sampleMaxValue > 0 && sampleMaxValue.isFinite else {
            throw invalid("sample_max_value", sampleMaxValue, "must be a positive number")
        }
        guard stepsOffset >= 0 && stepsOffset < numTrainTimesteps else {
            throw invalid("steps_offset", stepsOffset, "must be in 0..<num_train_timesteps")
        }
    }
}

// MARK: - JSON values

/// One value of a config file, typed as JSON typed it (so `true` is never read as 1).
enum ConfigValue: Codable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([ConfigValue])
    case object([String: ConfigValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let v = try? c.decode(Bool.self) { self = .bool(v) }
        else if let v = try? c.decode(Int.self) { self = .int(v) }
        else if let v = try? c.decode(Double.self) { self = .double(v) }
        else if let v = try? c.decode(String.self) { self = .string(v) }
        else if let v = try? c.decode([ConfigValue].self) { self = .array(v) }
        else { self = .object(try c.decode([String: ConfigValue].self)) }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let v): try c.encode(v)
        case .int(let v): try c.encode(v)
        case .double(let v): try c.encode(v)
        case .string(let v): try c.encode(v)
        case .array(let v): try c.encode(v)
        case .object(let v): try c.encode(v)
        }
    }

    /// The value as JSON writes it (strings without quotes): `null`, `true`, `1`, `1.0`, `silu`.
    var text: String {
        switch self {
        case .null: return "null"
        case .bool(let v): return "\(v)"
        case .int(let v): return "\(v)"
        case .double(let v): return "\(v)"
        case .string(let v): return v
        case .array(let items): return "[" + items.map(\.text).joined(separator: ", ") + "]"
        case .object: return "an object"
        }
    }

    var kindName: String {
        switch self {
        case .null: return "null"
        case .bool(let v): return "\(v)"
        case .int(let v): return "the integer \(v)"
        case .double(let v): return "the number \(v)"
        case .string(let v): return "the string \"\(v)\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}

// MARK: - Errors

/// Why a scheduler config could not be used; every case names the file and the key.
public enum SchedulerConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file cannot be read or is not a JSON object.
    case unreadable(source: String, reason: String)
    /// `_class_name` is missing or not DDPM/DDIM, and no conversion was asked for.
    case unsupportedClass(source: String, className: String)
    /// `as:` was given a class that does not share DDPM's βₜ schedule (or that Kiln does not know).
    case notConvertible(source: String, className: String, target: String)
    /// A key no scheduler class takes.
    case unknownKey(source: String, key: String, className: String, known: [String])
    /// A value of the wrong JSON type.
    case wrongType(source: String, key: String, expected: String, found: String)
    /// A value diffusers knows but Kiln does not implement (`reason` says why, when there is one).
    case unsupportedValue(source: String, key: String, value: String, supported: [String], reason: String?)
    /// A value out of its valid range.
    case invalidValue(source: String, key: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .unreadable(let s, let reason):
            return "\(s): \(reason)"
        case .unsupportedClass(let s, let name):
            return "\(s): _class_name is \(name); Kiln runs DDPMScheduler and DDIMScheduler. To use another "
                + "scheduler's noise schedule (e.g. Stable Diffusion's PNDMScheduler config), load it with "
                + "`as: .ddim` or `as: .ddpm` (the equivalent of diffusers' from_config)"
        case .notConvertible(let s, let name, let target):
            return "\(s): _class_name is \(name), which Kiln cannot convert to \(target): only schedulers on DDPM's "
                + "beta schedule convert (" + SchedulerConfig.convertibleClassNames.joined(separator: ", ") + "); "
                + "use a pipeline trained with one of those"
        case .unknownKey(let s, let key, let className, let known):
            return "\(s): `\(key)` is not a setting of \(className) or of any scheduler Kiln converts, so Kiln "
                + "would ignore it; remove it, or load the file with `as:` to convert another scheduler's config. "
                + "\(className) settings: " + known.joined(separator: ", ")
        case .wrongType(let s, let key, let expected, let found):
            return "\(s): `\(key)` must be \(expected), not \(found)"
        case .unsupportedValue(let s, let key, let value, let supported, let reason):
            let why = reason.map { ": \($0)" } ?? ""
            return "\(s): `\(key)` = \"\(value)\" is not supported by Kiln\(why). Supported: "
                + supported.joined(separator: ", ")
        case .invalidValue(let s, let key, let value, let reason):
            return "\(s): `\(key)` = \(value) \(reason)"
        }
    }
}
