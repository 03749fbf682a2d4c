import CKilnKernels
import KilnCore

/// A 2D convolution, `torch.nn.Conv2d` without groups or dilation: NCHW input, square or
/// rectangular kernel, one stride and one zero padding for both axes.
///
/// Parameters: `weight` `[O, C, kh, kw]`, `bias` `[O]` (optional). Input `[N, C, H, W]` → output
/// `[N, O, Ho, Wo]` with Ho = ⌊(H + 2p − kh)/s⌋ + 1.
///
/// Paths, chosen by shape (every one checked against `NNReference.conv2d` on random inputs):
/// - Wide 3×3, stride-1, padding-1 convolutions on images of ≥ 32² outputs (Stable Diffusion's
///   UNet and VAE): Winograd F(2×2, 3×3), forward and input gradient (`Conv2d+Winograd.swift`).
/// - On CPUs with Kiln's AVX-512 kernel (outputs wide enough for its tiles), every other size:
///   one implicit GEMM over the batch's (sample, pixel) columns, the patches read from the image
///   while packing (`convolveImplicit`); stride-1 same-padded convolutions on images of a
///   multiple of 16 pixels skip the packing (`kiln_conv_direct_avx512`) and get their weight
///   gradient the same way (`accumulateParameterGradientsDirect`); the input gradient of
///   stride-1 convolutions is the convolution of ∂L/∂y with the flipped kernel on that path.
/// - Otherwise, large images (≥ 1024 output pixels): bands of output rows in parallel, im2col +
///   `sgemm` per band.
/// - Otherwise, small images: im2col + `sgemm`, `g` samples to a product so the GEMM stays wide
///   (an 8×8 feature map alone gives only 64 columns); a 1×1 stride-1 convolution of one sample
///   skips the unfolding and multiplies the input in place.
/// Backward recomputes the unfolding instead of keeping it (it is kh·kw times the size of the
/// input) and folds the patch gradients back (col2im), in bands for large images; a frozen
/// weight's gradient is skipped (`Parameter.requiresGradient`).
public final class Conv2d: Module {
    public let inChannels: Int
    public let outChannels: Int
    public let kernelHeight: Int
    public let kernelWidth: Int
    public let stride: Int
    public let padding: Int
    /// `[O, C, kh, kw]`.
    public let weight: Parameter
    /// `[O]`, or nil without bias.
    public let bias: Parameter?

    /// Products are batched until they have at least this many columns (samples × output pixels).
    static let targetColumns = 2048

    /// PyTorch's default initialisation: weight and bias uniform in ±1/√(C·kh·kw).
    public init(inChannels: Int, outChannels: Int, kernelSize: Int, stride: Int = 1, padding: Int = 0,
                bias: Bool = true, rng: inout RNG) {
        precondition(inChannels > 0 && outChannels > 0 && kernelSize > 0 && stride > 0 && padding >= 0,
                     "Conv2d: channels \(inChannels) → \(outChannels), kernel \(kernelSize), stride \(stride), padding \(padding) are not valid")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernelHeight = kernelSize
        self.kernelWidth = kernelSize
        self.stride = stride
        self.padding = padding
        let bound = 1 / Float(inChannels * kernelSize * kernelSize).squareRoot()
        self.weight = Parameter(.uniform([outChannels, inChannels, kernelSize, kernelSize], in: -bound...bound, rng: &rng))
        self.bias = bias ? Parameter(.uniform([outChannels], in: -bound...bound, rng: &rng)) : nil
    }

    /// A convolution with the given weight `[O, C, kh, kw]` and bias `[O]`.
    public init(weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) {
        weight.checkRank(4, "[out, in, kh, kw]", "Conv2d weight")
        precondition(stride > 0 && padding >= 0, "Conv2d: stride \(stride) and padding \(padding) are not valid")
        self.outChannels = weight.shape[0]
        self.inChannels = weight.shape[1]
        self.kernelHeight = weight.shape[2]
        self.kernelWidth = weight.shape[3]
        self.stride = stride
        self.padding = padding
        bias?.checkShape([outChannels], "Conv2d bias")
        self.weight = Parameter(weight)
        self.bias = bias.map(Parameter.init)
    }

