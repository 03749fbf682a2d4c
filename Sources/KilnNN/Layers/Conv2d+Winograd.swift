import CKilnKernels
import KilnCore

/// Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016) for the 3×3, stride-1, padding-1
/// convolutions that dominate Stable Diffusion's UNet and VAE: each 2×2 block of outputs
/// ("tile") comes from its 4×4 input patch with 16 multiplications per channel pair instead of
/// 36, so the products do 4/9 of the direct convolution's work:
///
///     Y = Aᵀ·[Σ_c (G·g_oc·Gᵀ) ⊙ (Bᵀ·d_c·B)]·A
///
/// with the 4×4 input patch d_c of channel c, the 3×3 kernel g_oc, and
/// Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1], G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1],
/// Aᵀ = [1 1 1 0; 0 1 −1 −1]. The sum over channels is 16 matrix products, one per position ξ of
/// the 4×4 transformed tile: M_ξ [O, T] = U_ξ [O, C]·V_ξ [C, T] over T tiles. The transforms are
/// exact in real arithmetic; in float32 they add a few ulps (F(2×2, 3×3) is the best-conditioned
/// of Winograd's tiles), which the reference tests bound.
///
/// Work is split into tasks of a band of tile rows (the batch's samples one after the other, so a
/// band of a small image spans samples), each with its own transformed input and product
/// buffers (a few tens of MB at most), run in parallel.
extension Conv2d {
    /// Whether `forward` takes the Winograd path for `g`: a 3×3 kernel, stride 1, padding 1, at
    /// least 64 channels in and out (with fewer, the transforms cost more than the products
    /// save), and at least 256 tiles per sample (32² outputs) so that the products stay wide:
    /// at 16² (64 tiles, products 64 or 128 wide) the direct convolution was faster (2560 → 1280
    /// channels, batch 2: 185 ms direct, 278 ms Winograd).
    static func usesWinograd(_ g: Conv2dGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.stride == 1 && g.padding == 1
            && g.inChannels >= 64 && g.outChannels >= 64 && ((g.outHeight + 1) / 2) * ((g.outWidth + 1) / 2) >= 256
    }

    /// y = conv(x) (+ bias) through F(2×2, 3×3), for `usesWinograd(g)`.
    func forwardWinograd(_ x: Tensor, _ g: Conv2dGeometry, into y: inout Tensor) {
        let filters = weight.value.withUnsafeBufferPointer { Conv2d.winogradFilters($0.baseAddress!, outChannels: outChannels, inChannels: inChannels) }
        let biasValues = bias?.value
        x.withUnsafeBufferPointer { px in
            filters.withUnsafeBufferPointer { pf in
                y.withUnsafeMutableBufferPointer { py in
                    if let biasValues {
                        biasValues.withUnsafeBufferPointer { Conv2d.winogradForward(px.baseAddress!, filters: pf.baseAddress!, bias: $0.baseAddress!, g, into: py.baseAddress!) }
                    } else {
                        Conv2d.winogradForward(px.baseAddress!, filters: pf.baseAddress!, bias: nil, g, into: py.baseAddress!)
                    }
                }
            }
        }
    }

    /// ∂L/∂x of a `usesWinograd` convolution: the convolution of ∂L/∂y with the kernel flipped
    /// and its channel axes swapped (again 3×3, stride 1, padding 1), through F(2×2, 3×3).
    func inputGradientWinograd(_ dy: Tensor, _ g: Conv2dGeometry) -> Tensor {
        let (o, c) = (outChannels, inChannels)
        let w = weight.value.storage
        var flipped = [Float](repeating: 0, count: w.count)
        for oc in 0..<o {
            for ic in 0..<c {
                for t in 0..<9 { flipped[((ic * o + oc) * 9) + 8 - t] = w[(oc * c + ic) * 9 + t] }
            }
        }
        let filters = flipped.withUnsafeBufferPointer { Conv2d.winogradFilters($0.baseAddress!, outChannels: c, inChannels: o) }
        let transposed = Conv2dGeometry(batch: g.batch, inChannels: o, height: g.outHeight, width: g.outWidth, outChannels: c,
                                        kernelHeight: 3, kernelWidth: 3, stride: 1, padding: 1)
        var dx = Tensor(uninitializedShape: [g.batch, c, g.height, g.width])
        dy.withUnsafeBufferPointer { pdy in
            filters.withUnsafeBufferPointer { pf in
                dx.withUnsafeMutableBufferPointer { Conv2d.winogradForward(pdy.baseAddress!, filters: pf.baseAddress!, bias: nil, transposed, into: $0.baseAddress!) }
            }
        }
        return dx
    }

