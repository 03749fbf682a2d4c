/// Shape and hyper-parameters of a 2D convolution (PyTorch's `Conv2d` without groups or dilation).
public struct Conv2dGeometry: Sendable, Equatable {
    public var batch, inChannels, height, width: Int
    public var outChannels, kernelHeight, kernelWidth: Int
    public var stride, padding: Int

    public init(batch: Int, inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelHeight: Int, kernelWidth: Int, stride: Int = 1, padding: Int = 0) {
        precondition(kernelHeight > 0 && kernelWidth > 0 && stride > 0 && padding >= 0,
                     "Conv2d: kernel \(kernelHeight)×\(kernelWidth), stride \(stride), padding \(padding) are not valid")
        (self.batch, self.inChannels, self.height, self.width) = (batch, inChannels, height, width)
        (self.outChannels, self.kernelHeight, self.kernelWidth) = (outChannels, kernelHeight, kernelWidth)
        (self.stride, self.padding) = (stride, padding)
        precondition(height + 2 * padding >= kernelHeight && width + 2 * padding >= kernelWidth,
                     "Conv2d: input \(height)×\(width) with padding \(padding) is smaller than the \(kernelHeight)×\(kernelWidth) kernel")
    }

    /// ⌊(H + 2p − kh) / s⌋ + 1.
    public var outHeight: Int { (height + 2 * padding - kernelHeight) / stride + 1 }
    /// ⌊(W + 2p − kw) / s⌋ + 1.
    public var outWidth: Int { (width + 2 * padding - kernelWidth) / stride + 1 }
    /// Values per output pixel's receptive field: C·kh·kw (the GEMM's inner dimension).
    public var patchSize: Int { inChannels * kernelHeight * kernelWidth }
}

extension NNReference {
    /// `y[n, o, i, j] = b[o] + Σ_{c, u, v} W[o, c, u, v] · x[n, c, i·s − p + u, j·s − p + v]`, zero
    /// outside the image: x `[N, C, H, W]`, weight `[O, C, kh, kw]`, bias `[O]` → `[N, O, Ho, Wo]`.
    public static func conv2d<R: BinaryFloatingPoint>(_ x: [R], weight: [R], bias: [R]?, _ g: Conv2dGeometry) -> [R] {
        let (ho, wo) = (g.outHeight, g.outWidth)
        var y = [R](repeating: 0, count: g.batch * g.outChannels * ho * wo)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for i in 0..<ho {
                    for j in 0..<wo {
                        var s = bias?[o] ?? 0
                        for c in 0..<g.inChannels {
                            for u in 0..<g.kernelHeight {
                                let yy = i * g.stride - g.padding + u
                                guard yy >= 0 && yy < g.height else { continue }
                                for v in 0..<g.kernelWidth {
                                    let xx = j * g.stride - g.padding + v
                                    guard xx >= 0 && xx < g.width else { continue }
                                    s += weight[((o * g.inChannels + c) * g.kernelHeight + u) * g.kernelWidth + v]
                                        * x[((n * g.inChannels + c) * g.height + yy) * g.width + xx]
                                }
                            }
                        }
                        y[((n * g.outChannels + o) * ho + i) * wo + j] = s
                    }
                }
            }
        }
        return y
    }

    /// Gradients of `conv2d` given ∂L/∂y `[N, O, Ho, Wo]`.
    public static func conv2dBackward<R: BinaryFloatingPoint>(_ x: [R], weight: [R], outputGradient dy: [R], _ g: Conv2dGeometry)
        -> (input: [R], weight: [R], bias: [R]) {
        let (ho, wo) = (g.outHeight, g.outWidth)
        var dx = [R](repeating: 0, count: x.count)
        var dw = [R](repeating: 0, count: weight.count)
        var db = [R](repeating: 0, count: g.outChannels)
        for n in 0..<g.batch {
            for o in 0..<g.outChannels {
                for i in 0..<ho {
                    for j in 0..<wo {
                        let gy = dy[((n * g.outChannels + o) * ho + i) * wo + j]
                        db[o] += gy
                        for c in 0..<g.inChannels {
                            for u in 0..<g.kernelHeight {
                                let yy = i * g.stride - g.padding + u
                                guard yy >= 0 && yy < g.height else { continue }
                                for v in 0..<g.kernelWidth {
                                    let xx = j * g.stride - g.padding + v
                                    guard xx >= 0 && xx < g.width else { continue }
                                    let wi = ((o * g.inChannels + c) * g.kernelHeight + u) * g.kernelWidth + v
                                    let xi = ((n * g.inChannels + c) * g.height + yy) * g.width + xx
                                    dw[wi] += gy * x[xi]
                                    dx[xi] += gy * weight[wi]
                                }
                            }
                        }
                    }
                }
            }
        }
        return (dx, dw, db)
    }
}
