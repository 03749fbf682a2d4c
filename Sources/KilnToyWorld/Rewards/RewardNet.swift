import Foundation
import KilnCore
import KilnNN

/// A small convolutional classifier over 64² (any size divisible by 8) RGB images in [0, 1],
/// with several softmax heads: the body of Kiln's reward models.
///
///     conv 3→w, then three stride-2 stages (w→w, w→2w, 2w→4w), each GroupNorm + SiLU + conv;
///     GroupNorm + SiLU, flattened → features [N, 4w·(S/8)²] → one Linear per head
///
/// The features keep the 8× reduced map's layout rather than averaging it away: which side of an
/// object faces the camera is a matter of where its parts are (measured on the view model, 1500
/// steps: azimuth accuracy 0.17 with global average pooling, chance being 0.125).
///
/// Differentiable with respect to the image (`inputGradient`), so a reward built on it can steer
/// score distillation.
public final class RewardNet: Module {
    /// One classification head: a name and its class labels.
    public struct Head: Sendable, Codable, Equatable {
        public var name: String
        public var classes: [String]
        public init(name: String, classes: [String]) { self.name = name; self.classes = classes }
    }

    public let heads: [Head]
    public let width: Int
    /// Side of the square input images (a multiple of 8).
    public let imageSize: Int
    /// Input channels: 3 for one RGB image, 6 for two stacked (`MotionPairReward`).
    public let inputChannels: Int
    let stem: Conv2d
    let norms: [GroupNorm]
    let convs: [Conv2d]
    let finalNorm: GroupNorm
    let linears: [Linear]

    public init(heads: [Head], width: Int = 32, imageSize: Int = 64, inputChannels: Int = 3, rng: inout RNG) {
        precondition(imageSize > 0 && imageSize % 8 == 0, "RewardNet: image size \(imageSize) must be a positive multiple of 8")
        precondition(inputChannels > 0 && inputChannels % 3 == 0, "RewardNet: input channels \(inputChannels) must be RGB images stacked")
        self.heads = heads
        self.width = width
        self.imageSize = imageSize
        self.inputChannels = inputChannels
        stem = Conv2d(inChannels: inputChannels, outChannels: width, kernelSize: 3, padding: 1, rng: &rng)
        let channels = [width, width, 2 * width, 4 * width]
        norms = (0..<3).map { GroupNorm(groups: 8, channels: channels[$0]) }
        convs = (0..<3).map { Conv2d(inChannels: channels[$0], outChannels: channels[$0 + 1], kernelSize: 3, stride: 2, padding: 1, rng: &rng) }
        finalNorm = GroupNorm(groups: 8, channels: 4 * width)
        let features = 4 * width * (imageSize / 8) * (imageSize / 8)
        linears = heads.map { Linear(inFeatures: features, outFeatures: $0.classes.count, rng: &rng) }
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        var out = prefixed("stem", stem)
        for i in 0..<3 { out += prefixed("stages.\(i).norm", norms[i]) + prefixed("stages.\(i).conv", convs[i]) }
        out += prefixed("final_norm", finalNorm)
        for (head, linear) in zip(heads, linears) { out += prefixed("heads.\(head.name)", linear) }
        return out
    }

    /// What `backward` needs.
    public struct Saved {
        var input: Tensor
        var stageInputs: [Tensor], normalized: [Tensor], activated: [Tensor]
        var finalInput: Tensor, finalNormalized: Tensor, pooledFrom: Tensor, features: Tensor
    }

    /// Logits per head, `[N, classes]` each, for images `[N, C, H, W]` in [0, 1] (C = `inputChannels`).
    public func forward(_ images: Tensor) -> [Tensor] { forwardForTraining(images).logits }

    public func forwardForTraining(_ images: Tensor) -> (logits: [Tensor], saved: Saved) {
        images.checkShape([nil, inputChannels, imageSize, imageSize], "RewardNet.forward")
        // Centre the pixels: [0, 1] → [−1, 1].
        let x = images.map { 2 * $0 - 1 }
        var h = stem.forward(x)
        var stageInputs: [Tensor] = [], normalized: [Tensor] = [], activated: [Tensor] = []
        for i in 0..<3 {
            stageInputs.append(h)
            let n = norms[i].forward(h), a = SiLU().forward(n)
            normalized.append(n); activated.append(a)
            h = convs[i].forward(a)
        }
        let fn = finalNorm.forward(h), fa = SiLU().forward(fn)
        let features = fa.reshaped([fa.shape[0], -1])
        let logits = linears.map { $0.forward(features) }
        return (logits, Saved(input: x, stageInputs: stageInputs, normalized: normalized, activated: activated,
                              finalInput: h, finalNormalized: fn, pooledFrom: fa, features: features))
    }

