import Dispatch
import KilnCore
import RealModule

/// What a forward splat render keeps for its backward pass.
public struct SplatFrame: Sendable {
    public var images: SplatImages<Float>
    public var camera: Camera
    public var settings: SplatRenderSettings
    /// `[N]` projection of every Gaussian (invisible ones have `visible == false`).
    public var projected: [ProjectedGaussian<Float>]
    /// `[N]` 3σ radius in pixels, 0 when culled.
    public var radii: [Int32] { projected.map { $0.visible ? Int32($0.radius) : 0 } }
    /// Tile lists: Gaussians of tile `t` are `tileEntries[tileStart[t] ..< tileStart[t + 1]]`, front to back.
    var tileStart: [Int32]
    var tileEntries: [Int32]
    /// The entries' projections gathered per tile (`TileList.fields` arrays of each tile's length,
    /// starting at `TileList.fields`·`tileStart[t]`), written once by the forward pass and read by
    /// the backward: 48 bytes an entry, kept as long as the frame.
    var tileData: [Float]
    /// Per pixel: transmittance after the last contributor, and how many list entries were read.
    var finalTransmittance: [Float]
    var processed: [Int32]
    var threads: Int

    public var tilesX: Int { (camera.width + SplatRasterizer.tileSize - 1) / SplatRasterizer.tileSize }
    public var tilesY: Int { (camera.height + SplatRasterizer.tileSize - 1) / SplatRasterizer.tileSize }
}

/// The fast CPU splat rasteriser: 16×16 tiles, per-tile depth-sorted lists, front-to-back
/// compositing with early termination, and the exact backward pass (3DGS's back-to-front
/// recurrence). Same rules as `SplatReference`, which the tests compare it with.
///
/// Parallel over tiles with dynamic scheduling; every write goes to a per-tile or per-(tile,
/// Gaussian) slot and gradients are summed per Gaussian in tile order, so results are
/// bit-identical for any thread count and schedule.
public enum SplatRasterizer {
    public static let tileSize = 16

