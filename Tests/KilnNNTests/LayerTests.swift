import Foundation
import KilnCore
import Testing
@testable import KilnNN

/// The float32 layers against the float64 references, on random inputs: forward values, input
/// gradients and parameter gradients.
@Suite("Layers: fast float32 path against the float64 reference")
struct LayerTests {
    let tolerance = 2e-5

    @Test("Linear, with and without bias; gradients accumulate")
    func linear() {
        for (shape, o, bias) in [([2, 3, 7], 9, true), ([5, 7], 4, false)] {
            let i = shape.last!, m = shape.reduce(1, *) / i
            let x = randomValues(m * i, seed: 1), w = randomValues(o * i, seed: 2), b = randomValues(o, seed: 3)
            let dy = randomValues(m * o, seed: 4)
            let layer = Linear(weight: tensor(w, [o, i]), bias: bias ? tensor(b, [o]) : nil)
            let y = layer.forward(tensor(x, shape))
            #expect(y.shape == shape.dropLast() + [o])
            expectClose(y, NNReference.linear(x, weight: w, bias: bias ? b : nil, rows: m, inFeatures: i, outFeatures: o), tolerance: tolerance, "y")
            let dx = layer.backward(input: tensor(x, shape), outputGradient: tensor(dy, y.shape))
            let g = NNReference.linearBackward(x, weight: w, outputGradient: dy, rows: m, inFeatures: i, outFeatures: o)
            expectClose(dx, g.input, tolerance: tolerance, "dx")
            expectClose(layer.weight.gradient, g.weight, tolerance: tolerance, "dW")
            if bias { expectClose(layer.bias!.gradient, g.bias, tolerance: tolerance, "db") }
            layer.accumulateParameterGradients(input: tensor(x, shape), outputGradient: tensor(dy, y.shape))
            expectClose(layer.weight.gradient, g.weight.map { 2 * $0 }, tolerance: tolerance, "dW after two backward passes")
            layer.zeroGradients()
            #expect(layer.weight.gradient.maxAbsolute() == 0)
            #expect(layer.namedParameters.map(\.name) == (bias ? ["weight", "bias"] : ["weight"]))
        }
    }

