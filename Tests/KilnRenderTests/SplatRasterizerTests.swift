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
    @Test("The forward pass composites exactly as a per-pixel loop over each tile's list would (same bits), at sizes around the tile size")
    func perPixelOrder() {
        for (seed, size) in [(UInt64(31), (16, 16)), (32, (33, 20)), (33, (47, 35))] {
            var (p64, camera) = randomSplatScene(count: 120, shDegree: 1, seed: seed, width: size.0, height: size.1, opacityLogitRange: -1...4)
            // Ten small Gaussians, whose bounding squares cover a few pixels each.
            for i in 0..<10 { p64.logScales[3 * i] = -3; p64.logScales[3 * i + 1] = -3 }
            let p: SplatParameters<Float> = p64.converted()
            let frame = SplatRasterizer.forward(p, camera: camera, threads: 2)
            let w = camera.width, h = camera.height, bg = frame.settings.background
            var color = [Float](repeating: 0, count: 3 * w * h), processed = [Int32](repeating: 0, count: w * h)
            frame.tileData.withUnsafeBufferPointer { data in
                for tile in 0..<(frame.tilesX * frame.tilesY) {
                    let list = TileList(data: data.baseAddress, start: Int(frame.tileStart[tile]), end: Int(frame.tileStart[tile + 1]))
                    let x0 = (tile % frame.tilesX) * SplatRasterizer.tileSize, y0 = (tile / frame.tilesX) * SplatRasterizer.tileSize
                    for y in y0..<min(y0 + SplatRasterizer.tileSize, h) {
                        for x in x0..<min(x0 + SplatRasterizer.tileSize, w) {
                            let px = Float(x) + 0.5, py = Float(y) + 0.5
                            var T: Float = 1, r: Float = 0, g: Float = 0, b: Float = 0, count = 0
                            for j in 0..<list.count where abs(list.meanY[j] - py) <= list.radius[j] {
                                guard let alpha = list.alpha(j, px: px, py: py)?.alpha else { continue }
                                let next = T * (1 - alpha)
                                if next < Float(SplatRenderSettings.transmittanceMin) { break }
                                let weight = alpha * T
                                r += list.red[j] * weight; g += list.green[j] * weight; b += list.blue[j] * weight
                                T = next
                                count = j + 1
                            }
                            let o = y * w + x
                            color[3 * o] = r + T * bg.x; color[3 * o + 1] = g + T * bg.y; color[3 * o + 2] = b + T * bg.z
                            processed[o] = Int32(count)
                        }
                    }
                }
            }
            #expect(frame.images.color == color, "seed \(seed)")
            #expect(frame.processed == processed && processed.contains { $0 > 1 }, "seed \(seed)")
        }
    }
}