    /// Renders colour, alpha and depth; keeps what the backward pass needs.
    public static func forward(_ p: SplatParameters<Float>, camera: Camera, settings: SplatRenderSettings = SplatRenderSettings(),
                               threads: Int = Parallel.defaultThreadCount) -> SplatFrame {
        let cam = SplatCamera<Float>(camera)
        let n = p.count
        let degree = settings.colorDegree(parameterDegree: p.shDegree)
        var projected = [ProjectedGaussian<Float>](repeating: ProjectedGaussian(), count: n)
        projected.withUnsafeMutableBufferPointer { out in
            let out = UnsafeMutableSendableBuffer(out)
            parallelFor(n, threads: threads) { range in
                var basis = [Float](repeating: 0, count: 16)
                for i in range { out[i] = SplatProjection.project(i, p, camera: cam, settings: settings, degree: degree, basis: &basis) }
            }
        }
        let w = camera.width, h = camera.height
        let tilesX = (w + tileSize - 1) / tileSize, tilesY = (h + tileSize - 1) / tileSize
        let (tileStart, tileEntries) = binAndSort(projected, width: w, height: h, tilesX: tilesX, tilesY: tilesY)
        let visibleProjection = projected

        var color = [Float](repeating: 0, count: 3 * w * h), alpha = [Float](repeating: 0, count: w * h)
        var depth = [Float](repeating: 0, count: w * h), finalT = [Float](repeating: 1, count: w * h)
        var processed = [Int32](repeating: 0, count: w * h)
        // Every value is written by the tile loops below.
        var tileData = [Float](unsafeUninitializedCapacity: TileList.fields * tileEntries.count) { _, count in count = TileList.fields * tileEntries.count }
        let bg = settings.background
        color.withUnsafeMutableBufferPointer { c in alpha.withUnsafeMutableBufferPointer { a in depth.withUnsafeMutableBufferPointer { d in
        finalT.withUnsafeMutableBufferPointer { t in processed.withUnsafeMutableBufferPointer { np in tileData.withUnsafeMutableBufferPointer { td in
            let c = UnsafeMutableSendableBuffer(c), a = UnsafeMutableSendableBuffer(a), d = UnsafeMutableSendableBuffer(d)
            let t = UnsafeMutableSendableBuffer(t), np = UnsafeMutableSendableBuffer(np), td = UnsafeMutableSendableBuffer(td)
            forEachTile(tilesX * tilesY, threads: threads) { tile in
                let start = Int(tileStart[tile])
                TileList.fill(td.buffer.baseAddress, start: start, end: Int(tileStart[tile + 1]), projected: visibleProjection, entries: tileEntries)
                let list = TileList(data: td.buffer.baseAddress, start: start, end: Int(tileStart[tile + 1]))
                let x0 = (tile % tilesX) * tileSize, y0 = (tile / tilesX) * tileSize
                let tw = min(tileSize, w - x0), th = min(tileSize, h - y0)
                // Each entry, front to back, visits the pixels of its bounding square inside the
                // tile; every pixel sees its entries in the same order as a per-pixel loop would.
                let px = UnsafeMutablePointer<FrontPixel>.allocate(capacity: tw * th)
                px.initialize(repeating: FrontPixel(), count: tw * th)
                defer { px.deallocate() }
                var active = tw * th
                for j in 0..<list.count where active > 0 {
                    guard let (xs, ys) = list.pixels(j, x0: x0, y0: y0, width: tw, height: th) else { continue }
                    let red = list.red[j], green = list.green[j], blue = list.blue[j], depth = list.depth[j]
                    for y in ys {
                        let py = Float(y) + 0.5
                        guard abs(list.meanY[j] - py) <= list.radius[j] else { continue }
                        for x in xs {
                            let q = (y - y0) * tw + (x - x0)
                            guard px[q].live, let alphaJ = list.alpha(j, px: Float(x) + 0.5, py: py)?.alpha else { continue }
                            let T = px[q].T
                            let next = T * (1 - alphaJ)
                            if next < Float(SplatRenderSettings.transmittanceMin) {
                                px[q].live = false
                                active -= 1
                                continue
                            }
                            let weight = alphaJ * T
                            px[q].r += red * weight; px[q].g += green * weight; px[q].b += blue * weight
                            px[q].z += depth * weight
                            px[q].T = next
                            px[q].count = Int32(j + 1)
                        }
                    }
                }
                for y in y0..<(y0 + th) {
                    for x in x0..<(x0 + tw) {
                        let q = (y - y0) * tw + (x - x0), o = y * w + x
                        let v = px[q], T = v.T
                        c[3 * o] = v.r + T * bg.x; c[3 * o + 1] = v.g + T * bg.y; c[3 * o + 2] = v.b + T * bg.z
                        a[o] = 1 - T; d[o] = v.z; t[o] = T; np[o] = v.count
                    }
                }
            }
        } } } } } }
        return SplatFrame(images: SplatImages(width: w, height: h, color: color, alpha: alpha, depth: depth), camera: camera,
                          settings: settings, projected: projected, tileStart: tileStart, tileEntries: tileEntries, tileData: tileData,
                          finalTransmittance: finalT, processed: processed, threads: threads)
    }