    /// U_ξ[o, c] = (G·g_oc·Gᵀ)_ξ for a weight `[O, C, 3, 3]`: `[16, O, C]`.
    static func winogradFilters(_ w: UnsafePointer<Float>, outChannels o: Int, inChannels c: Int) -> [Float] {
        let pairs = o * c
        return [Float](unsafeUninitializedCapacity: 16 * pairs) { u, initialized in
            for pair in 0..<pairs {
                let g = w + 9 * pair
                // G·g (4×3): rows g0, (g0 + g1 + g2)/2, (g0 − g1 + g2)/2, g2 over the kernel's rows;
                // then (G·g)·Gᵀ (4×4) the same way over its columns.
                for i in 0..<4 {
                    @inline(__always) func row(_ j: Int) -> Float {
                        let (a, b, d) = (g[j], g[3 + j], g[6 + j])
                        switch i {
                        case 0: return a
                        case 1: return (a + b + d) / 2
                        case 2: return (a - b + d) / 2
                        default: return d
                        }
                    }
                    let (a, b, d) = (row(0), row(1), row(2))
                    u[(4 * i + 0) * pairs + pair] = a
                    u[(4 * i + 1) * pairs + pair] = (a + b + d) / 2
                    u[(4 * i + 2) * pairs + pair] = (a - b + d) / 2
                    u[(4 * i + 3) * pairs + pair] = d
                }
            }
            initialized = 16 * pairs
        }
    }