    /// Adds the parameter gradients and returns ∂L/∂images, given ∂L/∂logits per head.
    @discardableResult
    public func backward(_ s: Saved, logitGradients: [Tensor]) -> Tensor {
        var dFeatures = Tensor.zeros(like: s.features)
        for (linear, dy) in zip(linears, logitGradients) { dFeatures += linear.backward(input: s.features, outputGradient: dy) }
        var g = SiLU().backward(input: s.finalNormalized, outputGradient: dFeatures.reshaped(s.pooledFrom.shape))
        g = finalNorm.backward(input: s.finalInput, outputGradient: g)
        for i in (0..<3).reversed() {
            g = convs[i].backward(input: s.activated[i], outputGradient: g)
            g = SiLU().backward(input: s.normalized[i], outputGradient: g)
            g = norms[i].backward(input: s.stageInputs[i], outputGradient: g)
        }
        g = stem.backward(input: s.input, outputGradient: g)
        return g * 2  // through x = 2·image − 1
    }

    /// One optimisation step: cross-entropy summed over the heads (`targets[image][head]`, −1 to
    /// ignore), gradients clipped to norm 5, then `optimizer`. Returns the loss.
    @discardableResult
    public func trainingStep(_ images: Tensor, targets: [[Int]], optimizer: Adam) -> Float {
        let (logits, saved) = forwardForTraining(images)
        var loss: Float = 0
        var gradients: [Tensor] = []
        for (h, logit) in logits.enumerated() {
            let (l, g) = Self.crossEntropy(logit, targets: targets.map { $0[h] })
            loss += l
            gradients.append(g)
        }
        zeroGradients()
        backward(saved, logitGradients: gradients)
        _ = clipGradientNorm(parameters, maxNorm: 5)
        optimizer.step()
        return loss
    }

    /// The most likely class of each row of `[N, K]` logits (the first on ties).
    public static func predictions(_ logits: Tensor) -> [Int] {
        let (n, k) = (logits.shape[0], logits.shape[1])
        return (0..<n).map { r in
            let row = logits.storage[(r * k)..<((r + 1) * k)]
            return row.firstIndex(of: row.max()!)! - r * k
        }
    }

    /// Row-wise log-softmax of `[N, K]` logits.
    public static func logSoftmax(_ logits: Tensor) -> Tensor {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let values = logits.storage
        var out = [Float](repeating: 0, count: n * k)
        for r in 0..<n {
            let row = values[(r * k)..<((r + 1) * k)]
            let m: Float = row.max()!
            var total: Float = 0
            for v in row { total += Foundation.exp(v - m) }
            let lse: Float = m + Foundation.log(total)
            for j in 0..<k { out[r * k + j] = values[r * k + j] - lse }
        }
        return Tensor(shape: [n, k], storage: out)
    }

    /// Mean cross-entropy of `logits` `[N, K]` against `targets`, and its gradient with respect to
    /// the logits (softmax − one-hot)/N. Targets of −1 are ignored.
    public static func crossEntropy(_ logits: Tensor, targets: [Int]) -> (loss: Float, gradient: Tensor) {
        let (n, k) = (logits.shape[0], logits.shape[1])
        let logP = logSoftmax(logits).storage
        var gradient = [Float](repeating: 0, count: n * k)
        var loss: Float = 0
        let counted = Float(max(1, targets.filter { $0 >= 0 }.count))
        for r in 0..<n where targets[r] >= 0 {
            loss -= logP[r * k + targets[r]]
            for j in 0..<k { gradient[r * k + j] = Foundation.exp(logP[r * k + j]) / counted }
            gradient[r * k + targets[r]] -= 1 / counted
        }
        return (loss / counted, Tensor(shape: [n, k], storage: gradient))
    }
}
