import Foundation
import KilnCore

/// Adam and AdamW with PyTorch's semantics (`torch.optim.Adam` / `torch.optim.AdamW`, single-tensor
/// path), over a list of parameters whose gradients the backward passes filled.
///
/// For step t = 1, 2, …, with gradient g:
///
///     Adam (weightDecay λ as L2):   g ← g + λ·p
///     AdamW (decoupled):            p ← p·(1 − lr·λ)
///     m ← m + (1 − β₁)(g − m)          v ← β₂·v + (1 − β₂)·g²
///     p ← p − (lr/(1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
///
/// ε is added outside the square root, after bias correction, exactly as PyTorch does; the
/// bias-correction scalars are computed in `Double` (PyTorch uses Python floats). Loshchilov &
/// Hutter 2019 ("Decoupled weight decay regularization") for AdamW; Kingma & Ba 2015 for Adam.
public final class Adam {
    /// Hyper-parameters. `learningRate` may change between steps (schedules). Held in `Double` and
    /// rounded to float32 where they meet the tensors, as PyTorch does with its Python floats.
    public struct Configuration: Sendable, Codable, Equatable {
        public var learningRate: Double
        public var beta1: Double
        public var beta2: Double
        public var eps: Double
        public var weightDecay: Double
        /// true: AdamW's decoupled decay; false: Adam's L2 term added to the gradient.
        public var decoupledWeightDecay: Bool

        public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                    weightDecay: Double = 0, decoupledWeightDecay: Bool = false) {
            self.learningRate = learningRate
            self.beta1 = beta1
            self.beta2 = beta2
            self.eps = eps
            self.weightDecay = weightDecay
            self.decoupledWeightDecay = decoupledWeightDecay
        }

        /// `torch.optim.Adam`'s defaults (no weight decay) with the given learning rate.
        public static func adam(learningRate: Double = 1e-3, weightDecay: Double = 0) -> Configuration {
            Configuration(learningRate: learningRate, weightDecay: weightDecay, decoupledWeightDecay: false)
        }

        /// `torch.optim.AdamW`'s defaults (weight decay 0.01) with the given learning rate.
        public static func adamW(learningRate: Double = 1e-3, weightDecay: Double = 1e-2) -> Configuration {
            Configuration(learningRate: learningRate, weightDecay: weightDecay, decoupledWeightDecay: true)
        }
    }

    public var configuration: Configuration
    /// The parameters updated by `step()`, in order.
    public let parameters: [Parameter]
    /// Steps taken so far (PyTorch's `state["step"]`).
    public private(set) var stepCount = 0
    /// First-moment estimates m (`exp_avg`), one per parameter.
    public private(set) var firstMoments: [Tensor]
    /// Second-moment estimates v (`exp_avg_sq`), one per parameter.
    public private(set) var secondMoments: [Tensor]

    public init(parameters: [Parameter], configuration: Configuration) {
        precondition((0..<1).contains(configuration.beta1) && (0..<1).contains(configuration.beta2),
                     "Adam: betas (\(configuration.beta1), \(configuration.beta2)) must lie in [0, 1)")
        self.parameters = parameters
        self.configuration = configuration
        self.firstMoments = parameters.map { Tensor.zeros(like: $0.value) }
        self.secondMoments = parameters.map { Tensor.zeros(like: $0.value) }
    }

    /// Restores a saved state (a checkpoint): step count and both moment lists.
    /// - Precondition: one moment tensor per parameter, with its shape.
    public func restore(stepCount: Int, firstMoments: [Tensor], secondMoments: [Tensor]) {
        precondition(firstMoments.count == parameters.count && secondMoments.count == parameters.count
                     && zip(parameters, zip(firstMoments, secondMoments)).allSatisfy { $0.shape == $1.0.shape && $0.shape == $1.1.shape },
                     "Adam.restore: the moments do not match the \(parameters.count) parameters' shapes")
        self.stepCount = stepCount
        self.firstMoments = firstMoments
        self.secondMoments = secondMoments
    }

    /// One update of every parameter from its current gradient (gradients are left as they are).
    public func step() {
        stepCount += 1
        let c = configuration
        let t = Double(stepCount)
        let biasCorrection1 = 1 - Foundation.pow(c.beta1, t)
        let biasCorrection2Sqrt = (1 - Foundation.pow(c.beta2, t)).squareRoot()
        // The scalars as PyTorch's kernels see them: Python floats rounded to float32.
        let negativeStepSize = Float(-(c.learningRate / biasCorrection1))
        let correction = Float(biasCorrection2Sqrt)
        let eps = Float(c.eps)
        let decay = Float(1 - c.learningRate * c.weightDecay)  // AdamW: p·(1 − lr·λ)
        let l2 = c.decoupledWeightDecay ? 0 : Float(c.weightDecay)
        let decoupled = c.decoupledWeightDecay && c.weightDecay != 0
        let mixM = Float(1 - c.beta1), beta2 = Float(c.beta2), mixV = Float(1 - c.beta2)
        for (index, parameter) in parameters.enumerated() {
            parameter.gradient.withUnsafeBufferPointer { pg in
                parameter.value.withUnsafeMutableBufferPointer { pp in
                    firstMoments[index].withUnsafeMutableBufferPointer { pm in
                        secondMoments[index].withUnsafeMutableBufferPointer { pv in
                            let n = pp.count
                            guard n > 0 else { return }
                            nonisolated(unsafe) let (g, p, m, v) = (pg.baseAddress!, pp.baseAddress!, pm.baseAddress!, pv.baseAddress!)
                            VectorMath.forChunks(n) { range in
                                for i in range {
                                    var grad = g[i]
                                    if decoupled { p[i] *= decay }
                                    if l2 != 0 { grad += l2 * p[i] }
                                    m[i] += mixM * (grad - m[i])  // torch.lerp(m, g, 1 − β₁)
                                    v[i] = v[i] * beta2 + mixV * grad * grad
                                    let denominator = v[i].squareRoot() / correction + eps
                                    p[i] += negativeStepSize * (m[i] / denominator)  // addcdiv
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