    /// y = conv(x) (+ bias) through F(2×2, 3×3); `filters` from `winogradFilters`. On CPUs with
    /// Kiln's AVX-512 kernel each U_ξ is packed once for all tasks.
    static func winogradForward(_ x: UnsafePointer<Float>, filters: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                _ g: Conv2dGeometry, into y: UnsafeMutablePointer<Float>) {
        let (c, o, h, w) = (g.inChannels, g.outChannels, g.height, g.width)
        let tileColumns = (w + 1) / 2, tileRows = (h + 1) / 2, totalRows = g.batch * tileRows
        // Tiles per task: transformed input and products of ~32 MB, between 256 and 2048 tiles,
        // and at least one task per thread.
        let target = max(256, min(2048, 524_288 / max(c, o)))
        let threads = BLAS.threadCount
        let rowsPerBand = max(1, min(target / tileColumns, (totalRows + threads - 1) / threads))
        let bands = (totalRows + rowsPerBand - 1) / rowsPerBand
        let prepacked = Matmul.ownKernelFits(m: o, n: 32, k: c)
        let packedSize = prepacked ? kiln_packed_a_size(Int32(o), Int32(c)) : 0
        var packed = [Float](unsafeUninitializedCapacity: 16 * packedSize) { $1 = $0.count }
        if prepacked {
            packed.withUnsafeMutableBufferPointer { pp in
                for xi in 0..<16 { kiln_pack_a_avx512(Int32(o), Int32(c), filters + xi * o * c, Int32(c), pp.baseAddress! + xi * packedSize) }
            }
        }
        packed.withUnsafeBufferPointer { pp in
            // An empty array's buffer may still have an address: only a packed one is used.
            nonisolated(unsafe) let (x, filters, bias, y, pp) = (x, filters, bias, y, prepacked ? pp.baseAddress : nil)
            parallelFor(bands, threads: threads) { range in
                let capacity = rowsPerBand * tileColumns
                var v = [Float](unsafeUninitializedCapacity: 16 * c * capacity) { $1 = $0.count }
                var m = [Float](unsafeUninitializedCapacity: 16 * o * capacity) { $1 = $0.count }
                var rowScratch = [Float](unsafeUninitializedCapacity: 16 * tileColumns) { $1 = $0.count }
                v.withUnsafeMutableBufferPointer { pv in
                    m.withUnsafeMutableBufferPointer { pm in
                        rowScratch.withUnsafeMutableBufferPointer { ps in
                            for band in range {
                                let r0 = band * rowsPerBand, rows = min(rowsPerBand, totalRows - r0), tiles = rows * tileColumns
                                for channel in 0..<c {
                                    for rr in 0..<rows {
                                        let (n, r) = (r0 + rr).quotientAndRemainder(dividingBy: tileRows)
                                        inputTransform(x + (n * c + channel) * h * w, height: h, width: w, tileRow: r, tileColumns: tileColumns,
                                                       scratch: ps.baseAddress!, into: pv.baseAddress! + channel * tiles + rr * tileColumns, stride: c * tiles)
                                    }
                                }
                                for xi in 0..<16 {
                                    let b = pv.baseAddress! + xi * c * tiles, product = pm.baseAddress! + xi * o * tiles
                                    if let pp {
                                        kiln_sgemm_avx512_packed_a(Int32(o), Int32(tiles), Int32(c), pp + xi * packedSize, b, Int32(tiles), product, Int32(tiles))
                                    } else {
                                        Matmul.sgemm(m: o, n: tiles, k: c, a: filters + xi * o * c, lda: c, b: b, ldb: tiles, c: product, ldc: tiles, threads: 1)
                                    }
                                }
                                for channel in 0..<o {
                                    for rr in 0..<rows {
                                        let (n, r) = (r0 + rr).quotientAndRemainder(dividingBy: tileRows)
                                        outputTransform(pm.baseAddress! + channel * tiles + rr * tileColumns, stride: o * tiles, tileRows: 1,
                                                        tileColumns: tileColumns, firstTileRow: r, bias: bias?[channel] ?? 0,
                                                        into: y + (n * o + channel) * h * w, height: h, width: w)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// V_ξ[t] = (Bᵀ·d_t·B)_ξ for the tiles t of one tile row of one channel plane: d_t is the 4×4
    /// patch at rows 2r − 1 … 2r + 2, columns 2t − 1 … 2t + 2 (zero outside the plane). Writes
    /// `out[ξ·stride + t]`; `scratch` holds 16·tileColumns floats. The interior tiles' loops have
    /// no branches (the edges are done apart), so they vectorise.
    @inline(__always)
    static func inputTransform(_ plane: UnsafePointer<Float>, height h: Int, width w: Int, tileRow r: Int, tileColumns tc: Int,
                               scratch e: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>, stride: Int) {
        // e[(4i + j)·tc + t]: patch row i after the row transform d·B, column j.
        @inline(__always) func at(_ row: UnsafePointer<Float>, _ column: Int) -> Float { column >= 0 && column < w ? row[column] : 0 }
        let interior = 1..<max(1, (w - 3) / 2 + 1)  // tiles t with 2t − 1 ≥ 0 and 2t + 2 ≤ w − 1
        for i in 0..<4 {
            let yy = 2 * r - 1 + i, ei = e + 4 * i * tc
            if yy < 0 || yy >= h {
                ei.update(repeating: 0, count: 4 * tc)
                continue
            }
            let row = plane + yy * w
            let (e0, e1, e2, e3) = (ei, ei + tc, ei + 2 * tc, ei + 3 * tc)
            for t in interior {
                let x0 = row[2 * t - 1], x1 = row[2 * t], x2 = row[2 * t + 1], x3 = row[2 * t + 2]
                e0[t] = x0 - x2
                e1[t] = x1 + x2
                e2[t] = x2 - x1
                e3[t] = x1 - x3
            }
            @inline(__always) func edge(_ t: Int) {
                let x0 = at(row, 2 * t - 1), x1 = at(row, 2 * t), x2 = at(row, 2 * t + 1), x3 = at(row, 2 * t + 2)
                e0[t] = x0 - x2
                e1[t] = x1 + x2
                e2[t] = x2 - x1
                e3[t] = x1 - x3
            }
            edge(0)
            for t in interior.upperBound..<tc { edge(t) }
        }
        // Column transform over the patch rows: Bᵀ·(d·B).
        for j in 0..<4 {
            let (a, b, c, d) = (e + j * tc, e + (4 + j) * tc, e + (8 + j) * tc, e + (12 + j) * tc)
            let o0 = out + j * stride, o1 = out + (4 + j) * stride, o2 = out + (8 + j) * stride, o3 = out + (12 + j) * stride
            for t in 0..<tc {
                o0[t] = a[t] - c[t]
                o1[t] = b[t] + c[t]
                o2[t] = c[t] - b[t]
                o3[t] = b[t] - d[t]
            }
        }
    }

    /// Y_t = Aᵀ·m_t·A (+ bias) for the tiles of one output channel: m_t[ξ] = `products[ξ·stride + t]`,
    /// tile t = r·tc + t' written to output rows 2r, 2r + 1 and columns 2t', 2t' + 1 (tile rows
    /// from `firstTileRow`), dropping what falls outside an odd-sized plane.
    @inline(__always)
    static func outputTransform(_ products: UnsafePointer<Float>, stride: Int, tileRows rows: Int, tileColumns tc: Int, firstTileRow: Int,
                                bias: Float, into plane: UnsafeMutablePointer<Float>, height h: Int, width w: Int) {
        let full = w / 2  // tiles whose two columns are both inside
        for r in 0..<rows {
            let yy = 2 * (firstTileRow + r)
            let top = plane + yy * w, bottom = top + w, hasBottom = yy + 1 < h
            let m = products + r * tc
            let (m0, m1, m2, m3) = (m, m + stride, m + 2 * stride, m + 3 * stride)
            let (m4, m5, m6, m7) = (m + 4 * stride, m + 5 * stride, m + 6 * stride, m + 7 * stride)
            let (m8, m9, m10, m11) = (m + 8 * stride, m + 9 * stride, m + 10 * stride, m + 11 * stride)
            let (m12, m13, m14, m15) = (m + 12 * stride, m + 13 * stride, m + 14 * stride, m + 15 * stride)
            @inline(__always) func tile(_ t: Int) -> (Float, Float, Float, Float) {
                // Aᵀ·m (rows): s0j = m0j + m1j + m2j, s1j = m1j − m2j − m3j; then ·A (columns).
                let s00 = m0[t] + m4[t] + m8[t], s01 = m1[t] + m5[t] + m9[t], s02 = m2[t] + m6[t] + m10[t], s03 = m3[t] + m7[t] + m11[t]
                let s10 = m4[t] - m8[t] - m12[t], s11 = m5[t] - m9[t] - m13[t], s12 = m6[t] - m10[t] - m14[t], s13 = m7[t] - m11[t] - m15[t]
                return (s00 + s01 + s02 + bias, s01 - s02 - s03 + bias, s10 + s11 + s12 + bias, s11 - s12 - s13 + bias)
            }
            if hasBottom {
                for t in 0..<full {
                    let (a, b, c, d) = tile(t)
                    top[2 * t] = a
                    top[2 * t + 1] = b
                    bottom[2 * t] = c
                    bottom[2 * t + 1] = d
                }
            } else {
                for t in 0..<full {
                    let (a, b, _, _) = tile(t)
                    top[2 * t] = a
                    top[2 * t + 1] = b
                }
            }
            if full < tc {  // an odd width: the last tile's left column only
                let (a, _, c, _) = tile(full)
                top[2 * full] = a
                if hasBottom { bottom[2 * full] = c }
            }
        }
    }
}
