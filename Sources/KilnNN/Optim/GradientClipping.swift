/// Global gradient-norm clipping, `torch.nn.utils.clip_grad_norm_` (L2): scales every gradient by
/// min(1, maxNorm/(‖g‖ + 10⁻⁶)) where ‖g‖ is the L2 norm of all gradients together.
///
/// - Returns: the total norm before clipping (accumulated in `Double`). Like PyTorch, a NaN or
///   infinite norm is returned and propagates into the gradients; check it and skip the step.
@discardableResult
public func clipGradientNorm(_ parameters: [Parameter], maxNorm: Float) -> Float {
    precondition(maxNorm >= 0, "clipGradientNorm: maxNorm must be non-negative, got \(maxNorm)")
    let total = Float(parameters.reduce(0.0) { $0 + $1.gradient.squaredNorm() }.squareRoot())
    let coefficient = maxNorm / (total + 1e-6)
    if coefficient < 1 || !total.isFinite {
        for p in parameters { p.gradient.scale(by: coefficient) }
    }
    return total
}