    static let convolutions: [Conv2dGeometry] = [
        // Small images: several samples per product.
        Conv2dGeometry(batch: 3, inChannels: 4, height: 6, width: 5, outChannels: 5, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 4, height: 5, width: 5, outChannels: 6, kernelHeight: 1, kernelWidth: 1),
        Conv2dGeometry(batch: 2, inChannels: 3, height: 7, width: 8, outChannels: 5, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        // Large outputs (≥ 1024 pixels) run in bands of rows: 1×1 multiplies the input in place, 3×3
        // unfolds each band; a band height that does not divide the rows; stride 2 with an odd width.
        Conv2dGeometry(batch: 2, inChannels: 3, height: 48, width: 48, outChannels: 4, kernelHeight: 1, kernelWidth: 1),
        Conv2dGeometry(batch: 2, inChannels: 4, height: 46, width: 46, outChannels: 3, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 40, height: 40, width: 40, outChannels: 5, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 3, height: 64, width: 65, outChannels: 4, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        // Wide enough for Kiln's AVX-512 kernel (on CPUs that have it), bias added inside it; a band
        // of 1296 columns (not a multiple of 32).
        Conv2dGeometry(batch: 2, inChannels: 6, height: 36, width: 36, outChannels: 10, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        // Rectangular kernel, no padding; kernel wider than the unpadded image.
        Conv2dGeometry(batch: 1, inChannels: 2, height: 4, width: 5, outChannels: 3, kernelHeight: 2, kernelWidth: 3, stride: 2, padding: 0),
        Conv2dGeometry(batch: 2, inChannels: 1, height: 3, width: 3, outChannels: 2, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 1),
        // Bands of 2 rows and of 1 row: the backward pass folds bands in 3 and 5 phases so that
        // no two running at once add into the same input row.
        Conv2dGeometry(batch: 1, inChannels: 64, height: 12, width: 200, outChannels: 3, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 64, height: 7, width: 300, outChannels: 2, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        // Kiln's implicit-GEMM forward (AVX-512 CPUs, ≥ 8 outputs): two blocks of patch rows and of
        // output channels, panels across output rows; stride 2; 5×5 taps and a second, short band.
        Conv2dGeometry(batch: 2, inChannels: 40, height: 33, width: 40, outChannels: 100, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 8, height: 70, width: 66, outChannels: 12, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 5, height: 34, width: 64, outChannels: 9, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        // The implicit GEMM over a batch's columns on small images (AVX-512 CPUs, ≥ 8 outputs):
        // 30 pixels per sample, so panels of 32 columns span samples, with two blocks of patch rows
        // (the second adds into what the first stored) and more than 96 output channels; 16 pixels
        // (two samples per panel); pointwise; stride 2. The input gradient of the stride-1 ones is
        // the convolution of ∂L/∂y with the flipped kernel on the same path (≥ 8 input channels).
        Conv2dGeometry(batch: 5, inChannels: 40, height: 5, width: 6, outChannels: 100, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 7, inChannels: 16, height: 4, width: 4, outChannels: 24, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 3, inChannels: 12, height: 8, width: 8, outChannels: 20, kernelHeight: 1, kernelWidth: 1),
        Conv2dGeometry(batch: 3, inChannels: 16, height: 9, width: 9, outChannels: 24, kernelHeight: 3, kernelWidth: 3, stride: 2, padding: 1),
        Conv2dGeometry(batch: 2, inChannels: 9, height: 7, width: 7, outChannels: 10, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 1),
        // The direct kernel ("same" padding, stride 1, a multiple of 16 pixels; 4×4 and 8×8 above
        // too): two blocks of patch rows and more than 96 outputs, and 5×5 taps on 48 pixels, so
        // that panels span samples.
        Conv2dGeometry(batch: 4, inChannels: 40, height: 4, width: 8, outChannels: 100, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 3, inChannels: 9, height: 8, width: 6, outChannels: 10, kernelHeight: 5, kernelWidth: 5, stride: 1, padding: 2),
        // Fewer columns (sample, pixel) than outputs: im2col + sgemm, forward and backward.
        Conv2dGeometry(batch: 2, inChannels: 48, height: 4, width: 4, outChannels: 40, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        // The direct weight gradient in bands of a large image (2304 pixels, bands of 2048 at 64 outputs).
        Conv2dGeometry(batch: 2, inChannels: 8, height: 48, width: 48, outChannels: 64, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        // Winograd F(2×2, 3×3) (≥ 64 channels each way, ≥ 256 tiles): even sizes, and odd ones
        // whose last tile row and column fall half outside the plane.
        Conv2dGeometry(batch: 2, inChannels: 64, height: 32, width: 32, outChannels: 64, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        Conv2dGeometry(batch: 1, inChannels: 70, height: 33, width: 35, outChannels: 66, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
        // Bands that span samples (3 samples of 16 tile rows, two bands of 24 rows).
        Conv2dGeometry(batch: 3, inChannels: 64, height: 32, width: 32, outChannels: 64, kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1),
    ]

    @Test("Conv2d (im2col + sgemm) against direct loops", arguments: convolutions)
    func conv2d(_ g: Conv2dGeometry) {
        let x = randomValues(g.batch * g.inChannels * g.height * g.width, seed: 5)
        let w = randomValues(g.outChannels * g.patchSize, seed: 6), b = randomValues(g.outChannels, seed: 7)
        let outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth]
        let dy = randomValues(outShape.reduce(1, *), seed: 8)
        let layer = Conv2d(weight: tensor(w, [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth]), bias: tensor(b, [g.outChannels]),
                           stride: g.stride, padding: g.padding)
        let input = tensor(x, [g.batch, g.inChannels, g.height, g.width])
        let y = layer.forward(input)
        #expect(y.shape == outShape)
        expectClose(y, NNReference.conv2d(x, weight: w, bias: b, g), tolerance: tolerance, "y")
        let dx = layer.backward(input: input, outputGradient: tensor(dy, outShape))
        let ref = NNReference.conv2dBackward(x, weight: w, outputGradient: dy, g)
        expectClose(dx, ref.input, tolerance: tolerance, "dx")
        expectClose(layer.weight.gradient, ref.weight, tolerance: tolerance, "dW")
        expectClose(layer.bias!.gradient, ref.bias, tolerance: tolerance, "db")
        layer.zeroGradients()
        layer.accumulateParameterGradients(input: input, outputGradient: tensor(dy, outShape))
        expectClose(layer.weight.gradient, ref.weight, tolerance: tolerance, "dW (parameters only)")
    }

    @Test("Frozen parameters: the same input gradients, no parameter gradient computed or stored")
    func frozenParameters() {
        var rng = RNG(seed: 9)
        for g in [LayerTests.convolutions[0], LayerTests.convolutions[4], LayerTests.convolutions[11]] {
            let layer = Conv2d(inChannels: g.inChannels, outChannels: g.outChannels, kernelSize: g.kernelHeight,
                               stride: g.stride, padding: g.padding, rng: &rng)
            let x = tensor(randomValues(g.batch * g.inChannels * g.height * g.width, seed: 10), [g.batch, g.inChannels, g.height, g.width])
            let dy = tensor(randomValues(g.batch * g.outChannels * g.outHeight * g.outWidth, seed: 11), [g.batch, g.outChannels, g.outHeight, g.outWidth])
            let trained = layer.backward(input: x, outputGradient: dy)
            layer.setRequiresGradient(false)
            #expect(!layer.weight.hasGradient && !layer.bias!.hasGradient)
            let frozen = layer.backward(input: x, outputGradient: dy)
            #expect(frozen.storage == trained.storage, "Conv2d \(g): the input gradient does not depend on freezing")
            #expect(!layer.weight.hasGradient && !layer.bias!.hasGradient, "Conv2d \(g) stored a frozen gradient")
        }
        let linear = Linear(inFeatures: 5, outFeatures: 3, rng: &rng)
        let x = tensor(randomValues(10, seed: 12), [2, 5]), dy = tensor(randomValues(6, seed: 13), [2, 3])
        let trained = linear.backward(input: x, outputGradient: dy)
        linear.setRequiresGradient(false)
        #expect(linear.backward(input: x, outputGradient: dy).storage == trained.storage)
        #expect(!linear.weight.hasGradient && !linear.bias!.hasGradient)
        let norms: [(any Module, Tensor, (Tensor) -> Tensor)] = {
            let group = GroupNorm(groups: 2, channels: 4)
            let layer = LayerNorm(features: 5)
            let gx = tensor(randomValues(2 * 4 * 9, seed: 14), [2, 4, 3, 3]), lx = tensor(randomValues(10, seed: 15), [2, 5])
            return [
                (group, gx, { group.backward(input: gx, outputGradient: $0) }),
                (layer, lx, { layer.backward(input: lx, outputGradient: $0) }),
            ]
        }()
        for (module, x, backward) in norms {
            let dy = tensor(randomValues(x.count, seed: 16), x.shape)
            let trained = backward(dy)
            module.setRequiresGradient(false)
            #expect(backward(dy).storage == trained.storage)
            #expect(module.parameters.allSatisfy { !$0.hasGradient })
        }
        // A frozen parameter is left alone by Adam.
        let frozen = Parameter(Tensor(shape: [2], storage: [1, 2])), free = Parameter(Tensor(shape: [2], storage: [1, 2]))
        frozen.requiresGradient = false
        frozen.setGradient(Tensor(shape: [2], storage: [1, 1]))
        free.setGradient(Tensor(shape: [2], storage: [1, 1]))
        let adam = Adam(parameters: [frozen, free], configuration: .init(learningRate: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, decoupledWeightDecay: true))
        adam.step()
        #expect(frozen.value.storage == [1, 2])
        #expect(free.value.storage != [1, 2])
    }

    @Test("Conv2d without bias; PyTorch's initialisation bound")
    func conv2dInit() {
        var rng = RNG(seed: 9)
        let layer = Conv2d(inChannels: 4, outChannels: 8, kernelSize: 3, padding: 1, bias: false, rng: &rng)
        #expect(layer.bias == nil && layer.namedParameters.map(\.name) == ["weight"])
        #expect(layer.weight.value.maxAbsolute() <= 1 / Float(36).squareRoot())
        let y = layer.forward(Tensor(repeating: 0, shape: [1, 4, 5, 5]))
        #expect(y.maxAbsolute() == 0)
        // Without a bias the products overwrite the output (β = 0), in bands too: same values as a zero bias.
        for size in [5, 36] {
            let x = Tensor.random([2, 4, size, size], rng: &rng)
            let zeroBias = Conv2d(weight: layer.weight.value, bias: Tensor.zeros([8]), padding: 1)
            #expect(layer.forward(x) == zeroBias.forward(x) && layer.forward(x).isFinite)
        }
    }

    @Test("GroupNorm fused with SiLU equals the two layers", arguments: [[2, 8, 5, 5], [2, 32, 32, 32]])
    func groupNormSiLU(shape: [Int]) {
        var rng = RNG(seed: 14)
        let layer = GroupNorm(groups: 4, channels: shape[1])
        layer.weight!.load(Tensor.random([shape[1]], rng: &rng))
        layer.bias!.load(Tensor.random([shape[1]], rng: &rng))
        let x = Tensor.random(shape, rng: &rng, std: 2)
        #expect(layer.forwardSiLU(x) == SiLU().forward(layer.forward(x)))
    }

    @Test("GroupNorm: affine, not affine, and the parallel path",
          arguments: [([2, 8, 5, 5], 4, true), ([2, 6, 7], 3, false), ([2, 32, 32, 32], 8, true)])
    func groupNorm(shape: [Int], groups: Int, affine: Bool) {
        let (n, c) = (shape[0], shape[1]), s = shape.dropFirst(2).reduce(1, *)
        let x = randomValues(n * c * s, seed: 10, scale: 3).map { $0 + 1.5 }
        let gamma = randomValues(c, seed: 11).map { 1 + 0.3 * $0 }, beta = randomValues(c, seed: 12)
        let dy = randomValues(x.count, seed: 13)
        let layer = GroupNorm(groups: groups, channels: c, eps: 1e-6, affine: affine)
        if affine {
            layer.weight!.load(tensor(gamma, [c]))
            layer.bias!.load(tensor(beta, [c]))
        }
        let y = layer.forward(tensor(x, shape))
        expectClose(y, NNReference.groupNorm(x, batch: n, channels: c, spatial: s, groups: groups, eps: 1e-6,
                                             gamma: affine ? gamma : nil, beta: affine ? beta : nil), tolerance: tolerance, "y")
        let dx = layer.backward(input: tensor(x, shape), outputGradient: tensor(dy, shape))
        let ref = NNReference.groupNormBackward(x, outputGradient: dy, batch: n, channels: c, spatial: s, groups: groups, eps: 1e-6,
                                                gamma: affine ? gamma : nil)
        expectClose(dx, ref.input, tolerance: 1e-4, "dx")
        if affine {
            expectClose(layer.weight!.gradient, ref.gamma, tolerance: tolerance, "dγ")
            expectClose(layer.bias!.gradient, ref.beta, tolerance: tolerance, "dβ")
        }
        #expect(layer.namedParameters.map(\.name) == (affine ? ["weight", "bias"] : []))
    }

    @Test("LayerNorm, and the parallel path", arguments: [[2, 9, 40], [64, 1030]])
    func layerNorm(shape: [Int]) {
        let d = shape.last!, rows = shape.reduce(1, *) / d
        let x = randomValues(rows * d, seed: 14, scale: 2).map { $0 - 0.7 }
        let gamma = randomValues(d, seed: 15).map { 1 + 0.3 * $0 }, beta = randomValues(d, seed: 16)
        let dy = randomValues(x.count, seed: 17)
        let layer = LayerNorm(features: d)
        layer.weight!.load(tensor(gamma, [d]))
        layer.bias!.load(tensor(beta, [d]))
        expectClose(layer.forward(tensor(x, shape)), NNReference.layerNorm(x, rows: rows, features: d, eps: 1e-5, gamma: gamma, beta: beta),
                    tolerance: tolerance, "y")
        let dx = layer.backward(input: tensor(x, shape), outputGradient: tensor(dy, shape))
        let ref = NNReference.layerNormBackward(x, outputGradient: dy, rows: rows, features: d, eps: 1e-5, gamma: gamma)
        expectClose(dx, ref.input, tolerance: 1e-4, "dx")
        expectClose(layer.weight!.gradient, ref.gamma, tolerance: tolerance, "dγ")
        expectClose(layer.bias!.gradient, ref.beta, tolerance: tolerance, "dβ")
    }

    @Test("SiLU, GELU (erf, tanh), quick GELU; small and parallel", arguments: [1000, VectorMath.parallelThreshold + 3])
    func activations(count: Int) {
        var x = randomValues(count, seed: 18, scale: 3)
        x[0] = -30; x[1] = 30; x[2] = 0; x[3] = -9
        let dy = randomValues(count, seed: 19)
        let input = tensor(x, [count]), upstream = tensor(dy, [count])
        func check(_ name: String, _ forward: Tensor, _ backward: Tensor, _ f: (Double) -> Double, _ df: (Double) -> Double) {
            expectClose(forward, x.map(f), tolerance: 1e-6, "\(name) y")
            expectClose(backward, zip(x, dy).map { df($0) * $1 }, tolerance: 1e-6, "\(name) dx")
        }
        check("silu", SiLU().forward(input), SiLU().backward(input: input, outputGradient: upstream),
              { NNReference.silu($0) }, { NNReference.siluDerivative($0) })
        check("gelu", GELU().forward(input), GELU().backward(input: input, outputGradient: upstream),
              { NNReference.gelu($0) }, { NNReference.geluDerivative($0) })
        let tanhForm = GELU(approximation: .tanh)
        check("gelu tanh", tanhForm.forward(input), tanhForm.backward(input: input, outputGradient: upstream),
              { NNReference.gelu($0, approximation: .tanh) }, { NNReference.geluDerivative($0, approximation: .tanh) })
        check("quick gelu", QuickGELU().forward(input), QuickGELU().backward(input: input, outputGradient: upstream),
              { NNReference.quickGELU($0) }, { NNReference.quickGELUDerivative($0) })
    }

    @Test("Softmax: huge logits stay finite and exact; causal masking")
    func softmax() {
        let big: [Double] = [1e4, -1e4, 3e4, 0, 0, 3e4, 88.5, -88.5, 1000, 999]
        let x = big + randomValues(30, seed: 20, scale: 1000)
        let y = Softmax().forward(tensor(x, [4, 10]))
        #expect(y.isFinite)
        expectClose(y, NNReference.softmax(x, rows: 4, columns: 10), tolerance: 1e-6, "y")
        #expect(abs(y[0, 2] - 0.5) < 1e-6 && abs(y[0, 5] - 0.5) < 1e-6 && y[0, 0] == 0)
        let dy = randomValues(40, seed: 21)
        expectClose(Softmax().backward(output: y, outputGradient: tensor(dy, [4, 10])),
                    NNReference.softmaxBackward(output: doubles(y), outputGradient: dy, rows: 4, columns: 10), tolerance: 1e-6, "dx")
        let scores = randomValues(2 * 5 * 5, seed: 22, scale: 4)
        let causal = Softmax(causal: true).forward(tensor(scores, [2, 5, 5]))
        expectClose(causal, NNReference.softmax(scores, rows: 10, columns: 5, causal: true), tolerance: 1e-6, "causal y")
        #expect(causal[1, 0, 0] == 1 && causal[0, 2, 3] == 0 && causal[1, 3, 4] == 0)
        let wide = randomValues(300 * 300, seed: 23, scale: 50)
        expectClose(Softmax().forward(tensor(wide, [300, 300])), NNReference.softmax(wide, rows: 300, columns: 300), tolerance: 1e-6, "parallel rows")
    }

    @Test("GEGLU (diffusers' feed-forward input)")
    func geglu() {
        let (m, i, o) = (10, 16, 12)
        let x = randomValues(m * i, seed: 24), w = randomValues(2 * o * i, seed: 25, scale: 0.5), b = randomValues(2 * o, seed: 26)
        let dy = randomValues(m * o, seed: 27)
        let layer = GEGLU(proj: Linear(weight: tensor(w, [2 * o, i]), bias: tensor(b, [2 * o])))
        #expect(layer.namedParameters.map(\.name) == ["proj.weight", "proj.bias"])
        let (y, saved) = layer.forwardForTraining(tensor(x, [2, 5, i]))
        #expect(y.shape == [2, 5, o] && y == layer.forward(tensor(x, [2, 5, i])))
        expectClose(y, NNReference.geglu(x, weight: w, bias: b, rows: m, inFeatures: i, outFeatures: o), tolerance: tolerance, "y")
        let dx = layer.backward(saved, outputGradient: tensor(dy, [2, 5, o]))
        let ref = NNReference.gegluBackward(x, weight: w, bias: b, outputGradient: dy, rows: m, inFeatures: i, outFeatures: o)
        expectClose(dx, ref.input, tolerance: tolerance, "dx")
        expectClose(layer.proj.weight.gradient, ref.weight, tolerance: tolerance, "dW")
        expectClose(layer.proj.bias!.gradient, ref.bias, tolerance: tolerance, "db")
    }

    struct AttentionCase: Sendable, CustomTestStringConvertible {
        var shape: AttentionShape
        var cross: Bool
        var biases: Bool
        var naming: Attention.Naming
        var testDescription: String { "\(cross ? "cross" : "self") \(shape.causal ? "causal " : "")\(naming)" }
    }

    static let attentionCases: [AttentionCase] = [
        AttentionCase(shape: AttentionShape(batch: 2, queryLength: 6, keyLength: 6, queryDim: 16, contextDim: 16, heads: 2, headDim: 8, outDim: 16),
                      cross: false, biases: false, naming: .diffusers),
        AttentionCase(shape: AttentionShape(batch: 2, queryLength: 6, keyLength: 5, queryDim: 16, contextDim: 12, heads: 2, headDim: 8, outDim: 16),
                      cross: true, biases: false, naming: .diffusers),
        AttentionCase(shape: AttentionShape(batch: 2, queryLength: 7, keyLength: 7, queryDim: 16, contextDim: 16, heads: 4, headDim: 4, outDim: 16,
                                            causal: true), cross: false, biases: true, naming: .clip),
        AttentionCase(shape: AttentionShape(batch: 1, queryLength: 70, keyLength: 77, queryDim: 8, contextDim: 12, heads: 1, headDim: 8, outDim: 8),
                      cross: true, biases: true, naming: .diffusers),
        // Three query blocks per head sharing one packing of the head's keys (AVX-512 CPUs).
        AttentionCase(shape: AttentionShape(batch: 2, queryLength: 150, keyLength: 150, queryDim: 32, contextDim: 32, heads: 2, headDim: 16, outDim: 32),
                      cross: false, biases: true, naming: .diffusers),
    ]

    @Test("Attention: self, cross, causal; parameter names", arguments: attentionCases)
    func attention(_ c: AttentionCase) {
        let s = c.shape
        var rng = RNG(seed: 28)
        let layer = Attention(queryDim: s.queryDim, contextDim: c.cross ? s.contextDim : nil, heads: s.heads, headDim: s.headDim,
                              qkvBias: c.biases, causal: s.causal, naming: c.naming, rng: &rng)
        let names = layer.namedParameters.map(\.name)
        let prefixes = c.naming == .diffusers ? ["to_q", "to_k", "to_v", "to_out.0"] : ["q_proj", "k_proj", "v_proj", "out_proj"]
        #expect(names == prefixes.flatMap { p in c.biases || p == prefixes[3] ? ["\(p).weight", "\(p).bias"] : ["\(p).weight"] })
        let w = AttentionWeights<Double>(query: doubles(layer.toQ.weight.value), key: doubles(layer.toK.weight.value),
                                         value: doubles(layer.toV.weight.value), out: doubles(layer.toOut.weight.value),
                                         queryBias: layer.toQ.bias.map { doubles($0.value) }, keyBias: layer.toK.bias.map { doubles($0.value) },
                                         valueBias: layer.toV.bias.map { doubles($0.value) }, outBias: doubles(layer.toOut.bias!.value))
        let x = randomValues(s.batch * s.queryLength * s.queryDim, seed: 29)
        let context = c.cross ? randomValues(s.batch * s.keyLength * s.contextDim, seed: 30) : nil
        let xt = tensor(x, [s.batch, s.queryLength, s.queryDim])
        let ct = context.map { tensor($0, [s.batch, s.keyLength, s.contextDim]) }
        let (y, saved) = layer.forwardForTraining(xt, context: ct)
        #expect(y == layer.forward(xt, context: ct))
        expectClose(y, NNReference.attention(x, context: context, weights: w, s), tolerance: tolerance, "y")
        let dy = randomValues(y.count, seed: 31)
        let grads = layer.backward(saved, outputGradient: tensor(dy, y.shape))
        let ref = NNReference.attentionBackward(x, context: context, weights: w, outputGradient: dy, s)
        expectClose(grads.input, ref.input, tolerance: tolerance, "dx")
        if c.cross { expectClose(grads.context!, ref.context!, tolerance: tolerance, "dcontext") } else { #expect(grads.context == nil) }
        expectClose(layer.toQ.weight.gradient, ref.weights.query, tolerance: tolerance, "dWq")
        expectClose(layer.toK.weight.gradient, ref.weights.key, tolerance: tolerance, "dWk")
        expectClose(layer.toV.weight.gradient, ref.weights.value, tolerance: tolerance, "dWv")
        expectClose(layer.toOut.weight.gradient, ref.weights.out, tolerance: tolerance, "dWo")
        expectClose(layer.toOut.bias!.gradient, ref.weights.outBias!, tolerance: tolerance, "dbo")
        if c.biases {
            expectClose(layer.toQ.bias!.gradient, ref.weights.queryBias!, tolerance: tolerance, "dbq")
            expectClose(layer.toV.bias!.gradient, ref.weights.valueBias!, tolerance: tolerance, "dbv")
            #expect(layer.toK.bias!.gradient.maxAbsolute() < 1e-5, "a key bias cannot change the softmax")
        }
        #expect(saved.probabilities.shape == [s.batch, s.heads, s.queryLength, s.keyLength])
    }

    @Test("Nearest upsampling ×2 and ×3")
    func upsample() {
        for factor in [2, 3] {
            let x = randomValues(2 * 3 * 3 * 4, seed: 32)
            let layer = UpsampleNearest2d(scale: factor)
            let y = layer.forward(tensor(x, [2, 3, 3, 4]))
            #expect(y.shape == [2, 3, 3 * factor, 4 * factor])
            expectClose(y, NNReference.upsampleNearest(x, planes: 6, height: 3, width: 4, factor: factor), tolerance: 0, "y")
            let dy = randomValues(y.count, seed: 33)
            expectClose(layer.backward(outputGradient: tensor(dy, y.shape)),
                        NNReference.upsampleNearestBackward(outputGradient: dy, planes: 6, height: 3, width: 4, factor: factor),
                        tolerance: 1e-6, "dx")
        }
    }

    @Test("Embedding: rows by index; repeated indices accumulate gradients")
    func embedding() {
        let table = randomValues(10 * 6, seed: 34)
        let layer = Embedding(weight: tensor(table, [10, 6]))
        let ids = [1, 3, 3, 9, 0, 1, 9, 2]
        let y = layer.forward(indices: ids, shape: [2, 4])
        #expect(y.shape == [2, 4, 6])
        for (i, id) in ids.enumerated() { #expect(Array(y.storage[(i * 6)..<(i * 6 + 6)]) == Array(layer.weight.value.storage[(id * 6)..<(id * 6 + 6)])) }
        let dy = randomValues(y.count, seed: 35)
        layer.backward(indices: ids, outputGradient: tensor(dy, y.shape))
        var expected = [Double](repeating: 0, count: 60)
        for (i, id) in ids.enumerated() { for d in 0..<6 { expected[id * 6 + d] += dy[i * 6 + d] } }
        expectClose(layer.weight.gradient, expected, tolerance: 1e-6, "d table")
        #expect(layer.namedParameters.map(\.name) == ["weight"])
    }

    @Test("Sinusoidal timestep embedding against the float64 formula",
          arguments: [(32, true, Float(0)), (32, false, Float(1)), (33, true, Float(1))])
    func timesteps(dim: Int, flip: Bool, shift: Float) {
        let steps: [Float] = [0, 1, 17.5, 500, 999]
        let emb = Timesteps(dim: dim, flipSinToCos: flip, downscaleFreqShift: shift).forward(steps)
        #expect(emb.shape == [5, dim])
        let half = dim / 2
        var expected = [Double](repeating: 0, count: 5 * dim)
        for (n, t) in steps.enumerated() {
            for i in 0..<half {
                let arg = Double(t) * Foundation.exp(-Foundation.log(10_000) * Double(i) / (Double(half) - Double(shift)))
                expected[n * dim + i] = flip ? Foundation.cos(arg) : Foundation.sin(arg)
                expected[n * dim + half + i] = flip ? Foundation.sin(arg) : Foundation.cos(arg)
            }
        }
        // float32 arguments reach ~10³ rad, where one float32 ulp of the argument is 6·10⁻⁵.
        expectClose(emb, expected, tolerance: 2e-4, "embedding")
        if dim % 2 == 1 { #expect((0..<5).allSatisfy { emb[$0, dim - 1] == 0 }) }
    }
}
