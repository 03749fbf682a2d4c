import KilnCore
import Testing
@testable import KilnRender

@Suite("Fast splat rasteriser against the reference")
struct SplatRasterizerTests {
    /// Compares forward images and backward gradients of the fast Float path with the float64
    /// reference on the same parameters; reports the worst element.
    func compare(_ p64: SplatParameters<Double>, camera: Camera, settings: SplatRenderSettings, seed: UInt64,
                 threads: Int = 2, imageTolerance: Double = 2e-5, gradientTolerance: Double = 1e-3) {
        let p32: SplatParameters<Float> = p64.converted()
        let reference = SplatReference.render(p32.converted(to: Double.self), camera: camera, settings: settings)
        let frame = SplatRasterizer.forward(p32, camera: camera, settings: settings, threads: threads)
        func worst(_ a: [Float], _ b: [Double]) -> (Double, Int) {
            var e = (0.0, -1)
            for i in a.indices where abs(Double(a[i]) - b[i]) > e.0 { e = (abs(Double(a[i]) - b[i]), i) }
            return e
        }
        let (ec, ic) = worst(frame.images.color, reference.color)
        let (ea, ia) = worst(frame.images.alpha, reference.alpha)
        let (ed, id) = worst(frame.images.depth, reference.depth)
        #expect(ec <= imageTolerance, "colour differs by \(ec) at \(ic)")
        #expect(ea <= imageTolerance, "alpha differs by \(ea) at \(ia)")
        #expect(ed <= imageTolerance * 10, "depth differs by \(ed) at \(id)")

        let loss = WeightedLoss(pixels: camera.width * camera.height, seed: seed)
        let fast = SplatRasterizer.backward(frame, p32, gradients: loss.gradients(as: Float.self))
        let slow = SplatReference.backward(p32.converted(to: Double.self), camera: camera, settings: settings, gradients: loss.gradients(as: Double.self))
        for (group, (a, b)) in zip(SplatParameters<Float>.groupNames, zip(fast.parameters.groups, slow.parameters.groups)) {
            let scale = max(1e-3, b.map(abs).max() ?? 0)
            var e = (0.0, -1)
            for i in a.indices where abs(Double(a[i]) - b[i]) / scale > e.0 { e = (abs(Double(a[i]) - b[i]) / scale, i) }
            #expect(e.0 <= gradientTolerance, "\(group)[\(e.1)]: fast \(e.1 >= 0 ? Double(a[e.1]) : 0) vs reference \(e.1 >= 0 ? b[e.1] : 0), error \(e.0) of max \(scale)")
        }
        for ch in 0..<3 {
            #expect(abs(fast.background[ch] - slow.background[ch]) <= 1e-3 * max(1, abs(slow.background[ch])), "background[\(ch)]")
        }
        for i in fast.meanPixels.indices {
            #expect(abs(Double(fast.meanPixels[i]) - slow.meanPixels[i]) <= 1e-3 * max(1, abs(slow.meanPixels[i])), "meanPixels[\(i)]")
        }
    }

    @Test("Random scenes, image sizes around the tile size", arguments: [(15, 15), (16, 16), (17, 17), (33, 20), (40, 33)])
    func sizes(size: (Int, Int)) {
        let (p, camera) = randomSplatScene(count: 60, shDegree: 2, seed: UInt64(size.0 * 100 + size.1), width: size.0, height: size.1)
        compare(p, camera: camera, settings: SplatRenderSettings(background: SIMD3(0.3, 0.6, 0.1)), seed: 1)
    }

    @Test("One thread and two threads give identical bits")
    func determinism() {
        let (p64, camera) = randomSplatScene(count: 80, shDegree: 1, seed: 77, width: 50, height: 37)
        let p: SplatParameters<Float> = p64.converted()
        let loss = WeightedLoss(pixels: 50 * 37, seed: 3)
        let one = SplatRasterizer.forward(p, camera: camera, threads: 1)
        let two = SplatRasterizer.forward(p, camera: camera, threads: 2)
        #expect(one.images.color == two.images.color && one.images.alpha == two.images.alpha)
        let g1 = SplatRasterizer.backward(one, p, gradients: loss.gradients(as: Float.self))
        let g2 = SplatRasterizer.backward(two, p, gradients: loss.gradients(as: Float.self))
        #expect(g1.parameters == g2.parameters && g1.background == g2.background)
    }

