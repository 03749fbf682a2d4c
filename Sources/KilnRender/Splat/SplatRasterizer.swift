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
        let bg = settings.background
        color.withUnsafeMutableBufferPointer { c in alpha.withUnsafeMutableBufferPointer { a in depth.withUnsafeMutableBufferPointer { d in
        finalT.withUnsafeMutableBufferPointer { t in processed.withUnsafeMutableBufferPointer { np in
            let c = UnsafeMutableSendableBuffer(c), a = UnsafeMutableSendableBuffer(a), d = UnsafeMutableSendableBuffer(d)
            let t = UnsafeMutableSendableBuffer(t), np = UnsafeMutableSendableBuffer(np)
            forEachTile(tilesX * tilesY, threads: threads) { tile in
                let list = TileList(projected: visibleProjection, entries: tileEntries, start: Int(tileStart[tile]), end: Int(tileStart[tile + 1]))
                let x0 = (tile % tilesX) * tileSize, y0 = (tile / tilesX) * tileSize
                let row = list.row
                for y in y0..<min(y0 + tileSize, h) {
                    let rowCount = list.entries(coveringRow: Float(y) + 0.5)
                    for x in x0..<min(x0 + tileSize, w) {
                        let px = Float(x) + 0.5, py = Float(y) + 0.5
                        var T: Float = 1, r: Float = 0, g: Float = 0, b: Float = 0, z: Float = 0
                        var count = 0
                        for k in 0..<rowCount {
                            let j = Int(row[k])
                            guard let alphaJ = list.alpha(j, px: px, py: py)?.alpha else { continue }
                            let next = T * (1 - alphaJ)
                            if next < Float(SplatRenderSettings.transmittanceMin) { break }
                            let weight = alphaJ * T
                            r += list.red[j] * weight; g += list.green[j] * weight; b += list.blue[j] * weight
                            z += list.depth[j] * weight
                            T = next
                            count = j + 1
                        }
                        let o = y * w + x
                        c[3 * o] = r + T * bg.x; c[3 * o + 1] = g + T * bg.y; c[3 * o + 2] = b + T * bg.z
                        a[o] = 1 - T; d[o] = z; t[o] = T; np[o] = Int32(count)
                    }
                }
            }
        } } } } }
        return SplatFrame(images: SplatImages(width: w, height: h, color: color, alpha: alpha, depth: depth), camera: camera,
                          settings: settings, projected: projected, tileStart: tileStart, tileEntries: tileEntries,
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
        entryGrad.withUnsafeMutableBufferPointer { eg in tileBackground.withUnsafeMutableBufferPointer { tb in
            let eg = UnsafeMutableSendableBuffer(eg), tb = UnsafeMutableSendableBuffer(tb)
            forEachTile(tiles, threads: frame.threads) { tile in
                let start = Int(frame.tileStart[tile])
                let list = TileList(projected: frame.projected, entries: frame.tileEntries, start: start, end: Int(frame.tileStart[tile + 1]))
                let x0 = (tile % tilesX) * tileSize, y0 = (tile / tilesX) * tileSize
                var gBackground = SIMD3<Float>.zero
                let row = list.row
                for y in y0..<min(y0 + tileSize, h) {
                    let rowCount = list.entries(coveringRow: Float(y) + 0.5)
                    for x in x0..<min(x0 + tileSize, w) {
                        let o = y * w + x
                        let px = Float(x) + 0.5, py = Float(y) + 0.5
                        let dR = dImage.color[3 * o], dG = dImage.color[3 * o + 1], dB = dImage.color[3 * o + 2]
                        let dZ = dImage.depth?[o] ?? 0, dA = dImage.alpha?[o] ?? 0
                        let tFinal = frame.finalTransmittance[o]
                        gBackground += SIMD3(dR, dG, dB) * tFinal
                        let bgDot = bg.x * dR + bg.y * dG + bg.z * dB
                        var T = tFinal
                        // Colour behind the current Gaussian, relative to the transmittance after it.
                        var accR: Float = 0, accG: Float = 0, accB: Float = 0, accZ: Float = 0
                        var lastAlpha: Float = 0, lastR: Float = 0, lastG: Float = 0, lastB: Float = 0, lastZ: Float = 0
                        let processed = Int(frame.processed[o])
                        var k = rowCount - 1
                        while k >= 0 {
                            let j = Int(row[k])
                            k -= 1
                            guard j < processed, let (alphaJ, gauss, dx, dy) = list.alpha(j, px: px, py: py) else { continue }
                            T /= (1 - alphaJ)
                            let weight = alphaJ * T
                            let slot = fields * (start + j)
                            eg[slot + 6] += weight * dR; eg[slot + 7] += weight * dG; eg[slot + 8] += weight * dB
                            eg[slot + 9] += weight * dZ
                            accR = lastAlpha * lastR + (1 - lastAlpha) * accR
                            accG = lastAlpha * lastG + (1 - lastAlpha) * accG
                            accB = lastAlpha * lastB + (1 - lastAlpha) * accB
                            accZ = lastAlpha * lastZ + (1 - lastAlpha) * accZ
                            lastR = list.red[j]; lastG = list.green[j]; lastB = list.blue[j]; lastZ = list.depth[j]
                            lastAlpha = alphaJ
                            var gAlpha = (lastR - accR) * dR + (lastG - accG) * dG + (lastB - accB) * dB + (lastZ - accZ) * dZ
                            gAlpha *= T
                            gAlpha += (dA - bgDot) * tFinal / (1 - alphaJ)
                            // α = min(0.99, o·G): no gradient where the clamp holds.
                            guard list.opacity[j] * gauss < Float(SplatRenderSettings.alphaMax) else { continue }
                            let gPower = gAlpha * list.opacity[j] * gauss
                            eg[slot + 5] += gAlpha * gauss
                            eg[slot] += gPower * (-list.conicA[j] * dx - list.conicB[j] * dy)
                            eg[slot + 1] += gPower * (-list.conicC[j] * dy - list.conicB[j] * dx)
                            eg[slot + 2] += gPower * (-dx * dx / 2)
                            eg[slot + 3] += gPower * (-dx * dy)
                            eg[slot + 4] += gPower * (-dy * dy / 2)
                        }
                    }
                }
                tb[tile] = gBackground
            }
        } }

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
        // Entries were filled in index order, so a stable sort by depth gives (depth, index) order.
        entries.withUnsafeMutableBufferPointer { e in
            let e = UnsafeMutableSendableBuffer(e)
            forEachTile(tilesX * tilesY, threads: Parallel.defaultThreadCount) { t in
                let lo = Int(starts[t]), hi = Int(starts[t + 1])
                guard hi - lo > 1 else { return }
                var slice = Array(UnsafeBufferPointer(rebasing: e.buffer[lo..<hi]))
                slice.sort { (projected[Int($0)].depth, $0) < (projected[Int($1)].depth, $1) }
                for k in 0..<slice.count { e[lo + k] = slice[k] }
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

/// A tile's Gaussians gathered into contiguous arrays (front to back) for the pixel loops.
/// Owns one allocation; the pointer fields are views into it (no bounds checks in the loops,
/// which measured about a third of the pixel-loop time with Swift arrays).
final class TileList {
    let count: Int
    private let storage: UnsafeMutablePointer<Float>
    let meanX, meanY, conicA, conicB, conicC, opacity, red, green, blue, depth, radius: UnsafeMutablePointer<Float>
    /// log(1/(255·opacity)) − 1e-3: below this power α < 1/255 surely, so exp can be skipped.
    let powerFloor: UnsafeMutablePointer<Float>
    /// Scratch for the entries covering one pixel row.
    let row: UnsafeMutablePointer<Int32>

    init(projected: [ProjectedGaussian<Float>], entries: [Int32], start: Int, end: Int) {
        count = end - start
        let n = max(count, 1)
        storage = .allocate(capacity: 12 * n)
        meanX = storage; meanY = storage + n; conicA = storage + 2 * n; conicB = storage + 3 * n; conicC = storage + 4 * n
        opacity = storage + 5 * n; red = storage + 6 * n; green = storage + 7 * n; blue = storage + 8 * n
        depth = storage + 9 * n; radius = storage + 10 * n; powerFloor = storage + 11 * n
        row = .allocate(capacity: n)
        for j in 0..<count {
            let g = projected[Int(entries[start + j])]
            meanX[j] = g.meanX; meanY[j] = g.meanY; conicA[j] = g.conicA; conicB[j] = g.conicB; conicC[j] = g.conicC
            opacity[j] = g.opacity; red[j] = g.red; green[j] = g.green; blue[j] = g.blue; depth[j] = g.depth
            radius[j] = Float(g.radius)
            powerFloor[j] = g.opacity > 0 ? Float.log(Float(SplatRenderSettings.alphaMin) / g.opacity) - 1e-3 : 0
        }
    }

    deinit {
        storage.deallocate()
        row.deallocate()
    }

    /// Fills `row` with the positions of the entries whose bounding square covers pixel row
    /// `py` (front to back); returns how many.
    @inline(__always)
    func entries(coveringRow py: Float) -> Int {
        var n = 0
        for j in 0..<count where abs(meanY[j] - py) <= radius[j] {
            row[n] = Int32(j)
            n += 1
        }
        return n
    }

    /// α of entry `j` at a pixel centre and the Gaussian value e^power, or nil when the entry is
    /// skipped there (the reference's tests: outside the bounding square, power > 0, α < 1/255).
    @inline(__always)
    func alpha(_ j: Int, px: Float, py: Float) -> (alpha: Float, gauss: Float, dx: Float, dy: Float)? {
        let dx = meanX[j] - px, dy = meanY[j] - py
        guard abs(dx) <= radius[j] else { return nil }
        let p = -(conicA[j] * dx * dx + conicC[j] * dy * dy) / 2 - conicB[j] * dx * dy
        guard p <= 0, p >= powerFloor[j] else { return nil }
        let gauss = Float.exp(p)
        let a = min(Float(SplatRenderSettings.alphaMax), opacity[j] * gauss)
        return a >= Float(SplatRenderSettings.alphaMin) ? (a, gauss, dx, dy) : nil
    }
}