    /// Gradients of a loss with respect to the parameters and the background, given its
    /// gradients with respect to the frame's images.
    public static func backward(_ frame: SplatFrame, _ p: SplatParameters<Float>, gradients dImage: SplatImageGradients<Float>) -> SplatGradients<Float> {
        let w = frame.camera.width, h = frame.camera.height
        precondition(dImage.color.count == 3 * w * h, "colour gradient must be [H, W, 3]")
        let tilesX = frame.tilesX, tiles = frame.tilesX * frame.tilesY
        let entries = frame.tileEntries.count
        let bg = frame.settings.background
        let fields = 10
        // One gradient slot per (tile, Gaussian) entry: meanX, meanY, conicA, conicB, conicC, opacity, r, g, b, depth.
        var entryGrad = [Float](repeating: 0, count: fields * entries)
        // Background gradient per tile, summed in tile order afterwards.
        var tileBackground = [SIMD3<Float>](repeating: .zero, count: tiles)
        entryGrad.withUnsafeMutableBufferPointer { eg in tileBackground.withUnsafeMutableBufferPointer { tb in frame.tileData.withUnsafeBufferPointer { td in
            let eg = UnsafeMutableSendableBuffer(eg), tb = UnsafeMutableSendableBuffer(tb), td = UnsafeSendableBuffer(td)
            forEachTile(tiles, threads: frame.threads) { tile in
                let start = Int(frame.tileStart[tile])
                let list = TileList(data: td.buffer.baseAddress, start: start, end: Int(frame.tileStart[tile + 1]))
                let x0 = (tile % tilesX) * tileSize, y0 = (tile / tilesX) * tileSize
                let tw = min(tileSize, w - x0), th = min(tileSize, h - y0)
                var gBackground = SIMD3<Float>.zero
                // Per pixel: the loss's gradients, and the back-to-front recurrence's state (the
                // transmittance, the colour behind the current entry relative to the transmittance
                // after it, and the entry last composited).
                let px = UnsafeMutablePointer<BackPixel>.allocate(capacity: tw * th)
                px.initialize(repeating: BackPixel(), count: tw * th)
                defer { px.deallocate() }
                for y in y0..<(y0 + th) {
                    for x in x0..<(x0 + tw) {
                        let o = y * w + x, q = (y - y0) * tw + (x - x0)
                        let dR = dImage.color[3 * o], dG = dImage.color[3 * o + 1], dB = dImage.color[3 * o + 2]
                        let tFinal = frame.finalTransmittance[o]
                        px[q].dR = dR; px[q].dG = dG; px[q].dB = dB
                        px[q].dZ = dImage.depth?[o] ?? 0; px[q].dA = dImage.alpha?[o] ?? 0
                        px[q].tFinal = tFinal
                        px[q].T = tFinal
                        gBackground += SIMD3(dR, dG, dB) * tFinal
                        px[q].bgDot = bg.x * dR + bg.y * dG + bg.z * dB
                        px[q].processed = frame.processed[o]
                    }
                }
                // Entries back to front, each over its bounding square in the tile in raster order:
                // every pixel sees the entries in the per-pixel loop's order, and every entry sums
                // its pixels in raster order, so the sums are the same bits.
                var j = list.count - 1
                while j >= 0 {
                    defer { j -= 1 }
                    guard let (xs, ys) = list.pixels(j, x0: x0, y0: y0, width: tw, height: th) else { continue }
                    var g = (mx: Float(0), my: Float(0), ca: Float(0), cb: Float(0), cc: Float(0), op: Float(0), r: Float(0), gr: Float(0), b: Float(0), z: Float(0))
                    let opacity = list.opacity[j], red = list.red[j], green = list.green[j], blue = list.blue[j], depth = list.depth[j]
                    let conicA = list.conicA[j], conicB = list.conicB[j], conicC = list.conicC[j]
                    for y in ys {
                        let py = Float(y) + 0.5
                        guard abs(list.meanY[j] - py) <= list.radius[j] else { continue }
                        for x in xs {
                            let q = (y - y0) * tw + (x - x0)
                            guard j < Int(px[q].processed), let (alphaJ, gauss, dx, dy) = list.alpha(j, px: Float(x) + 0.5, py: py) else { continue }
                            var v = px[q]
                            v.T /= (1 - alphaJ)
                            let t = v.T
                            let weight = alphaJ * t
                            g.r += weight * v.dR; g.gr += weight * v.dG; g.b += weight * v.dB
                            g.z += weight * v.dZ
                            let la = v.lastAlpha
                            v.accR = la * v.lastR + (1 - la) * v.accR
                            v.accG = la * v.lastG + (1 - la) * v.accG
                            v.accB = la * v.lastB + (1 - la) * v.accB
                            v.accZ = la * v.lastZ + (1 - la) * v.accZ
                            v.lastR = red; v.lastG = green; v.lastB = blue; v.lastZ = depth
                            v.lastAlpha = alphaJ
                            var gAlpha = (red - v.accR) * v.dR + (green - v.accG) * v.dG + (blue - v.accB) * v.dB + (depth - v.accZ) * v.dZ
                            gAlpha *= t
                            gAlpha += (v.dA - v.bgDot) * v.tFinal / (1 - alphaJ)
                            px[q] = v
                            // α = min(0.99, o·G): no gradient where the clamp holds.
                            guard opacity * gauss < Float(SplatRenderSettings.alphaMax) else { continue }
                            let gPower = gAlpha * opacity * gauss
                            g.op += gAlpha * gauss
                            g.mx += gPower * (-conicA * dx - conicB * dy)
                            g.my += gPower * (-conicC * dy - conicB * dx)
                            g.ca += gPower * (-dx * dx / 2)
                            g.cb += gPower * (-dx * dy)
                            g.cc += gPower * (-dy * dy / 2)
                        }
                    }
                    let slot = fields * (start + j)
                    eg[slot] = g.mx; eg[slot + 1] = g.my; eg[slot + 2] = g.ca; eg[slot + 3] = g.cb; eg[slot + 4] = g.cc
                    eg[slot + 5] = g.op; eg[slot + 6] = g.r; eg[slot + 7] = g.gr; eg[slot + 8] = g.b; eg[slot + 9] = g.z
                }
                tb[tile] = gBackground
            }
        } } }

        // Sum entry gradients per Gaussian in tile order, then back through the projection.
        let n = p.count
        var entryOffsets = [Int32](repeating: 0, count: n + 1)
        for e in frame.tileEntries { entryOffsets[Int(e) + 1] += 1 }
        for i in 0..<n { entryOffsets[i + 1] += entryOffsets[i] }
        var byGaussian = [Int32](repeating: 0, count: entries)
        var fill = entryOffsets
        for (slot, e) in frame.tileEntries.enumerated() {  // slots ascend with tile order
            byGaussian[Int(fill[Int(e)])] = Int32(slot)
            fill[Int(e)] += 1
        }
        let cam = SplatCamera<Float>(frame.camera)
        let degree = frame.settings.colorDegree(parameterDegree: p.shDegree)
        let offsets = entryOffsets, slotsByGaussian = byGaussian, slotGrad = entryGrad
        var grad = SplatParameters<Float>(zerosLike: n, shDegree: p.shDegree)
        var meanPixels = [Float](repeating: 0, count: 2 * n)
        let chunks = Parallel.chunks(count: n, threads: frame.threads)
        var partial = [SplatParameters<Float>](repeating: SplatParameters(zerosLike: 0, shDegree: p.shDegree), count: chunks.count)
        partial.withUnsafeMutableBufferPointer { part in meanPixels.withUnsafeMutableBufferPointer { mp in
            let part = UnsafeMutableSendableBuffer(part), mp = UnsafeMutableSendableBuffer(mp)
            parallelForChunks(n, threads: frame.threads) { chunk, range in
                // Each chunk writes only its own Gaussians' slots in a full-size gradient.
                var local = SplatParameters<Float>(zerosLike: n, shDegree: p.shDegree)
                var basis = [Float](repeating: 0, count: 16)
                for i in range where frame.projected[i].visible {
                    var g = ProjectedGradient<Float>()
                    for k in Int(offsets[i])..<Int(offsets[i + 1]) {
                        let s = fields * Int(slotsByGaussian[k])
                        g.meanX += slotGrad[s]; g.meanY += slotGrad[s + 1]
                        g.conicA += slotGrad[s + 2]; g.conicB += slotGrad[s + 3]; g.conicC += slotGrad[s + 4]
                        g.opacity += slotGrad[s + 5]
                        g.red += slotGrad[s + 6]; g.green += slotGrad[s + 7]; g.blue += slotGrad[s + 8]; g.depth += slotGrad[s + 9]
                    }
                    mp[2 * i] = g.meanX; mp[2 * i + 1] = g.meanY
                    SplatProjection.backward(i, p, camera: cam, settings: frame.settings, degree: degree, g: g, grad: &local, basis: &basis)
                }
                part[chunk] = local
            }
        } }
        // Chunks own disjoint Gaussians: copy their slots into the result.
        let k = p.coefficientsPerChannel
        for (chunk, range) in chunks.enumerated() {
            let local = partial[chunk]
            for i in range {
                for a in 0..<3 { grad.means[3 * i + a] = local.means[3 * i + a]; grad.logScales[3 * i + a] = local.logScales[3 * i + a] }
                for a in 0..<4 { grad.rotations[4 * i + a] = local.rotations[4 * i + a] }
                grad.opacityLogits[i] = local.opacityLogits[i]
                for a in 0..<(3 * k) { grad.sh[3 * k * i + a] = local.sh[3 * k * i + a] }
            }
        }
        var background = SIMD3<Double>.zero
        for t in tileBackground { background += SIMD3<Double>(Double(t.x), Double(t.y), Double(t.z)) }
        return SplatGradients(parameters: grad, background: background, meanPixels: meanPixels)
    }