    @Test("Antialiased mode and SH degree 3")
    func antialiased() {
        let (p, camera) = randomSplatScene(count: 50, shDegree: 3, seed: 5, width: 32, height: 24)
        compare(p, camera: camera, settings: SplatRenderSettings(antialiased: true, background: SIMD3(1, 1, 1)), seed: 2)
    }

    @Test("Gaussians behind the camera, straddling the near plane and at the border")
    func culling() {
        var (p, camera) = randomSplatScene(count: 40, shDegree: 0, seed: 9, width: 32, height: 32)
        let eye = camera.position, forward = camera.forward, right = camera.right
        for i in 0..<10 {  // behind, on and just past the near plane, some large enough to cover the view
            let along = [-1.0, 0.05, 0.19, 0.21, 0.3][i % 5]
            for a in 0..<3 { p.means[3 * i + a] = Double(eye[a]) + along * Double(forward[a]) }
            p.logScales[3 * i] = -0.5
        }
        for i in 10..<20 {  // near the image border
            for a in 0..<3 { p.means[3 * i + a] += Double(right[a]) * 0.95 * (i % 2 == 0 ? 1 : -1) }
        }
        compare(p, camera: camera, settings: SplatRenderSettings(), seed: 4)
        let frame = SplatRasterizer.forward(p.converted(), camera: camera)
        #expect(!frame.projected[0].visible, "a Gaussian behind the camera must be culled")
        #expect(!frame.projected[1].visible, "a Gaussian closer than the near plane must be culled")
    }

    @Test("Degenerate scales, an empty scene and a 1×1 image")
    func degenerate() {
        var (p, camera) = randomSplatScene(count: 30, shDegree: 1, seed: 11, width: 20, height: 18)
        for i in 0..<10 { p.logScales[3 * i] = -12; p.logScales[3 * i + 1] = -12 }  // needles and points
        compare(p, camera: camera, settings: SplatRenderSettings(), seed: 5)

        let empty = SplatParameters<Float>(zerosLike: 0, shDegree: 0)
        let frame = SplatRasterizer.forward(empty, camera: camera, settings: SplatRenderSettings(background: SIMD3(0.25, 0.5, 0.75)))
        #expect(frame.images.alpha.allSatisfy { $0 == 0 })
        #expect(frame.images.color[0] == 0.25 && frame.images.color[1] == 0.5 && frame.images.color[2] == 0.75)
        let g = SplatRasterizer.backward(frame, empty, gradients: SplatImageGradients(color: [Float](repeating: 1, count: 3 * 20 * 18)))
        #expect(g.background.x == Double(20 * 18))

        let (tiny, tinyCamera) = randomSplatScene(count: 20, shDegree: 0, seed: 12, width: 1, height: 1, opacityLogitRange: 0...3)
        compare(tiny, camera: tinyCamera, settings: SplatRenderSettings(), seed: 6)
    }
}

extension SplatRasterizerTests {
    @Test("The forward pass composites exactly as a per-pixel loop over each tile's list would (same bits: colour on a background, alpha, depth, final transmittance), at sizes around the tile size")
    func perPixelOrder() {
        for (seed, size) in [(UInt64(31), (16, 16)), (32, (33, 20)), (33, (47, 35))] {
            var (p64, camera) = randomSplatScene(count: 120, shDegree: 1, seed: seed, width: size.0, height: size.1, opacityLogitRange: -1...4)
            // Ten small Gaussians, whose bounding squares cover a few pixels each.
            for i in 0..<10 { p64.logScales[3 * i] = -3; p64.logScales[3 * i + 1] = -3 }
            let p: SplatParameters<Float> = p64.converted()
            let frame = SplatRasterizer.forward(p, camera: camera, settings: SplatRenderSettings(background: SIMD3(0.2, 0.5, 0.9)), threads: 2)
            let w = camera.width, h = camera.height, bg = frame.settings.background
            var color = [Float](repeating: 0, count: 3 * w * h), processed = [Int32](repeating: 0, count: w * h)
            var alpha = [Float](repeating: 0, count: w * h), depth = alpha, finalT = alpha
            frame.tileData.withUnsafeBufferPointer { data in
                for tile in 0..<(frame.tilesX * frame.tilesY) {
                    let list = TileList(data: data.baseAddress, start: Int(frame.tileStart[tile]), end: Int(frame.tileStart[tile + 1]))
                    let x0 = (tile % frame.tilesX) * SplatRasterizer.tileSize, y0 = (tile / frame.tilesX) * SplatRasterizer.tileSize
                    for y in y0..<min(y0 + SplatRasterizer.tileSize, h) {
                        for x in x0..<min(x0 + SplatRasterizer.tileSize, w) {
                            let px = Float(x) + 0.5, py = Float(y) + 0.5
                            var T: Float = 1, r: Float = 0, g: Float = 0, b: Float = 0, z: Float = 0, count = 0
                            for j in 0..<list.count where abs(list.meanY[j] - py) <= list.radius[j] {
                                guard let alpha = list.alpha(j, px: px, py: py)?.alpha else { continue }
                                let next = T * (1 - alpha)
                                if next < Float(SplatRenderSettings.transmittanceMin) { break }
                                let weight = alpha * T
                                r += list.red[j] * weight; g += list.green[j] * weight; b += list.blue[j] * weight
                                z += list.depth[j] * weight
                                T = next
                                count = j + 1
                            }
                            let o = y * w + x
                            color[3 * o] = r + T * bg.x; color[3 * o + 1] = g + T * bg.y; color[3 * o + 2] = b + T * bg.z
                            alpha[o] = 1 - T; depth[o] = z; finalT[o] = T
                            processed[o] = Int32(count)
                        }
                    }
                }
            }
            #expect(frame.images.color == color, "seed \(seed)")
            #expect(frame.images.alpha == alpha && frame.images.depth == depth && frame.finalTransmittance == finalT, "seed \(seed)")
            #expect(frame.processed == processed && processed.contains { $0 > 1 }, "seed \(seed)")
        }
    }

