/// GELU, `torch.nn.GELU(approximate=…)`: the exact x·Φ(x) = ½x(1 + erf(x/√2)) (default, used by
/// diffusers' GEGLU) or the tanh approximation ½x(1 + tanh(√(2/π)(x + 0.044715x³))). No
/// parameters; any shape.
///
/// The exact form evaluates erf with `VectorMath.erf` (absolute error ~10⁻⁷).
public struct GELU: Sendable {
    public var approximation: GELUApproximation

    public init(approximation: GELUApproximation = .none) { self.approximation = approximation }

    @usableFromInline static let sqrtHalf: Float = 0.707_106_781_186_547_524_4
    @usableFromInline static let inverseSqrt2Pi: Float = 0.398_942_280_401_432_677_9
    @usableFromInline static let sqrt2OverPi: Float = 0.797_884_560_802_865_355_9

    /// gelu(x) in the given form, sixteen lanes.
    @inlinable @inline(__always)
    public static func value(_ x: SIMD16<Float>, _ approximation: GELUApproximation) -> SIMD16<Float> {
        switch approximation {
        case .none: return 0.5 * x * (1 + VectorMath.erf(x * sqrtHalf))
        case .tanh: return 0.5 * x * VectorMath.onePlusMinusTanh(sqrt2OverPi * (x + 0.044715 * x * x * x)).plus
        }
    }

    /// gelu′(x): Φ(x) + x·φ(x), or for the tanh form ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²).
    @inlinable @inline(__always)
    public static func derivative(_ x: SIMD16<Float>, _ approximation: GELUApproximation) -> SIMD16<Float> {
        switch approximation {
        case .none:
            let cdf = 0.5 * (1 + VectorMath.erf(x * sqrtHalf))
            let pdf = VectorMath.exp(-0.5 * x * x) * inverseSqrt2Pi
            return cdf + x * pdf
        case .tanh:
            let (plus, minus) = VectorMath.onePlusMinusTanh(sqrt2OverPi * (x + 0.044715 * x * x * x))
            let du = sqrt2OverPi * (1 + 3 * 0.044715 * x * x)
            return 0.5 * plus + 0.5 * x * (plus * minus) * du  // 1 − t² = (1 + t)(1 − t)
        }
    }

    public func forward(_ x: Tensor) -> Tensor {
        switch approximation {
        case .none: return x.mapSIMD { GELU.value($0, .none) }
        case .tanh: return x.mapSIMD { GELU.value($0, .tanh) }
        }
    }

    /// ∂L/∂x = ∂L/∂y · gelu′(x), given the forward's input.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        switch approximation {
        case .none: return Tensor.zipWith(x, dy, "GELU.backward") { GELU.derivative($0, .none) * $1 }
        case .tanh: return Tensor.zipWith(x, dy, "GELU.backward") { GELU.derivative($0, .tanh) * $1 }
        }
    }
}