    // MARK: - Binning

    /// Pixel-centre range covered by a Gaussian's bounding square, clipped to the image.
    @inlinable
    static func pixelRange(center: Float, radius: Int, size: Int) -> ClosedRange<Int>? {
        let lo = max(0, Int((center - Float(radius) - 0.5).rounded(.up)))
        let hi = min(size - 1, Int((center + Float(radius) - 0.5).rounded(.down)))
        return lo <= hi ? lo...hi : nil
    }

    /// Per-tile lists of visible Gaussians sorted by (depth, index).
    static func binAndSort(_ projected: [ProjectedGaussian<Float>], width: Int, height: Int, tilesX: Int, tilesY: Int) -> ([Int32], [Int32]) {
        var counts = [Int32](repeating: 0, count: tilesX * tilesY + 1)
        var rects: [(Int, Int, Int, Int)?] = projected.map { g in
            guard g.visible, let xs = pixelRange(center: g.meanX, radius: g.radius, size: width),
                  let ys = pixelRange(center: g.meanY, radius: g.radius, size: height) else { return nil }
            return (xs.lowerBound / tileSize, xs.upperBound / tileSize, ys.lowerBound / tileSize, ys.upperBound / tileSize)
        }
        for r in rects { if let (x0, x1, y0, y1) = r { for ty in y0...y1 { for tx in x0...x1 { counts[ty * tilesX + tx + 1] += 1 } } } }
        for t in 0..<(tilesX * tilesY) { counts[t + 1] += counts[t] }
        var fill = counts
        var entries = [Int32](repeating: 0, count: Int(counts[tilesX * tilesY]))
        for (i, r) in rects.enumerated() {
            if let (x0, x1, y0, y1) = r { for ty in y0...y1 { for tx in x0...x1 {
                let t = ty * tilesX + tx
                entries[Int(fill[t])] = Int32(i)
                fill[t] += 1
            } } }
        }
        rects = []
        let starts = counts
        // Sorted by (depth, index) as one 64-bit key each: the depth's bits made monotonic (a
        // float's order as an unsigned integer: negative ones inverted, positive ones with the
        // sign bit set) above the index.
        let keys = projected.map { g -> UInt64 in
            let bits = g.depth.bitPattern
            return UInt64(bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000) << 32
        }
        entries.withUnsafeMutableBufferPointer { e in
            let e = UnsafeMutableSendableBuffer(e)
            forEachTile(tilesX * tilesY, threads: Parallel.defaultThreadCount) { t in
                let lo = Int(starts[t]), hi = Int(starts[t + 1])
                guard hi - lo > 1 else { return }
                var slice = (lo..<hi).map { keys[Int(e[$0])] | UInt64(UInt32(bitPattern: e[$0])) }
                slice.sort()
                for k in 0..<slice.count { e[lo + k] = Int32(bitPattern: UInt32(truncatingIfNeeded: slice[k])) }
            }
        }
        return (counts, entries)
    }

