/// SiLU (swish), `torch.nn.SiLU`: y = x·σ(x). No parameters; any shape.
public struct SiLU: Sendable {
    public init() {}

    /// x·σ(x), sixteen lanes.
    @inlinable @inline(__always)
    public static func value(_ x: SIMD16<Float>) -> SIMD16<Float> { x * VectorMath.sigmoid(x) }

    /// σ(x)·(1 + x·(1 − σ(x))), sixteen lanes.
    @inlinable @inline(__always)
    public static func derivative(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let s = VectorMath.sigmoid(x)
        return s * (1 + x * (1 - s))
    }

    public func forward(_ x: Tensor) -> Tensor { x.mapSIMD(SiLU.value) }

    /// ∂L/∂x = ∂L/∂y · silu′(x), given the forward's input.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        Tensor.zipWith(x, dy, "SiLU.backward") { SiLU.derivative($0) * $1 }
    }
}
