/// CLIP's quick GELU (`quick_gelu` in transformers): y = x·σ(1.702x). No parameters; any shape.
public struct QuickGELU: Sendable {
    public init() {}

    /// x·σ(1.702x), sixteen lanes.
    @inlinable @inline(__always)
    public static func value(_ x: SIMD16<Float>) -> SIMD16<Float> { x * VectorMath.sigmoid(1.702 * x) }

    /// σ(1.702x) + 1.702·x·σ(1.702x)·(1 − σ(1.702x)), sixteen lanes.
    @inlinable @inline(__always)
    public static func derivative(_ x: SIMD16<Float>) -> SIMD16<Float> {
        let s = VectorMath.sigmoid(1.702 * x)
        return s + 1.702 * x * s * (1 - s)
    }

    public func forward(_ x: Tensor) -> Tensor { x.mapSIMD(QuickGELU.value) }

    /// ∂L/∂x = ∂L/∂y · quickGELU′(x), given the forward's input.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        Tensor.zipWith(x, dy, "QuickGELU.backward") { QuickGELU.derivative($0) * $1 }
    }
}