    /// Runs `body(tile)` for every tile: serially for one thread, else with dynamic scheduling.
    static func forEachTile(_ count: Int, threads: Int, _ body: @Sendable (Int) -> Void) {
        if threads <= 1 || count <= 1 {
            for t in 0..<count { body(t) }
        } else {
            DispatchQueue.concurrentPerform(iterations: count) { body($0) }
        }
    }
}

/// One pixel's state in the forward pass: transmittance, colour and depth so far, entries read,
/// and whether it is still open. A tile's pixels are one allocation of these (one pointer in the
/// pixel loops, where an array per field ran out of registers); both kinds are plain values.
struct FrontPixel {
    var T: Float = 1, r: Float = 0, g: Float = 0, b: Float = 0, z: Float = 0
    var count: Int32 = 0
    var live = true
}

/// One pixel's state in the backward pass: the loss's gradients there, the final transmittance,
/// entries read in the forward pass, and the back-to-front recurrence (the transmittance, the
/// colour behind the current entry relative to the transmittance after it, the entry last
/// composited).
struct BackPixel {
    var dR: Float = 0, dG: Float = 0, dB: Float = 0, dZ: Float = 0, dA: Float = 0, bgDot: Float = 0, tFinal: Float = 0, T: Float = 0
    var accR: Float = 0, accG: Float = 0, accB: Float = 0, accZ: Float = 0
    var lastAlpha: Float = 0, lastR: Float = 0, lastG: Float = 0, lastB: Float = 0, lastZ: Float = 0
    var processed: Int32 = 0
}

/// A tile's Gaussians gathered into contiguous arrays (front to back) for the pixel loops: a
/// view into the frame's `tileData` (no bounds checks in the loops, which measured about a third
/// of the pixel-loop time with Swift arrays).
struct TileList {
    static let fields = 12
    let count: Int
    let meanX, meanY, conicA, conicB, conicC, opacity, red, green, blue, depth, radius: UnsafePointer<Float>
    /// log(1/(255·opacity)) − 1e-3: below this power α < 1/255 surely, so exp can be skipped.
    let powerFloor: UnsafePointer<Float>