    public var namedParameters: [(name: String, parameter: Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// The geometry of a call on `x`, after checking that `x` is `[N, C, H, W]` with this layer's C.
    public func geometry(for x: Tensor, _ operation: String = "Conv2d.forward") -> Conv2dGeometry {
        x.checkRank(4, "[N, C, H, W]", operation)
        x.checkShape([nil, inChannels, nil, nil], operation)
        return Conv2dGeometry(batch: x.shape[0], inChannels: inChannels, height: x.shape[2], width: x.shape[3],
                              outChannels: outChannels, kernelHeight: kernelHeight, kernelWidth: kernelWidth,
                              stride: stride, padding: padding)
    }

    /// 1×1, stride 1, no padding: the input already is the unfolded matrix.
    var isPointwise: Bool { kernelHeight == 1 && kernelWidth == 1 && stride == 1 && padding == 0 }

    /// Samples per GEMM for images of `pixels` output pixels.
    static func samplesPerProduct(batch: Int, pixels: Int) -> Int {
        max(1, min(batch, targetColumns / max(1, pixels)))
    }

    // MARK: Forward

    /// `[N, C, H, W]` → `[N, O, Ho, Wo]`.
    public func forward(_ x: Tensor) -> Tensor {
        let g = geometry(for: x)
        let p = g.outHeight * g.outWidth
        var y = Tensor(uninitializedShape: [g.batch, outChannels, g.outHeight, g.outWidth])  // every value written below
        if y.count == 0 { return y }
        if Conv2d.usesWinograd(g) {
            forwardWinograd(x, g, into: &y)
        } else if Conv2d.implicitFits(rows: outChannels, columns: g.batch * p, depth: g.patchSize) {
            weight.value.withUnsafeBufferPointer { pw in
                Conv2d.convolveImplicit(x, weight: pw.baseAddress!, outChannels: outChannels, bias: bias?.value, g, into: &y)
            }
        } else if p >= Conv2d.bandedPixels {
            forwardBanded(x, g, into: &y)
        } else {
            forwardBatched(x, g, into: &y)
        }
        return y
    }

    /// Output images at least this large are convolved in bands of rows (`forwardBanded`).
    static let bandedPixels = 1024

    /// Columns of one band's unfolded patch matrix: at least 1024, so that packing the `[O, C·kh·kw]`
    /// weight for the product (done once per band) stays a small share of the band's work, and
    /// up to 2048 while the `[C·kh·kw, columns]` block stays near 1 MB. With wide layers the block
    /// no longer fits in L2, which costs less than repacking: at Stable Diffusion's widths (C·9 =
    /// 2880…11 520) bands of 128 columns repacked a 4–15 MB weight every 128 columns.
    static func bandColumns(patchSize k: Int) -> Int { max(1024, min(2048, 256 * 1024 / max(1, k))) }

    /// Large images: one task per (sample, band of output rows). Each task unfolds its band into
    /// a per-thread scratch block and multiplies it straight into y with single-threaded products;
    /// tasks run in parallel. Measured against unfolding a whole sample (9.4 MB of patches at 64
    /// channels, 64²) and splitting one large product across threads, batch 4, 2 threads: 6.5 →
    /// 5.9 ms, at OpenBLAS's AVX2 ceiling of about 200 GFLOP/s.
    func forwardBanded(_ x: Tensor, _ g: Conv2dGeometry, into y: inout Tensor) {
        let (o, k, wo, p) = (outChannels, g.patchSize, g.outWidth, g.outHeight * g.outWidth)
        let bandRows = max(1, min(g.outHeight, Conv2d.bandColumns(patchSize: k) / wo))
        let bandsPerSample = (g.outHeight + bandRows - 1) / bandRows
        let pointwise = isPointwise
        let biasValues = bias?.value ?? Tensor.zeros([0])
        x.withUnsafeBufferPointer { px in
            weight.value.withUnsafeBufferPointer { pw in
                biasValues.withUnsafeBufferPointer { pBias in
                    y.withUnsafeMutableBufferPointer { py in
                        nonisolated(unsafe) let (px, pw, py) = (px.baseAddress!, pw.baseAddress!, py.baseAddress!)
                        nonisolated(unsafe) let pb = bias == nil ? nil : pBias.baseAddress
                        parallelFor(g.batch * bandsPerSample, threads: BLAS.threadCount) { range in
                            var col = [Float](unsafeUninitializedCapacity: pointwise ? 0 : k * bandRows * wo) { $1 = $0.count }
                            col.withUnsafeMutableBufferPointer { pc in
                                for task in range {
                                    let (n, band) = task.quotientAndRemainder(dividingBy: bandsPerSample)
                                    let i0 = band * bandRows, rows = min(bandRows, g.outHeight - i0), columns = rows * wo
                                    let dst = py + n * o * p + i0 * wo
                                    let source: UnsafePointer<Float>, ldb: Int
                                    if pointwise {
                                        source = px + n * k * p + i0 * wo
                                        ldb = p
                                    } else {
                                        Conv2d.im2colBand(px, g, sample: n, firstRow: i0, rows: rows, into: pc.baseAddress!)
                                        source = UnsafePointer(pc.baseAddress!)
                                        ldb = columns
                                    }
                                    if let pb {
                                        Matmul.sgemmAddingRowBias(m: o, n: columns, k: k, a: pw, lda: k, b: source, ldb: ldb, bias: pb, c: dst, ldc: p)
                                    } else {
                                        Matmul.sgemm(m: o, n: columns, k: k, a: pw, lda: k, b: source, ldb: ldb, c: dst, ldc: p, threads: 1)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Whether `convolveImplicit` takes a convolution of `rows` outputs over `columns` (sample,
    /// pixel) pairs with patches of `depth` values: on CPUs with Kiln's AVX-512 kernel, outputs wide
    /// enough for its tiles, and at least as many columns as rows. With fewer columns the weight is
    /// the larger operand and each task would stream all of it (Stable Diffusion's 16² and 8²
    /// levels at batch 2: 1280–2560 channels over 128–512 columns ran 2–4× slower backward); the
    /// products of im2col + `sgemm` share it better there.
    static func implicitFits(rows: Int, columns: Int, depth: Int) -> Bool {
        Matmul.ownKernelFits(m: rows, n: 32, k: depth) && columns >= rows
    }

    /// On CPUs with Kiln's AVX-512 kernel, every size: an implicit GEMM over the batch's output
    /// columns (sample, pixel). The weight `[O, C·kh·kw]` is packed once, and each task's patches
    /// are read from the image straight into the kernel's packed panels, so no unfolded matrix is
    /// written and read back, and small images need no gathering of samples into one product or
    /// scattering of its result (at 16², batch 32, those copies and the unfolding cost as much as
    /// the products). Stride-1 convolutions with "same" padding on images of a multiple of 16
    /// pixels skip even the packing of the patches (`kiln_conv_direct_avx512`). Tasks are runs of whole 32-column panels, at least two per thread; every
    /// column's sum runs in the same order whatever the split, so results do not depend on the
    /// thread count.
    static func convolveImplicit(_ x: Tensor, weight: UnsafePointer<Float>, outChannels o: Int, bias: Tensor?, _ g: Conv2dGeometry,
                                 into y: inout Tensor) {
        let k = g.patchSize, columns = g.batch * g.outHeight * g.outWidth
        var packed = [Float](unsafeUninitializedCapacity: kiln_packed_a_size(Int32(o), Int32(k))) { $1 = $0.count }
        packed.withUnsafeMutableBufferPointer { kiln_pack_a_avx512(Int32(o), Int32(k), weight, Int32(k), $0.baseAddress!) }
        var geometry = kiln_conv_geometry(channels: Int32(g.inChannels), height: Int32(g.height), width: Int32(g.width),
                                          kernel_height: Int32(g.kernelHeight), kernel_width: Int32(g.kernelWidth),
                                          stride: Int32(g.stride), padding: Int32(g.padding),
                                          out_height: Int32(g.outHeight), out_width: Int32(g.outWidth))
        let threads = BLAS.threadCount
        let perTask = max(32, min(2048, (columns + 2 * threads - 1) / (2 * threads) + 31) / 32 * 32)
        let tasks = (columns + perTask - 1) / perTask
        let biasValues = bias ?? Tensor.zeros([0])
        x.withUnsafeBufferPointer { px in
            packed.withUnsafeBufferPointer { pw in
                biasValues.withUnsafeBufferPointer { pBias in
                    y.withUnsafeMutableBufferPointer { py in
                        withUnsafePointer(to: &geometry) { pg in
                            nonisolated(unsafe) let (px, pw, py, pg) = (px.baseAddress!, pw.baseAddress!, py.baseAddress!, pg)
                            nonisolated(unsafe) let pb = bias == nil ? nil : pBias.baseAddress
                            let direct = kiln_conv_direct_fits(pg) != 0
                            parallelFor(tasks, threads: threads) { range in
                                for task in range {
                                    let first = task * perTask, count = min(perTask, columns - first)
                                    if direct {
                                        kiln_conv_direct_avx512(Int32(o), Int32(k), pw, px, pg, Int32(first), Int32(count), py, pb)
                                    } else {
                                        kiln_conv_columns_avx512(Int32(o), Int32(k), pw, px, pg, Int32(first), Int32(count), py, pb)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Small images: samples are batched into products of at least `targetColumns` columns, which
    /// `Matmul` splits across threads.
    func forwardBatched(_ x: Tensor, _ g: Conv2dGeometry, into y: inout Tensor) {
        let (o, k, p) = (outChannels, g.patchSize, g.outHeight * g.outWidth)
        let group = Conv2d.samplesPerProduct(batch: g.batch, pixels: p)
        let pointwise = isPointwise
        x.withUnsafeBufferPointer { px in
            weight.value.withUnsafeBufferPointer { pw in
                y.withUnsafeMutableBufferPointer { py in
                    let biasValues = bias?.value.storage
                    var col = [Float](unsafeUninitializedCapacity: pointwise && group == 1 ? 0 : k * group * p) { $1 = $0.count }
                    var product = [Float](unsafeUninitializedCapacity: group == 1 ? 0 : o * group * p) { $1 = $0.count }
                    for n0 in Swift.stride(from: 0, to: g.batch, by: group) {
                        let samples = min(group, g.batch - n0)
                        let columns = samples * p
                        let dst = py.baseAddress! + n0 * o * p
                        col.withUnsafeMutableBufferPointer { pc in
                            product.withUnsafeMutableBufferPointer { pp in
                                let source = Conv2d.unfolded(px.baseAddress!, g, firstSample: n0, samples: samples, pointwise: pointwise, scratch: pc)
                                if samples == 1 {
                                    // Straight into y[n0] = W·col (+ bias rows, accumulated with β = 1).
                                    if let biasValues { for c in 0..<o { (dst + c * p).update(repeating: biasValues[c], count: p) } }
                                    Matmul.sgemm(m: o, n: columns, k: k, a: pw.baseAddress!, lda: k, b: source, ldb: columns,
                                                 beta: biasValues == nil ? 0 : 1, c: dst, ldc: columns)
                                } else {
                                    Matmul.sgemm(m: o, n: columns, k: k, a: pw.baseAddress!, lda: k, b: source, ldb: columns,
                                                 c: pp.baseAddress!, ldc: columns)
                                    Conv2d.scatterSamples(pp.baseAddress!, channels: o, samples: samples, pixels: p, bias: biasValues, into: dst)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    // MARK: Backward

    /// Given the forward's input and ∂L/∂y `[N, O, Ho, Wo]`, adds ∂L/∂W and ∂L/∂b into the
    /// parameters' gradients and returns ∂L/∂x `[N, C, H, W]`.
    public func backward(input x: Tensor, outputGradient dy: Tensor) -> Tensor {
        backward(x, dy, inputGradient: true)!
    }

    /// The parameter half of `backward`, for a layer whose input needs no gradient (`conv_in` on
    /// the noisy latents): skips the transposed product and col2im.
    public func accumulateParameterGradients(input x: Tensor, outputGradient dy: Tensor) {
        _ = backward(x, dy, inputGradient: false)
    }

    /// `parameterGradients: false` leaves the parameters' gradients to the caller.
    func backward(_ x: Tensor, _ dy: Tensor, inputGradient: Bool, parameterGradients: Bool = true) -> Tensor? {
        let g = geometry(for: x, "Conv2d.backward (input)")
        dy.checkShape([g.batch, outChannels, g.outHeight, g.outWidth], "Conv2d.backward (output gradient)")
        var weightGradient = parameterGradients && weight.requiresGradient
        var biasGradient = parameterGradients && (bias?.requiresGradient ?? false)
        if (weightGradient || biasGradient) && dy.count > 0 && outChannels <= 256 && Conv2d.directGeometry(g) != nil {
            accumulateParameterGradientsDirect(x, dy, g, weight: weightGradient, bias: biasGradient)
            (weightGradient, biasGradient) = (false, false)
            if !inputGradient { return nil }
            if !Conv2d.usesWinograd(g) && Conv2d.transposedGeometry(g) == nil { return backward(x, dy, inputGradient: true, parameterGradients: false) }
        }
        if Conv2d.usesWinograd(g) && dy.count > 0 {
            if weightGradient || biasGradient { backwardBanded(x, dy, g, weightGradient: weightGradient, biasGradient: biasGradient, inputGradient: nil) }
            return inputGradient ? inputGradientWinograd(dy, g) : nil
        }
        if inputGradient, dy.count > 0, let transposed = Conv2d.transposedGeometry(g) {
            if weightGradient || biasGradient { _ = backward(x, dy, inputGradient: false, parameterGradients: parameterGradients) }
            return inputGradientImplicit(dy, transposed)
        }
        if g.outHeight * g.outWidth >= Conv2d.bandedPixels {
            var dx = [Float](repeating: 0, count: inputGradient ? x.count : 0)  // col2im adds into dx
            if dy.count > 0 && x.count > 0 && (inputGradient || weightGradient || biasGradient) {
                dx.withUnsafeMutableBufferPointer { pdx in
                    backwardBanded(x, dy, g, weightGradient: weightGradient, biasGradient: biasGradient,
                                   inputGradient: inputGradient ? pdx.baseAddress! : nil)
                }
            }
            return inputGradient ? Tensor(shape: x.shape, storage: dx) : nil
        }
        if !weightGradient && !biasGradient && !inputGradient { return nil }
        let (o, k, p) = (outChannels, g.patchSize, g.outHeight * g.outWidth)
        // col2im adds into dx, so it starts at zero.
        var dxStorage = [Float](repeating: 0, count: inputGradient ? x.count : 0)
        if dy.count == 0 || x.count == 0 { return inputGradient ? Tensor(shape: x.shape, storage: dxStorage) : nil }
        let group = Conv2d.samplesPerProduct(batch: g.batch, pixels: p)
        let pointwise = isPointwise
        var col = [Float](unsafeUninitializedCapacity: !weightGradient || (pointwise && group == 1) ? 0 : k * group * p) { $1 = $0.count }
        var dyGroup = [Float](unsafeUninitializedCapacity: group == 1 ? 0 : o * group * p) { $1 = $0.count }
        var dcol = [Float](unsafeUninitializedCapacity: inputGradient && !(pointwise && group == 1) ? k * group * p : 0) { $1 = $0.count }
        x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pdy in
                weight.value.withUnsafeBufferPointer { pw in
                    // pgw: ∂L/∂W to add into, nil for a frozen weight.
                    func accumulate(into pgw: UnsafeMutablePointer<Float>?) {
                        for n0 in Swift.stride(from: 0, to: g.batch, by: group) {
                            let samples = min(group, g.batch - n0)
                            let columns = samples * p
                            col.withUnsafeMutableBufferPointer { pc in
                                dyGroup.withUnsafeMutableBufferPointer { pg in
                                    let upstream: UnsafePointer<Float>
                                    if samples == 1 {
                                        upstream = pdy.baseAddress! + n0 * o * p
                                    } else {
                                        Conv2d.gatherSamples(pdy.baseAddress! + n0 * o * p, channels: o, samples: samples, pixels: p, into: pg.baseAddress!)
                                        upstream = UnsafePointer(pg.baseAddress!)
                                    }
                                    if let pgw {
                                        // dW[O, K] += dy[O, cols]·colᵀ[cols, K]
                                        let source = Conv2d.unfolded(px.baseAddress!, g, firstSample: n0, samples: samples, pointwise: pointwise, scratch: pc)
                                        Matmul.sgemm(transposeB: true, m: o, n: k, k: columns, a: upstream, lda: columns,
                                                     b: source, ldb: columns, beta: 1, c: pgw, ldc: k)
                                    }
                                    if biasGradient {
                                        bias!.gradient.withUnsafeMutableBufferPointer { pgb in
                                            Matmul.accumulateRowSums(upstream, rows: o, columns: columns, into: pgb.baseAddress!)
                                        }
                                    }
                                    guard inputGradient else { return }
                                    dxStorage.withUnsafeMutableBufferPointer { pdx in
                                        if pointwise && samples == 1 {
                                            // dx[n0][C, P] = Wᵀ[C, O]·dy[O, P] (here C = K and P = H·W)
                                            Matmul.sgemm(transposeA: true, m: k, n: p, k: o, a: pw.baseAddress!, lda: k,
                                                         b: upstream, ldb: p, c: pdx.baseAddress! + n0 * k * p, ldc: p)
                                        } else {
                                            dcol.withUnsafeMutableBufferPointer { pd in
                                                Matmul.sgemm(transposeA: true, m: k, n: columns, k: o, a: pw.baseAddress!, lda: k,
                                                             b: upstream, ldb: columns, c: pd.baseAddress!, ldc: columns)
                                                Conv2d.col2im(pd.baseAddress!, g, firstSample: n0, samples: samples, into: pdx.baseAddress!)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    if weightGradient {
                        weight.gradient.withUnsafeMutableBufferPointer { accumulate(into: $0.baseAddress!) }
                    } else {
                        accumulate(into: nil)
                    }
                }
            }
        }
        return inputGradient ? Tensor(shape: x.shape, storage: dxStorage) : nil
    }

    /// The C geometry of `g` when Kiln's direct kernels take it (`kiln_conv_direct_fits`: stride
    /// 1, "same" padding, a multiple of 16 pixels, on a CPU with Kiln's AVX-512 kernel), else nil.
    static func directGeometry(_ g: Conv2dGeometry) -> kiln_conv_geometry? {
        guard Matmul.useOwnKernel else { return nil }
        var c = kiln_conv_geometry(channels: Int32(g.inChannels), height: Int32(g.height), width: Int32(g.width),
                                   kernel_height: Int32(g.kernelHeight), kernel_width: Int32(g.kernelWidth),
                                   stride: Int32(g.stride), padding: Int32(g.padding),
                                   out_height: Int32(g.outHeight), out_width: Int32(g.outWidth))
        return kiln_conv_direct_fits(&c) != 0 ? c : nil
    }

    /// ∂L/∂W and ∂L/∂b for a `directGeometry` convolution: ∂L/∂W through
    /// `kiln_conv_weight_gradient_direct_avx512` (the patches read straight from x, no unfolding),
    /// in chunks of columns whose ∂L/∂y stays near 512 KB (whole samples, or bands of pixels of
    /// large ones), each thread adding into its own partial sums, added in thread order at the end
    /// (deterministic for a fixed thread count, as the other paths). Only for at most 256 output
    /// channels: wider layers would get chunks too short for the sums of 16 lanes to pay off.
    func accumulateParameterGradientsDirect(_ x: Tensor, _ dy: Tensor, _ g: Conv2dGeometry, weight weightGradient: Bool, bias biasGradient: Bool) {
        let (o, k, p) = (outChannels, g.patchSize, g.outHeight * g.outWidth)
        if biasGradient {
            bias!.gradient.withUnsafeMutableBufferPointer { pgb in
                dy.withUnsafeBufferPointer { pdy in
                    for n in 0..<g.batch {
                        for c in 0..<o { pgb[c] += Float(VectorMath.sum(pdy.baseAddress! + (n * o + c) * p, p)) }
                    }
                }
            }
        }
        guard weightGradient, var geometry = Conv2d.directGeometry(g) else { return }
        let target = max(16, 131_072 / max(1, o) / 16 * 16)
        let (samplesPerTask, pixelsPerTask) = p <= target ? (max(1, target / p), p) : (1, target)
        let bandsPerSample = (p + pixelsPerTask - 1) / pixelsPerTask
        let tasks = p <= target ? (g.batch + samplesPerTask - 1) / samplesPerTask : g.batch * bandsPerSample
        let threads = max(1, min(BLAS.threadCount, tasks))
        var partials = [Float](repeating: 0, count: threads * o * k)
        x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pdy in
                partials.withUnsafeMutableBufferPointer { pp in
                    withUnsafePointer(to: &geometry) { pg in
                        nonisolated(unsafe) let (px, pdy, pp, pg) = (px.baseAddress!, pdy.baseAddress!, pp.baseAddress!, pg)
                        parallelForChunks(tasks, threads: threads) { chunk, range in
                            for task in range {
                                let (first, samples, firstPixel, pixels): (Int, Int, Int, Int)
                                if p <= target {
                                    (first, samples, firstPixel, pixels) = (task * samplesPerTask, min(samplesPerTask, g.batch - task * samplesPerTask), 0, p)
                                } else {
                                    let (n, band) = task.quotientAndRemainder(dividingBy: bandsPerSample)
                                    (first, samples, firstPixel, pixels) = (n, 1, band * pixelsPerTask, min(pixelsPerTask, p - band * pixelsPerTask))
                                }
                                kiln_conv_weight_gradient_direct_avx512(Int32(o), pg, px, pdy, Int32(first), Int32(samples), Int32(firstPixel),
                                                                         Int32(pixels), pp + chunk * o * k)
                            }
                        }
                    }
                }
            }
        }
        weight.gradient.withUnsafeMutableBufferPointer { pgw in
            partials.withUnsafeBufferPointer { pp in
                for t in 0..<threads { for i in 0..<(o * k) { pgw[i] += pp[t * o * k + i] } }
            }
        }
    }

    /// The geometry of ∂L/∂x as a convolution of ∂L/∂y, when `inputGradientImplicit` computes it:
    /// for a stride-1 convolution with a square kernel and padding p ≤ k − 1 on a CPU with Kiln's
    /// AVX-512 kernel, ∂L/∂x is the convolution of ∂L/∂y `[N, O, Ho, Wo]` with the kernel flipped
    /// and its channel axes swapped, padding k − 1 − p, which gives back H × W. Nil otherwise.
    static func transposedGeometry(_ g: Conv2dGeometry) -> Conv2dGeometry? {
        let k = g.kernelHeight
        guard g.stride == 1, g.kernelWidth == k, g.padding <= k - 1,
              implicitFits(rows: g.inChannels, columns: g.batch * g.height * g.width, depth: g.outChannels * k * k) else { return nil }
        let t = Conv2dGeometry(batch: g.batch, inChannels: g.outChannels, height: g.outHeight, width: g.outWidth,
                               outChannels: g.inChannels, kernelHeight: k, kernelWidth: k, stride: 1, padding: k - 1 - g.padding)
        return t.outHeight == g.height && t.outWidth == g.width ? t : nil
    }

    /// ∂L/∂x `[N, C, H, W]` as the convolution `transposed` of ∂L/∂y with the flipped kernel
    /// `[C, O, kh, kw]`, through `convolveImplicit`: no unfolded patch gradient is written and
    /// folded back (col2im).
    func inputGradientImplicit(_ dy: Tensor, _ transposed: Conv2dGeometry) -> Tensor {
        let (o, c, kh, kw) = (outChannels, inChannels, kernelHeight, kernelWidth)
        let w = weight.value.storage
        var flipped = [Float](unsafeUninitializedCapacity: w.count) { $1 = $0.count }
        for oc in 0..<o {
            for ic in 0..<c {
                for u in 0..<kh {
                    for v in 0..<kw { flipped[((ic * o + oc) * kh + kh - 1 - u) * kw + kw - 1 - v] = w[((oc * c + ic) * kh + u) * kw + v] }
                }
            }
        }
        var dx = Tensor(uninitializedShape: [transposed.batch, c, transposed.outHeight, transposed.outWidth])  // every value written
        flipped.withUnsafeBufferPointer { Conv2d.convolveImplicit(dy, weight: $0.baseAddress!, outChannels: c, bias: nil, transposed, into: &dx) }
        return dx
    }

    /// Large images: the adjoint of `forwardBanded`, one task per (sample, band of output rows)
    /// with per-thread scratch, so no unfolding of a whole image is ever held (at 512², 128
    /// channels, that would be 1.2 GB for the patches and as much for their gradient). Each
    /// thread adds ∂W and ∂b of its bands into its own partial sums, added in thread order at the
    /// end; ∂x bands are folded straight into dx, in phases of bands far enough apart that no two
    /// running at once touch the same input row.
    func backwardBanded(_ x: Tensor, _ dy: Tensor, _ g: Conv2dGeometry, weightGradient: Bool, biasGradient: Bool,
                        inputGradient dx: UnsafeMutablePointer<Float>?) {
        let (o, k, wo, p) = (outChannels, g.patchSize, g.outWidth, g.outHeight * g.outWidth)
        let bandRows = max(1, min(g.outHeight, Conv2d.bandColumns(patchSize: k) / wo))
        let bandsPerSample = (g.outHeight + bandRows - 1) / bandRows
        // Band b reads input rows b·R·s − p ... (b·R + R − 1)·s − p + kh − 1; band b + m starts
        // past them when m·R·s > (R − 1)·s + kh − 1.
        let phases = dx == nil ? 1 : ((bandRows - 1) * stride + kernelHeight - 1) / (bandRows * stride) + 1
        let pointwise = isPointwise
        let threads = max(1, min(BLAS.threadCount, g.batch * bandsPerSample))
        let partialSize = (weightGradient ? o * k : 0) + (biasGradient ? o : 0)
        var partials = [Float](repeating: 0, count: threads * partialSize)
        x.withUnsafeBufferPointer { px in
            dy.withUnsafeBufferPointer { pdy in
                weight.value.withUnsafeBufferPointer { pw in
                    partials.withUnsafeMutableBufferPointer { pp in
                        nonisolated(unsafe) let (px, pdy, pw, pp, dx) = (px.baseAddress!, pdy.baseAddress!, pw.baseAddress!, pp.baseAddress!, dx)
                        for phase in 0..<phases {
                            let bands = (bandsPerSample - phase + phases - 1) / phases
                            parallelForChunks(g.batch * bands, threads: threads) { chunk, range in
                                let colCount = weightGradient && !pointwise ? k * bandRows * wo : 0
                                let dcolCount = dx != nil && !pointwise ? k * bandRows * wo : 0
                                var scratch = [Float](unsafeUninitializedCapacity: colCount + dcolCount) { $1 = $0.count }
                                scratch.withUnsafeMutableBufferPointer { ps in
                                    let col = ps.baseAddress!, dcol = ps.baseAddress! + colCount
                                    let dW = pp + chunk * partialSize, db = dW + (weightGradient ? o * k : 0)
                                    for task in range {
                                        let (n, index) = task.quotientAndRemainder(dividingBy: bands)
                                        let i0 = (index * phases + phase) * bandRows
                                        let rows = min(bandRows, g.outHeight - i0), columns = rows * wo
                                        let upstream = pdy + n * o * p + i0 * wo  // [O, columns], rows p apart
                                        if weightGradient {
                                            let source: UnsafePointer<Float>, ldb: Int
                                            if pointwise {
                                                (source, ldb) = (px + n * k * p + i0 * wo, p)
                                            } else {
                                                Conv2d.im2colBand(px, g, sample: n, firstRow: i0, rows: rows, into: col)
                                                (source, ldb) = (UnsafePointer(col), columns)
                                            }
                                            // dW[O, K] += dy[O, cols]·colᵀ[cols, K]
                                            Matmul.sgemm(transposeB: true, m: o, n: k, k: columns, a: upstream, lda: p,
                                                         b: source, ldb: ldb, beta: 1, c: dW, ldc: k, threads: 1)
                                        }
                                        if biasGradient {
                                            for c in 0..<o { db[c] += Float(VectorMath.sum(upstream + c * p, columns)) }
                                        }
                                        guard let dx else { continue }
                                        if pointwise {
                                            // dx[n][C, band] += Wᵀ[C, O]·dy[O, band]
                                            Matmul.sgemm(transposeA: true, m: k, n: columns, k: o, a: pw, lda: k, b: upstream, ldb: p,
                                                         beta: 1, c: dx + n * k * p + i0 * wo, ldc: p, threads: 1)
                                        } else {
                                            Matmul.sgemm(transposeA: true, m: k, n: columns, k: o, a: pw, lda: k, b: upstream, ldb: p,
                                                         c: dcol, ldc: columns, threads: 1)
                                            Conv2d.col2imBand(dcol, g, sample: n, firstRow: i0, rows: rows, into: dx)
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        if weightGradient {
            weight.gradient.withUnsafeMutableBufferPointer { pgw in
                for t in 0..<threads { for i in 0..<(o * k) { pgw[i] += partials[t * partialSize + i] } }
            }
        }
        if biasGradient, let bias {
            let offset = weightGradient ? o * k : 0
            bias.gradient.withUnsafeMutableBufferPointer { pgb in
                for t in 0..<threads { for c in 0..<o { pgb[c] += partials[t * partialSize + offset + c] } }
            }
        }
    }

    /// The adjoint of `im2colBand`: adds a band's patch gradients `[C·kh·kw, rows·Wo]` back into
    /// sample `sample` of dx `[N, C, H, W]`, on the calling thread.
    static func col2imBand(_ dcol: UnsafePointer<Float>, _ g: Conv2dGeometry, sample: Int, firstRow: Int, rows: Int,
                           into dx: UnsafeMutablePointer<Float>) {
        let wo = g.outWidth, columns = rows * wo, taps = g.kernelHeight * g.kernelWidth
        for r in 0..<g.patchSize {
            let c = r / taps, u = r / g.kernelWidth % g.kernelHeight, v = r % g.kernelWidth
            let (jLow, jHigh) = g.validOutputColumns(tap: v)
            let plane = dx + (sample * g.inChannels + c) * g.height * g.width
            for i in 0..<rows {
                let yy = (firstRow + i) * g.stride - g.padding + u
                guard yy >= 0 && yy < g.height else { continue }
                addRow(dcol + r * columns + i * wo, into: plane + yy * g.width - g.padding + v, columns: (jLow, jHigh), stride: g.stride)
            }
        }
    }

    /// dst[j·stride] += src[j] for j in `columns`.
    @inline(__always)
    static func addRow(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, columns: (low: Int, high: Int), stride: Int) {
        let (jLow, jHigh) = columns
        if stride == 1 {
            var j = jLow
            while j + 16 <= jHigh {
                let a = UnsafeRawPointer(dst + j).loadUnaligned(as: SIMD16<Float>.self)
                let b = UnsafeRawPointer(src + j).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(dst + j).storeBytes(of: a + b, as: SIMD16<Float>.self)
                j += 16
            }
            while j < jHigh { dst[j] += src[j]; j += 1 }
        } else {
            for j in jLow..<jHigh { dst[j * stride] += src[j] }
        }
    }

    // MARK: Unfolding

    /// The `[C·kh·kw, samples·Ho·Wo]` matrix of samples `firstSample…`: the input itself for one
    /// sample of a pointwise convolution, else its unfolding into `scratch`.
    static func unfolded(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, firstSample: Int, samples: Int, pointwise: Bool,
                         scratch: UnsafeMutableBufferPointer<Float>) -> UnsafePointer<Float> {
        if pointwise && samples == 1 { return x + firstSample * g.patchSize * g.outHeight * g.outWidth }
        im2col(x, g, firstSample: firstSample, samples: samples, into: scratch.baseAddress!)
        return UnsafePointer(scratch.baseAddress!)
    }

    /// Unfolds samples `firstSample ..< firstSample + samples` of x `[N, C, H, W]` into
    /// `col` `[C·kh·kw, samples·Ho·Wo]`: col[(c, u, v), (s, i, j)] = x[s, c, i·st − p + u, j·st − p + v],
    /// zero outside the image. Rows in parallel (each row is written by one chunk).
    static func im2col(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, firstSample: Int, samples: Int, into col: UnsafeMutablePointer<Float>) {
        let p = g.outHeight * g.outWidth, columns = samples * p
        nonisolated(unsafe) let (x, col) = (x, col)
        VectorMath.forChunks(g.patchSize, threshold: g.patchSize * columns >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
            for s in 0..<samples {
                im2colBand(x, g, sample: firstSample + s, firstRow: 0, rows: g.outHeight, patchRows: range, into: col + s * p, rowStride: columns)
            }
        }
    }

    /// Unfolds output rows `firstRow ..< firstRow + rows` of one sample into `col`
    /// `[C·kh·kw, rows·Wo]` (the band's slice of `im2col`'s matrix), on the calling thread: the
    /// patch rows `patchRows` (all by default), each `rowStride` values after the previous one
    /// (`rows·Wo` by default; `im2col` interleaves samples with a wider stride).
    static func im2colBand(_ x: UnsafePointer<Float>, _ g: Conv2dGeometry, sample: Int, firstRow: Int, rows: Int,
                           patchRows: Range<Int>? = nil, into col: UnsafeMutablePointer<Float>, rowStride: Int? = nil) {
        let wo = g.outWidth, stride = rowStride ?? rows * wo
        for r in patchRows ?? 0..<g.patchSize {
            let c = r / (g.kernelHeight * g.kernelWidth)
            let u = r / g.kernelWidth % g.kernelHeight, v = r % g.kernelWidth
            let (jLow, jHigh) = g.validOutputColumns(tap: v)
            let plane = x + (sample * g.inChannels + c) * g.height * g.width
            for i in 0..<rows {
                unfoldRow(plane, g, outputRow: firstRow + i, tap: (u, v), columns: (jLow, jHigh), into: col + r * stride + i * wo)
            }
        }
    }

    /// One output row's worth of one unfolded row: dst[j] = plane[i·s − p + u, j·s − p + v] for
    /// j in 0..<Wo, zero outside the image (`columns` = `validOutputColumns(tap: v)`).
    @inline(__always)
    static func unfoldRow(_ plane: UnsafePointer<Float>, _ g: Conv2dGeometry, outputRow i: Int, tap: (u: Int, v: Int),
                          columns: (low: Int, high: Int), into dst: UnsafeMutablePointer<Float>) {
        let wo = g.outWidth, (jLow, jHigh) = columns
        let yy = i * g.stride - g.padding + tap.u
        guard yy >= 0 && yy < g.height else { dst.update(repeating: 0, count: wo); return }
        let src = plane + yy * g.width - g.padding + tap.v
        if jLow > 0 { dst.update(repeating: 0, count: jLow) }
        if g.stride == 1 {
            (dst + jLow).update(from: src + jLow, count: jHigh - jLow)
        } else {
            for j in jLow..<jHigh { dst[j] = src[j * g.stride] }
        }
        if jHigh < wo { (dst + jHigh).update(repeating: 0, count: wo - jHigh) }
    }

    /// The adjoint of `im2col`: adds col `[C·kh·kw, samples·Ho·Wo]` back into dx `[N, C, H, W]`.
    /// Input channels in parallel: channel c is fed only by rows c·kh·kw ..< (c + 1)·kh·kw.
    static func col2im(_ col: UnsafePointer<Float>, _ g: Conv2dGeometry, firstSample: Int, samples: Int, into dx: UnsafeMutablePointer<Float>) {
        let (ho, wo, p) = (g.outHeight, g.outWidth, g.outHeight * g.outWidth)
        let columns = samples * p
        let taps = g.kernelHeight * g.kernelWidth
        nonisolated(unsafe) let (col, dx) = (col, dx)
        VectorMath.forChunks(g.inChannels, threshold: g.patchSize * columns >= VectorMath.parallelThreshold ? 2 : Int.max) { range in
            for c in range {
                for t in 0..<taps {
                    let u = t / g.kernelWidth, v = t % g.kernelWidth
                    let r = c * taps + t
                    let (jLow, jHigh) = g.validOutputColumns(tap: v)
                    for s in 0..<samples {
                        let plane = dx + ((firstSample + s) * g.inChannels + c) * g.height * g.width
                        let rowBase = col + r * columns + s * p
                        for i in 0..<ho {
                            let yy = i * g.stride - g.padding + u
                            guard yy >= 0 && yy < g.height else { continue }
                            addRow(rowBase + i * wo, into: plane + yy * g.width - g.padding + v, columns: (jLow, jHigh), stride: g.stride)
                        }
                    }
                }
            }
        }
    }

    /// `[O, samples·P]` product → `[samples, O, P]` output rows, adding the bias.
    static func scatterSamples(_ product: UnsafePointer<Float>, channels: Int, samples: Int, pixels: Int, bias: [Float]?,
                               into y: UnsafeMutablePointer<Float>) {
        for s in 0..<samples {
            for c in 0..<channels {
                let src = product + c * samples * pixels + s * pixels
                let dst = y + (s * channels + c) * pixels
                VectorMath.affine(src, dst, pixels, scale: 1, shift: bias?[c] ?? 0)
            }
        }
    }

    /// `[samples, O, P]` gradient rows → `[O, samples·P]`.
    static func gatherSamples(_ dy: UnsafePointer<Float>, channels: Int, samples: Int, pixels: Int, into out: UnsafeMutablePointer<Float>) {
        for s in 0..<samples {
            for c in 0..<channels {
                (out + c * samples * pixels + s * pixels).update(from: dy + (s * channels + c) * pixels, count: pixels)
            }
        }
    }
}

extension Conv2dGeometry {
    /// The output columns `jLow ..< jHigh` whose input column j·s − p + v, for kernel column `v`,
    /// lies inside the image (the rest read zero padding).
    func validOutputColumns(tap v: Int) -> (Int, Int) {
        // j ≥ ⌈(p − v)/s⌉ and j ≤ ⌊(W − 1 + p − v)/s⌋, clipped to 0..<Wo.
        let low = (max(0, padding - v) + stride - 1) / stride
        let top = width - 1 + padding - v
        guard top >= 0 else { return (0, 0) }
        let high = min(outWidth, top / stride + 1)
        return (min(low, high), high)
    }
}