    @Test("The backward pass equals a per-pixel back-to-front loop over each tile's list, summed in float64, to 1e-5 of each gradient's scale, with NaN loss gradients at pixels no entry reaches")
    func perPixelBackward() {
        for (seed, size) in [(UInt64(41), (16, 16)), (42, (33, 20)), (43, (47, 35))] {
            var (p64, camera) = randomSplatScene(count: 120, shDegree: 1, seed: seed, width: size.0, height: size.1, opacityLogitRange: -1...4)
            for i in 0..<10 { p64.logScales[3 * i] = -3; p64.logScales[3 * i + 1] = -3 }
            let p: SplatParameters<Float> = p64.converted()
            let settings = SplatRenderSettings(background: SIMD3(0.2, 0.5, 0.9))
            let frame = SplatRasterizer.forward(p, camera: camera, settings: settings, threads: 2)
            let w = camera.width, h = camera.height, bg = settings.background
            let loss = WeightedLoss(pixels: w * h, seed: seed)
            var dColor = loss.color.map { Float($0) }, dAlpha = loss.alpha.map { Float($0) }, dDepth = loss.depth.map { Float($0) }
            // Pixels that no entry reaches get NaN gradients: they must not reach any Gaussian.
            var untouched = 0
            for o in 0..<(w * h) where frame.processed[o] == 0 {
                dColor[3 * o] = .nan; dColor[3 * o + 1] = .infinity; dAlpha[o] = .nan; dDepth[o] = -.infinity
                untouched += 1
            }
            let fast = SplatRasterizer.backward(frame, p, gradients: SplatImageGradients(color: dColor, alpha: dAlpha, depth: dDepth))
            // Per entry: meanX, meanY, conicA, conicB, conicC, opacity, r, g, b, depth, in float64.
            var perGaussian = [[Double]](repeating: [Double](repeating: 0, count: 10), count: p.count)
            frame.tileData.withUnsafeBufferPointer { data in
                for tile in 0..<(frame.tilesX * frame.tilesY) {
                    let start = Int(frame.tileStart[tile])
                    let list = TileList(data: data.baseAddress, start: start, end: Int(frame.tileStart[tile + 1]))
                    let x0 = (tile % frame.tilesX) * SplatRasterizer.tileSize, y0 = (tile / frame.tilesX) * SplatRasterizer.tileSize
                    for y in y0..<min(y0 + SplatRasterizer.tileSize, h) {
                        for x in x0..<min(x0 + SplatRasterizer.tileSize, w) {
                            let o = y * w + x, px = Float(x) + 0.5, py = Float(y) + 0.5
                            let d = (Double(dColor[3 * o]), Double(dColor[3 * o + 1]), Double(dColor[3 * o + 2]))
                            let dA = Double(dAlpha[o]), dZ = Double(dDepth[o]), tFinal = Double(frame.finalTransmittance[o])
                            let bgDot = Double(bg.x) * d.0 + Double(bg.y) * d.1 + Double(bg.z) * d.2
                            var T = tFinal, acc = (0.0, 0.0, 0.0, 0.0), last = (0.0, 0.0, 0.0, 0.0), lastAlpha = 0.0
                            for j in stride(from: Int(frame.processed[o]) - 1, through: 0, by: -1) where abs(list.meanY[j] - py) <= list.radius[j] {
                                guard let (a32, gauss32, dx32, dy32) = list.alpha(j, px: px, py: py) else { continue }
                                let a = Double(a32), gauss = Double(gauss32), dx = Double(dx32), dy = Double(dy32)
                                let e = Int(frame.tileEntries[start + j])
                                let (red, green, blue, z) = (Double(list.red[j]), Double(list.green[j]), Double(list.blue[j]), Double(list.depth[j]))
                                T /= 1 - a
                                let weight = a * T
                                perGaussian[e][6] += weight * d.0; perGaussian[e][7] += weight * d.1; perGaussian[e][8] += weight * d.2
                                perGaussian[e][9] += weight * dZ
                                acc = (lastAlpha * last.0 + (1 - lastAlpha) * acc.0, lastAlpha * last.1 + (1 - lastAlpha) * acc.1,
                                       lastAlpha * last.2 + (1 - lastAlpha) * acc.2, lastAlpha * last.3 + (1 - lastAlpha) * acc.3)
                                last = (red, green, blue, z)
                                lastAlpha = a
                                var gAlpha = (red - acc.0) * d.0 + (green - acc.1) * d.1 + (blue - acc.2) * d.2 + (z - acc.3) * dZ
                                gAlpha *= T
                                gAlpha += (dA - bgDot) * tFinal / (1 - a)
                                let opacity = Double(list.opacity[j])
                                guard list.opacity[j] * gauss32 < Float(SplatRenderSettings.alphaMax) else { continue }
                                let gPower = gAlpha * opacity * gauss
                                let (ca, cb, cc) = (Double(list.conicA[j]), Double(list.conicB[j]), Double(list.conicC[j]))
                                perGaussian[e][5] += gAlpha * gauss
                                perGaussian[e][0] += gPower * (-ca * dx - cb * dy)
                                perGaussian[e][1] += gPower * (-cc * dy - cb * dx)
                                perGaussian[e][2] += gPower * (-dx * dx / 2)
                                perGaussian[e][3] += gPower * (-dx * dy)
                                perGaussian[e][4] += gPower * (-dy * dy / 2)
                            }
                        }
                    }
                }
            }
            #expect(untouched > 0, "seed \(seed): every pixel is reached, so the NaN check means nothing")
            // The projection's backward pass from the float64 sums, in float32 as the rasteriser runs it.
            let cam = SplatCamera<Float>(camera)
            var reference = SplatParameters<Float>(zerosLike: p.count, shDegree: p.shDegree)
            var basis = [Float](repeating: 0, count: 16)
            for i in 0..<p.count where frame.projected[i].visible {
                let s = perGaussian[i]
                var g = ProjectedGradient<Float>()
                (g.meanX, g.meanY, g.conicA, g.conicB, g.conicC) = (Float(s[0]), Float(s[1]), Float(s[2]), Float(s[3]), Float(s[4]))
                (g.opacity, g.red, g.green, g.blue, g.depth) = (Float(s[5]), Float(s[6]), Float(s[7]), Float(s[8]), Float(s[9]))
                SplatProjection.backward(i, p, camera: cam, settings: settings, degree: frame.settings.colorDegree(parameterDegree: p.shDegree),
                                         g: g, grad: &reference, basis: &basis)
            }
            let meanPixels = perGaussian.flatMap { [Float($0[0]), Float($0[1])] }
            for (name, a, b) in [("means", fast.parameters.means, reference.means), ("logScales", fast.parameters.logScales, reference.logScales),
                                 ("rotations", fast.parameters.rotations, reference.rotations),
                                 ("opacityLogits", fast.parameters.opacityLogits, reference.opacityLogits), ("sh", fast.parameters.sh, reference.sh),
                                 ("meanPixels", fast.meanPixels, meanPixels)] {
                #expect(a.allSatisfy { $0.isFinite }, "seed \(seed), \(name): a non-finite gradient")
                let scale = max(1e-6, b.map { abs(Double($0)) }.max() ?? 0)
                let worst = zip(a, b).map { abs(Double($0) - Double($1)) }.max() ?? 0
                #expect(worst <= 1e-5 * scale, "seed \(seed), \(name): worst \(worst) of scale \(scale)")
            }
        }
    }
}
