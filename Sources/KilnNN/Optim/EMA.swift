import Foundation

/// An exponential moving average of parameters, as diffusers' `EMAModel` (training scripts keep
/// one of the UNet and ship its weights).
///
/// After optimisation step k (counted by `update`), with s = max(0, k − updateAfterStep − 1):
///
///     decay = 0                                    if s ≤ 0 (the shadow copies the parameters)
///     decay = 1 − (1 + s/invGamma)^(−power)        with warm-up
///     decay = (1 + s)/(10 + s)                     without
///     decay = clamp(decay, minDecay, maxDecay)
///     shadow ← shadow − (1 − decay)·(shadow − parameter)
public final class EMA {
    public struct Configuration: Sendable, Codable, Equatable {
        /// The ceiling of the decay (diffusers' `decay`, 0.9999).
        public var maxDecay: Float
        public var minDecay: Float
        /// Steps before averaging starts (the shadow tracks the parameters until then).
        public var updateAfterStep: Int
        /// The warm-up schedule 1 − (1 + s/invGamma)^(−power) instead of (1 + s)/(10 + s).
        public var useWarmup: Bool
        public var invGamma: Float
        /// 2/3 suits runs of ~10⁵ steps or more, 3/4 shorter runs (diffusers' advice).
        public var power: Float

        public init(maxDecay: Float = 0.9999, minDecay: Float = 0, updateAfterStep: Int = 0, useWarmup: Bool = false,
                    invGamma: Float = 1, power: Float = 2.0 / 3.0) {
            self.maxDecay = maxDecay
            self.minDecay = minDecay
            self.updateAfterStep = updateAfterStep
            self.useWarmup = useWarmup
            self.invGamma = invGamma
            self.power = power
        }
    }

    public let configuration: Configuration
    /// The averaged values, one per tracked parameter.
    public private(set) var shadow: [Tensor]
    /// Updates applied so far (diffusers' `optimization_step`).
    public private(set) var optimizationStep = 0

    /// Starts the average at the parameters' current values.
    public init(parameters: [Parameter], configuration: Configuration = Configuration()) {
        self.configuration = configuration
        self.shadow = parameters.map(\.value)
    }

    /// The decay used for optimisation step `step` (1-based).
    public func decay(atStep step: Int) -> Float {
        let c = configuration
        let s = max(0, step - c.updateAfterStep - 1)
        if s <= 0 { return 0 }
        let value: Double
        if c.useWarmup {
            value = 1 - Foundation.pow(1 + Double(s) / Double(c.invGamma), -Double(c.power))
        } else {
            value = Double(1 + s) / Double(10 + s)
        }
        return Float(max(Double(c.minDecay), min(value, Double(c.maxDecay))))
    }

    /// Folds the parameters' current values into the average (call after each optimiser step).
    /// - Precondition: the same parameters, in the same order, as at initialisation.
    public func update(_ parameters: [Parameter]) {
        precondition(parameters.count == shadow.count, "EMA.update: \(parameters.count) parameters, the average tracks \(shadow.count)")
        optimizationStep += 1
        let oneMinusDecay = 1 - decay(atStep: optimizationStep)
        for (i, p) in parameters.enumerated() {
            p.value.checkSameShape(shadow[i], "EMA.update (parameter \(i))")
            shadow[i].add(shadow[i] - p.value, scaledBy: -oneMinusDecay)
        }
    }

    /// Replaces the average and the step count (resuming from a checkpoint).
    /// - Precondition: one tensor per tracked parameter, same shapes.
    public func restore(shadow values: [Tensor], optimizationStep step: Int) {
        precondition(values.count == shadow.count && zip(values, shadow).allSatisfy { $0.shape == $1.shape },
                     "EMA.restore: the values do not match the tracked parameters")
        shadow = values
        optimizationStep = step
    }

    /// Writes the averaged values into `parameters` (for evaluation or export).
    public func copy(to parameters: [Parameter]) {
        precondition(parameters.count == shadow.count, "EMA.copy: \(parameters.count) parameters, the average tracks \(shadow.count)")
        for (i, p) in parameters.enumerated() { p.load(shadow[i], name: "EMA parameter \(i)") }
    }
}
