import Foundation

/// Adam and AdamW on `Float` values: Kiln's one optimiser update. KilnNN's `Adam` (the networks,
/// the mesh scene, the NeRF), the splat optimiser and a dynamic scene's motion all step through
/// `AdamW.Step.update`.
///
/// For step t = 1, 2, … with gradient g and learning rate lr (Kingma & Ba 2015, Algorithm 1;
/// Loshchilov & Hutter 2019, "Decoupled weight decay regularization", for AdamW):
///
///     Adam (weightDecay λ as L2):   g ← g + λ·p
///     AdamW (decoupled):            p ← p·(1 − lr·λ)
///     m ← β₁·m + (1 − β₁)·g          v ← β₂·v + (1 − β₂)·g²
///     p ← p − lr · m̂ / (√v̂ + ε),     m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
///
/// `Arithmetic` says in which order the floats are rounded: PyTorch's (which the networks are held
/// to by goldens) or Algorithm 1 written out in `Float` (which the splats and their motion have
/// used since they were written, and which their fixed-seed runs depend on bit for bit).
public struct AdamW: Sendable, Codable, Equatable {
    /// Two roundings of the same equations.
    public enum Arithmetic: String, Sendable, Codable {
        /// `torch.optim.Adam` / `torch.optim.AdamW`, single-tensor path: m moves by a lerp, ε is
        /// added after √v is divided by √(1 − β₂ᵗ), −lr/(1 − β₁ᵗ) multiplies m / denominator, and
        /// the scalars are computed in `Double` and rounded to `Float` (PyTorch's Python floats).
        case pytorch
        /// Algorithm 1 line by line in `Float`: m̂ and v̂ formed, then p ← p − lr·m̂/(√v̂ + ε), the
        /// bias corrections 1 − βᵗ computed in `Float`.
        case float32
    }

    /// May change between steps (schedules); `step(_:learningRate:)` can also take one per group.
    public var learningRate: Double
    public var beta1: Double
    public var beta2: Double
    public var eps: Double
    public var weightDecay: Double
    /// true: AdamW's decoupled decay; false: Adam's L2 term added to the gradient.
    public var decoupledWeightDecay: Bool
    public var arithmetic: Arithmetic

    /// Hyper-parameters, held in `Double` and rounded to `Float` where they meet the values.
    /// - Precondition: β₁ and β₂ in [0, 1).
    public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8,
                weightDecay: Double = 0, decoupledWeightDecay: Bool = false, arithmetic: Arithmetic = .pytorch) {
        precondition((0..<1).contains(beta1) && (0..<1).contains(beta2), "AdamW: betas (\(beta1), \(beta2)) must lie in [0, 1)")
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        self.arithmetic = arithmetic
    }

    /// `torch.optim.Adam`'s defaults (no weight decay) with the given learning rate.
    public static func adam(learningRate: Double = 1e-3, weightDecay: Double = 0) -> AdamW {
        AdamW(learningRate: learningRate, weightDecay: weightDecay, decoupledWeightDecay: false)
    }

    /// `torch.optim.AdamW`'s defaults (weight decay 0.01) with the given learning rate.
    public static func adamW(learningRate: Double = 1e-3, weightDecay: Double = 1e-2) -> AdamW {
        AdamW(learningRate: learningRate, weightDecay: weightDecay, decoupledWeightDecay: true)
    }

    /// The scalars of step `t` (counting from 1) at `learningRate` (default: the configured one).
    public func step(_ t: Int, learningRate rate: Double? = nil) -> Step {
        Step(self, t: t, learningRate: rate ?? learningRate)
    }

    /// One step's scalars, computed once and applied to every value of a parameter group.
    public struct Step: Sendable {
        @usableFromInline let arithmetic: Arithmetic
        /// AdamW: p·(1 − lr·λ) when `decoupled`; Adam: g + l2·p when `l2` ≠ 0.
        @usableFromInline let decoupled: Bool
        @usableFromInline let decay: Float
        @usableFromInline let l2: Float
        /// β₁ and 1 − β₁, β₂ and 1 − β₂, rounded as the arithmetic rounds them.
        @usableFromInline let beta1: Float, mix1: Float, beta2: Float, mix2: Float
        /// `.pytorch`: −lr/(1 − β₁ᵗ) and √(1 − β₂ᵗ); `.float32`: lr, 1 − β₁ᵗ and 1 − β₂ᵗ.
        @usableFromInline let learningRate: Float, correction1: Float, correction2: Float
        @usableFromInline let eps: Float

        init(_ c: AdamW, t: Int, learningRate lr: Double) {
            arithmetic = c.arithmetic
            decay = Float(1 - lr * c.weightDecay)
            decoupled = c.decoupledWeightDecay && c.weightDecay != 0
            l2 = c.decoupledWeightDecay ? 0 : Float(c.weightDecay)
            eps = Float(c.eps)
            switch c.arithmetic {
            case .pytorch:
                // Python floats rounded to float32 where they meet the tensors.
                let time = Double(t)
                beta1 = Float(c.beta1)
                mix1 = Float(1 - c.beta1)
                beta2 = Float(c.beta2)
                mix2 = Float(1 - c.beta2)
                learningRate = Float(-(lr / (1 - Foundation.pow(c.beta1, time))))
                correction1 = 1
                correction2 = Float((1 - Foundation.pow(c.beta2, time)).squareRoot())
            case .float32:
                beta1 = Float(c.beta1)
                mix1 = 1 - beta1
                beta2 = Float(c.beta2)
                mix2 = 1 - beta2
                learningRate = Float(lr)
                correction1 = 1 - Foundation.pow(beta1, Float(t))
                correction2 = 1 - Foundation.pow(beta2, Float(t))
            }
        }

        /// Updates one value `p` and its moments `m`, `v` from its gradient `g`.
        @inlinable @inline(__always)
        public func update(_ p: inout Float, gradient g: Float, m: inout Float, v: inout Float) {
            var grad = g
            if decoupled { p *= decay }
            if l2 != 0 { grad += l2 * p }
            switch arithmetic {
            case .pytorch:
                m += mix1 * (grad - m)  // torch.lerp(m, g, 1 − β₁)
                v = v * beta2 + mix2 * grad * grad
                let denominator = v.squareRoot() / correction2 + eps
                p += learningRate * (m / denominator)  // addcdiv with −lr/(1 − β₁ᵗ)
            case .float32:
                m = beta1 * m + mix1 * grad
                v = beta2 * v + mix2 * grad * grad
                let mHat = m / correction1, vHat = v / correction2
                p -= learningRate * mHat / (vHat.squareRoot() + eps)
            }
        }

        /// Updates `p[range]` and their moments from `g[range]`.
        /// - Precondition: the four buffers hold `range` (unchecked).
        @inlinable
        public func uncheckedUpdate(_ p: UnsafeMutablePointer<Float>, gradients g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>,
                                    v: UnsafeMutablePointer<Float>, range: Range<Int>) {
            for i in range { update(&p[i], gradient: g[i], m: &m[i], v: &v[i]) }
        }
    }
}