    /// The tile whose entries are `start..<end`, in `data` laid out as `tileData` (read only).
    init(data: UnsafePointer<Float>?, start: Int, end: Int) {
        count = end - start
        let base = Self.base(data, start: start), n = count
        (meanX, meanY, conicA, conicB, conicC, opacity) = (base, base + n, base + 2 * n, base + 3 * n, base + 4 * n, base + 5 * n)
        (red, green, blue, depth, radius, powerFloor) = (base + 6 * n, base + 7 * n, base + 8 * n, base + 9 * n, base + 10 * n, base + 11 * n)
    }

    /// Where the tile starting at entry `start` begins in `data` (a dangling, never read address
    /// for an empty frame).
    private static func base(_ data: UnsafePointer<Float>?, start: Int) -> UnsafePointer<Float> {
        (data ?? UnsafePointer(bitPattern: MemoryLayout<Float>.alignment)!) + fields * start
    }

    /// Gathers the projections of entries `start..<end` into `data` (the forward pass, once), in
    /// the field order `init` reads.
    static func fill(_ data: UnsafeMutablePointer<Float>?, start: Int, end: Int, projected: [ProjectedGaussian<Float>], entries: [Int32]) {
        let n = end - start
        guard n > 0, let data else { return }
        let f = data + fields * start
        for j in 0..<n {
            let g = projected[Int(entries[start + j])]
            f[j] = g.meanX; f[n + j] = g.meanY; f[2 * n + j] = g.conicA; f[3 * n + j] = g.conicB; f[4 * n + j] = g.conicC
            f[5 * n + j] = g.opacity; f[6 * n + j] = g.red; f[7 * n + j] = g.green; f[8 * n + j] = g.blue; f[9 * n + j] = g.depth
            f[10 * n + j] = Float(g.radius)
            f[11 * n + j] = g.opacity > 0 ? Float.log(Float(SplatRenderSettings.alphaMin) / g.opacity) - 1e-3 : 0
        }
    }

    /// The pixel columns and rows of the tile at (`x0`, `y0`), `width` × `height`, whose centres
    /// entry `j`'s bounding square may cover, widened against rounding by a hundredth of a pixel
    /// plus two units in the last place of |mean| + radius (so that a far, huge splat, whose
    /// mean − centre rounds by more than a hundredth, loses no pixel); the callers apply the exact
    /// tests, |mean − centre| ≤ radius, per row and in `alpha`. Nil when none.
    @inline(__always)
    func pixels(_ j: Int, x0: Int, y0: Int, width: Int, height: Int) -> (ClosedRange<Int>, ClosedRange<Int>)? {
        let r = radius[j] + 0.01 + 2 * (max(abs(meanX[j]), abs(meanY[j])) + radius[j]).ulp
        let xlo = max(x0, Int((meanX[j] - r - 0.5).rounded(.up))), xhi = min(x0 + width - 1, Int((meanX[j] + r - 0.5).rounded(.down)))
        let ylo = max(y0, Int((meanY[j] - r - 0.5).rounded(.up))), yhi = min(y0 + height - 1, Int((meanY[j] + r - 0.5).rounded(.down)))
        return xlo <= xhi && ylo <= yhi ? (xlo...xhi, ylo...yhi) : nil
    }

    /// α of entry `j` at a pixel centre and the Gaussian value e^power, or nil when the entry is
    /// skipped there (the reference's tests: outside the bounding square, power > 0, α < 1/255).
    @inline(__always)
    func alpha(_ j: Int, px: Float, py: Float) -> (alpha: Float, gauss: Float, dx: Float, dy: Float)? {
        let dx = meanX[j] - px, dy = meanY[j] - py
        guard abs(dx) <= radius[j] else { return nil }
        let p = -(conicA[j] * dx * dx + conicC[j] * dy * dy) / 2 - conicB[j] * dx * dy
        guard p <= 0, p >= powerFloor[j] else { return nil }
        let gauss = ScalarMath.exp(p)
        let a = min(Float(SplatRenderSettings.alphaMax), opacity[j] * gauss)
        return a >= Float(SplatRenderSettings.alphaMin) ? (a, gauss, dx, dy) : nil
    }
}

