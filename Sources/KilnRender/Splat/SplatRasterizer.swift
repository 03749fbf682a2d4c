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
                // tile, eight pixels (half a tile row) at a time; every pixel sees its entries in
                // the same order, and with the same operations, as a per-pixel loop would.
                let state = FrontState(width: tw)
                defer { state.deallocate() }
                var active = tw * th
                for j in 0..<list.count where active > 0 {
                    guard let (xs, ys) = list.pixels(j, x0: x0, y0: y0, width: tw, height: th) else { continue }
                    let entry = list.entry(j)
                    for half in 0..<2 {
                        guard let lanes = entry.lanes(xs, firstX: x0 + 8 * half) else { continue }
                        for y in ys {
                            let py = Float(y) + 0.5
                            guard abs(entry.meanY - py) <= entry.radius else { continue }
                            let row = 2 * (y - y0) + half
                            var m = lanes.inside & state.live[row]
                            guard Lanes8.any(m), let (alpha, _) = entry.alpha(lanes, py: py, mask: &m) else { continue }
                            let t = state.T[row]
                            let next = t * (1 - alpha)
                            let stop = m & Lanes8.less(next, SIMD8(repeating: Float(SplatRenderSettings.transmittanceMin)))
                            if Lanes8.any(stop) {
                                state.live[row] &= ~stop
                                active -= Lanes8.count(stop)
                            }
                            let c = m & ~stop
                            let weight = alpha * t
                            state.r[row] = Lanes8.select(c, state.r[row] + entry.red * weight, state.r[row])
                            state.g[row] = Lanes8.select(c, state.g[row] + entry.green * weight, state.g[row])
                            state.b[row] = Lanes8.select(c, state.b[row] + entry.blue * weight, state.b[row])
                            state.z[row] = Lanes8.select(c, state.z[row] + entry.depth * weight, state.z[row])
                            state.T[row] = Lanes8.select(c, next, t)
                            state.count[row] = Lanes8.select(c, SIMD8(repeating: Int32(j + 1)), state.count[row])
                        }
                    }
                }
                for y in y0..<(y0 + th) {
                    for x in x0..<(x0 + tw) {
                        let row = 2 * (y - y0) + (x - x0) / 8, lane = (x - x0) % 8, o = y * w + x
                        let T = state.T[row][lane]
                        c[3 * o] = state.r[row][lane] + T * bg.x; c[3 * o + 1] = state.g[row][lane] + T * bg.y
                        c[3 * o + 2] = state.b[row][lane] + T * bg.z
                        a[o] = 1 - T; d[o] = state.z[row][lane]; t[o] = T; np[o] = state.count[row][lane]
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
                // Per pixel, eight pixels a vector: the loss's gradients, and the back-to-front
                // recurrence's state (the transmittance, the colour behind the current entry
                // relative to the transmittance after it, and the entry last composited).
                let state = BackState()
                defer { state.deallocate() }
                for y in y0..<(y0 + th) {
                    for x in x0..<(x0 + tw) {
                        let o = y * w + x, row = 2 * (y - y0) + (x - x0) / 8, lane = (x - x0) % 8
                        let dR = dImage.color[3 * o], dG = dImage.color[3 * o + 1], dB = dImage.color[3 * o + 2]
                        let tFinal = frame.finalTransmittance[o]
                        state.dR[row][lane] = dR; state.dG[row][lane] = dG; state.dB[row][lane] = dB
                        state.dZ[row][lane] = dImage.depth?[o] ?? 0; state.dA[row][lane] = dImage.alpha?[o] ?? 0
                        state.tFinal[row][lane] = tFinal
                        state.T[row][lane] = tFinal
                        gBackground += SIMD3(dR, dG, dB) * tFinal
                        state.bgDot[row][lane] = bg.x * dR + bg.y * dG + bg.z * dB
                        state.processed[row][lane] = frame.processed[o]
                    }
                }
                // Entries back to front, each over its bounding square in the tile: every pixel
                // sees the entries in the per-pixel loop's order. An entry's sums over its pixels
                // are kept per lane and added up at the end (a fixed order: the same bits for any
                // thread count).
                var j = list.count - 1
                while j >= 0 {
                    defer { j -= 1 }
                    guard let (xs, ys) = list.pixels(j, x0: x0, y0: y0, width: tw, height: th) else { continue }
                    let entry = list.entry(j)
                    var gmx = SIMD8<Float>(), gmy = SIMD8<Float>(), gca = SIMD8<Float>(), gcb = SIMD8<Float>(), gcc = SIMD8<Float>()
                    var gop = SIMD8<Float>(), gr = SIMD8<Float>(), gg = SIMD8<Float>(), gb = SIMD8<Float>(), gz = SIMD8<Float>()
                    let index = SIMD8<Int32>(repeating: Int32(j))
                    for half in 0..<2 {
                        guard let lanes = entry.lanes(xs, firstX: x0 + 8 * half) else { continue }
                        let dx = lanes.dx
                        for y in ys {
                            let py = Float(y) + 0.5
                            guard abs(entry.meanY - py) <= entry.radius else { continue }
                            let row = 2 * (y - y0) + half
                            var m = lanes.inside & Lanes8.less(index, state.processed[row])
                            guard Lanes8.any(m), let (alpha, gauss) = entry.alpha(lanes, py: py, mask: &m) else { continue }
                            let dy = entry.meanY - py
                            let keep = 1 - alpha
                            let t = Lanes8.select(m, state.T[row] / keep, state.T[row])
                            state.T[row] = t
                            let zero = SIMD8<Float>()
                            let weight = Lanes8.select(m, alpha * t, zero)
                            let dR = state.dR[row], dG = state.dG[row], dB = state.dB[row], dZ = state.dZ[row]
                            // Masked lanes add exact zeros, whatever the loss's gradient is at those pixels.
                            gr += Lanes8.select(m, weight * dR, zero); gg += Lanes8.select(m, weight * dG, zero)
                            gb += Lanes8.select(m, weight * dB, zero); gz += Lanes8.select(m, weight * dZ, zero)
                            let la = state.lastAlpha[row]
                            let accR = Lanes8.select(m, la * state.lastR[row] + (1 - la) * state.accR[row], state.accR[row])
                            let accG = Lanes8.select(m, la * state.lastG[row] + (1 - la) * state.accG[row], state.accG[row])
                            let accB = Lanes8.select(m, la * state.lastB[row] + (1 - la) * state.accB[row], state.accB[row])
                            let accZ = Lanes8.select(m, la * state.lastZ[row] + (1 - la) * state.accZ[row], state.accZ[row])
                            state.accR[row] = accR; state.accG[row] = accG; state.accB[row] = accB; state.accZ[row] = accZ
                            state.lastR[row] = Lanes8.select(m, SIMD8(repeating: entry.red), state.lastR[row])
                            state.lastG[row] = Lanes8.select(m, SIMD8(repeating: entry.green), state.lastG[row])
                            state.lastB[row] = Lanes8.select(m, SIMD8(repeating: entry.blue), state.lastB[row])
                            state.lastZ[row] = Lanes8.select(m, SIMD8(repeating: entry.depth), state.lastZ[row])
                            state.lastAlpha[row] = Lanes8.select(m, alpha, la)
                            var gAlpha = (entry.red - accR) * dR + (entry.green - accG) * dG + (entry.blue - accB) * dB + (entry.depth - accZ) * dZ
                            gAlpha *= t
                            gAlpha += (state.dA[row] - state.bgDot[row]) * state.tFinal[row] / keep
                            // α = min(0.99, o·G): no gradient where the clamp holds.
                            let open = m & Lanes8.less(entry.opacity * gauss, SIMD8(repeating: Float(SplatRenderSettings.alphaMax)))
                            let gPower = gAlpha * entry.opacity * gauss
                            gop += Lanes8.select(open, gAlpha * gauss, zero)
                            gmx += Lanes8.select(open, gPower * (-entry.conicA * dx - entry.conicB * dy), zero)
                            gmy += Lanes8.select(open, gPower * (-entry.conicC * dy - entry.conicB * dx), zero)
                            gca += Lanes8.select(open, gPower * (-dx * dx / 2), zero)
                            gcb += Lanes8.select(open, gPower * (-dx * dy), zero)
                            gcc += Lanes8.select(open, gPower * (-dy * dy / 2), zero)
                        }
                    }
                    let slot = fields * (start + j)
                    eg[slot] = gmx.sum(); eg[slot + 1] = gmy.sum(); eg[slot + 2] = gca.sum(); eg[slot + 3] = gcb.sum(); eg[slot + 4] = gcc.sum()
                    eg[slot + 5] = gop.sum(); eg[slot + 6] = gr.sum(); eg[slot + 7] = gg.sum(); eg[slot + 8] = gb.sum(); eg[slot + 9] = gz.sum()
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
        let k = p.coefficientsPerChannel
        grad.means.withUnsafeMutableBufferPointer { gm in grad.logScales.withUnsafeMutableBufferPointer { gs in
        grad.rotations.withUnsafeMutableBufferPointer { gq in grad.opacityLogits.withUnsafeMutableBufferPointer { go in
        grad.sh.withUnsafeMutableBufferPointer { gh in meanPixels.withUnsafeMutableBufferPointer { mp in
            let gm = UnsafeMutableSendableBuffer(gm), gs = UnsafeMutableSendableBuffer(gs), gq = UnsafeMutableSendableBuffer(gq)
            let go = UnsafeMutableSendableBuffer(go), gh = UnsafeMutableSendableBuffer(gh), mp = UnsafeMutableSendableBuffer(mp)
            parallelForChunks(n, threads: frame.threads) { _, range in
                // Each chunk's Gaussians in a gradient of the chunk's size, then copied into their
                // own slots of the result (chunks own disjoint Gaussians).
                var local = SplatParameters<Float>(zerosLike: range.count, shDegree: p.shDegree)
                var basis = [Float](repeating: 0, count: 16)
                for i in range where frame.projected[i].visible {
                    var g = ProjectedGradient<Float>()
                    for e in Int(offsets[i])..<Int(offsets[i + 1]) {
                        let s = fields * Int(slotsByGaussian[e])
                        g.meanX += slotGrad[s]; g.meanY += slotGrad[s + 1]
                        g.conicA += slotGrad[s + 2]; g.conicB += slotGrad[s + 3]; g.conicC += slotGrad[s + 4]
                        g.opacity += slotGrad[s + 5]
                        g.red += slotGrad[s + 6]; g.green += slotGrad[s + 7]; g.blue += slotGrad[s + 8]; g.depth += slotGrad[s + 9]
                    }
                    mp[2 * i] = g.meanX; mp[2 * i + 1] = g.meanY
                    SplatProjection.backward(i, p, camera: cam, settings: frame.settings, degree: degree, g: g, grad: &local, basis: &basis,
                                             slot: i - range.lowerBound)
                }
                let first = range.lowerBound
                for (o, v) in local.means.enumerated() { gm[3 * first + o] = v }
                for (o, v) in local.logScales.enumerated() { gs[3 * first + o] = v }
                for (o, v) in local.rotations.enumerated() { gq[4 * first + o] = v }
                for (o, v) in local.opacityLogits.enumerated() { go[first + o] = v }
                for (o, v) in local.sh.enumerated() { gh[3 * k * first + o] = v }
            }
        } } } } } }
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

/// A tile's per-pixel state in the forward pass, eight pixels (half a tile row) a vector, half-row
/// `2·(y − y0) + (x − x0)/8`: transmittance, colour and depth so far, entries read, and whether
/// the pixel is still open (lanes past the tile's width never are). One allocation per tile.
struct FrontState {
    let T, r, g, b, z: UnsafeMutablePointer<SIMD8<Float>>
    let count, live: UnsafeMutablePointer<SIMD8<Int32>>
    private let floats: UnsafeMutablePointer<SIMD8<Float>>, ints: UnsafeMutablePointer<SIMD8<Int32>>

    init(width: Int) {
        let rows = 2 * SplatRasterizer.tileSize
        floats = .allocate(capacity: 5 * rows); ints = .allocate(capacity: 2 * rows)
        (T, r, g, b, z) = (floats, floats + rows, floats + 2 * rows, floats + 3 * rows, floats + 4 * rows)
        (count, live) = (ints, ints + rows)
        T.initialize(repeating: SIMD8(repeating: 1), count: rows)
        r.initialize(repeating: SIMD8(), count: 4 * rows)
        count.initialize(repeating: SIMD8(), count: rows)
        let lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7)
        for row in 0..<rows {
            let first = Int32(8 * (row % 2))
            (live + row).initialize(to: Lanes8.less(lane &+ SIMD8(repeating: first), SIMD8(repeating: Int32(width))))
        }
    }

    func deallocate() { floats.deallocate(); ints.deallocate() }
}

/// A tile's per-pixel state in the backward pass, laid out as `FrontState`: the loss's gradients
/// there, the final transmittance, entries read in the forward pass, and the back-to-front
/// recurrence (the transmittance, the colour behind the current entry relative to the
/// transmittance after it, the entry last composited).
struct BackState {
    let dR, dG, dB, dZ, dA, bgDot, tFinal, T: UnsafeMutablePointer<SIMD8<Float>>
    let accR, accG, accB, accZ, lastAlpha, lastR, lastG, lastB, lastZ: UnsafeMutablePointer<SIMD8<Float>>
    let processed: UnsafeMutablePointer<SIMD8<Int32>>
    private let floats: UnsafeMutablePointer<SIMD8<Float>>

    init() {
        let rows = 2 * SplatRasterizer.tileSize
        floats = .allocate(capacity: 17 * rows)
        floats.initialize(repeating: SIMD8(), count: 17 * rows)
        let f = floats
        (dR, dG, dB, dZ, dA, bgDot, tFinal, T) = (f, f + rows, f + 2 * rows, f + 3 * rows, f + 4 * rows, f + 5 * rows, f + 6 * rows, f + 7 * rows)
        (accR, accG, accB, accZ) = (f + 8 * rows, f + 9 * rows, f + 10 * rows, f + 11 * rows)
        (lastAlpha, lastR, lastG, lastB, lastZ) = (f + 12 * rows, f + 13 * rows, f + 14 * rows, f + 15 * rows, f + 16 * rows)
        processed = .allocate(capacity: rows)
        processed.initialize(repeating: SIMD8(), count: rows)
    }

    func deallocate() { floats.deallocate(); processed.deallocate() }
}

/// One tile entry's projection, read once for its pixel loops.
struct TileEntry {
    let meanX, meanY, conicA, conicB, conicC, opacity, red, green, blue, depth, radius, powerFloor: Float

    /// Eight pixel columns from `firstX`: which are inside the column range `xs` and within the
    /// radius of the centre, and their offsets from it. Nil when none.
    struct Lanes {
        let inside: Lanes8.Mask
        let dx: SIMD8<Float>
    }

    @inline(__always)
    func lanes(_ xs: ClosedRange<Int>, firstX: Int) -> Lanes? {
        guard xs.lowerBound <= firstX + 7, xs.upperBound >= firstX else { return nil }
        let x = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7) &+ Int32(firstX)
        let centres: SIMD8<Float> = SIMD8<Float>(x) + 0.5
        let dx: SIMD8<Float> = meanX - centres
        let columns = Lanes8.lessOrEqual(SIMD8(repeating: Int32(xs.lowerBound)), x) & Lanes8.lessOrEqual(x, SIMD8(repeating: Int32(xs.upperBound)))
        let r = SIMD8<Float>(repeating: radius)
        let inside = columns & Lanes8.lessOrEqual(dx, r) & Lanes8.lessOrEqual(-r, dx)  // |dx| ≤ radius, exactly
        return Lanes8.any(inside) ? Lanes(inside: inside, dx: dx) : nil
    }

    /// α and the Gaussian value e^power at the lanes' pixel centres in row `py`, with the per-pixel
    /// loop's tests (`TileList.alpha`) applied to `mask`, lane by lane with the same operations.
    /// Nil when no lane is left.
    @inline(__always)
    func alpha(_ lanes: Lanes, py: Float, mask: inout Lanes8.Mask) -> (alpha: SIMD8<Float>, gauss: SIMD8<Float>)? {
        let dx = lanes.dx, dy = meanY - py
        let p = -(conicA * dx * dx + conicC * dy * dy) / 2 - conicB * dx * dy
        mask &= Lanes8.lessOrEqual(p, SIMD8()) & Lanes8.lessOrEqual(SIMD8(repeating: powerFloor), p)
        guard Lanes8.any(mask) else { return nil }
        let gauss = ScalarMath.exp(p)
        let product = opacity * gauss
        // min(alphaMax, o·G) as Swift's `min` takes it.
        let alphaMax = SIMD8<Float>(repeating: Float(SplatRenderSettings.alphaMax))
        let a = Lanes8.select(Lanes8.less(product, alphaMax), product, alphaMax)
        mask &= Lanes8.lessOrEqual(SIMD8(repeating: Float(SplatRenderSettings.alphaMin)), a)
        return Lanes8.any(mask) ? (a, gauss) : nil
    }
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

    /// Entry `j`'s fields.
    @inline(__always)
    func entry(_ j: Int) -> TileEntry {
        TileEntry(meanX: meanX[j], meanY: meanY[j], conicA: conicA[j], conicB: conicB[j], conicC: conicC[j], opacity: opacity[j],
                  red: red[j], green: green[j], blue: blue[j], depth: depth[j], radius: radius[j], powerFloor: powerFloor[j])
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
    /// The one-pixel form of `TileEntry.alpha`, which the pixel loops run: the tests' per-pixel
    /// loops use it to check those loops lane by lane.
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

