import Foundation
import KilnCore

/// Adam and AdamW with PyTorch's semantics (`torch.optim.Adam` / `torch.optim.AdamW`, single-tensor
/// path), over a list of parameters whose gradients the backward passes filled. Each value steps
/// through KilnCore's `AdamW` (its equations and roundings are written there), with
/// `AdamW.Arithmetic.pytorch` unless the configuration says otherwise.
public final class Adam {
    /// Hyper-parameters. `learningRate` may change between steps (schedules).
    public typealias Configuration = AdamW

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
        let scalars = configuration.step(stepCount)
        for (index, parameter) in parameters.enumerated() where parameter.requiresGradient {
            parameter.gradient.withUnsafeBufferPointer { pg in
                parameter.withUnsafeMutableValue { pp in
                    firstMoments[index].withUnsafeMutableBufferPointer { pm in
                        secondMoments[index].withUnsafeMutableBufferPointer { pv in
                            let n = pp.count
                            guard n > 0 else { return }
                            nonisolated(unsafe) let (g, p, m, v) = (pg.baseAddress!, pp.baseAddress!, pm.baseAddress!, pv.baseAddress!)
                            VectorMath.forChunks(n) { range in scalars.uncheckedUpdate(p, gradients: g, m: m, v: v, range: range) }
                        }
                    }
                }
            }
        }
    }
}
