import KilnCore
import Testing
@testable import KilnRender

@Suite("Mesh rasterize and interpolate")
struct MeshRasterizerTests {
    /// For pixel `p`, triangle `t`'s smallest barycentric and its depth in float64 (nil if the
    /// triangle is degenerate or the point is behind the eye).
    static func probe(_ scene: MeshScene, pixel p: Int, triangle t: Int) -> (minB: Double, depth: Double)? {
        let f = MeshReference.Homogeneous(scene.clip, scene.triangles[t])
        guard f.det != 0, f.det.isFinite else { return nil }
        let map = PixelToNDC<Double>(width: scene.width, height: scene.height)
        let e = f.edgeFunctions(map.sx * Double(p % scene.width) + map.ox, map.sy * Double(p / scene.width) + map.oy)
        let sum = e.reduce(0, +)
        guard sum * f.det > 0 else { return nil }
        let depth = (e[0] * f.z[0] + e[1] * f.z[1] + e[2] * f.z[2]) / f.det
        return (e.map { $0 / sum }.min()!, depth)
    }

    @Test("fast rasterize matches the float64 reference", arguments: [(1, 1), (7, 5), (16, 9), (33, 17), (40, 40)])
    func rasterizeMatchesReference(size: (Int, Int)) {
        for (seed, cull) in [(UInt64(1), false), (2, true), (3, false)] {
            let scene = MeshScene(triangleCount: 60, seed: seed * 100 + UInt64(size.0), width: size.0, height: size.1)
            let options = RasterizeOptions(cullBackFaces: cull, barycentricDerivatives: true)
            let fast = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: size.0, height: size.1, options: options, threads: 2)
            let reference = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: size.0, height: size.1, options: options)
            var mismatches = 0, worstBary = 0.0, worstDepth = 0.0, worstDerivative = 0.0
            for p in 0..<(size.0 * size.1) {
                let a = Int(fast.triangleIDs[p]), b = Int(reference.triangleIDs[p])
                if a != b {
                    // Allowed only where float32 and float64 may honestly disagree: a centre on an
                    // edge (within 1e-4 in barycentrics) or two surfaces at the same depth.
                    mismatches += 1
                    let pa = a >= 0 ? Self.probe(scene, pixel: p, triangle: a) : nil
                    let pb = b >= 0 ? Self.probe(scene, pixel: p, triangle: b) : nil
                    let onEdge = (pa.map { abs($0.minB) < 1e-4 } ?? false) || (pb.map { abs($0.minB) < 1e-4 } ?? false)
                    let tie = pa != nil && pb != nil && abs(pa!.depth - pb!.depth) < 1e-5
                    let nearClip = [pa, pb].contains { $0.map { abs(abs($0.depth) - 1) < 1e-5 } ?? false }
                    #expect(onEdge || tie || nearClip, "pixel \(p): fast sees \(a), reference \(b), probes \(String(describing: pa)) \(String(describing: pb))")
                    continue
                }
                guard a >= 0 else { continue }
                for k in 0..<2 { worstBary = max(worstBary, abs(Double(fast.barycentrics[2 * p + k]) - reference.barycentrics[2 * p + k])) }
                worstDepth = max(worstDepth, abs(Double(fast.depth[p]) - reference.depth[p]))
                for k in 0..<4 {
                    let r = reference.barycentricDerivatives![4 * p + k]
                    worstDerivative = max(worstDerivative, abs(Double(fast.barycentricDerivatives![4 * p + k]) - r) / max(1, abs(r)))
                }
            }
            #expect(mismatches <= max(1, size.0 * size.1 / 200), "\(mismatches) pixels disagree")
            #expect(worstBary < 2e-4, "worst barycentric error \(worstBary)")
            #expect(worstDepth < 1e-4, "worst depth error \(worstDepth)")
            #expect(worstDerivative < 1e-3, "worst barycentric derivative error \(worstDerivative)")
        }
    }

    @Test("thread count does not change the raster")
    func deterministicAcrossThreads() {
        let scene = MeshScene(triangleCount: 200, seed: 9, width: 37, height: 29)
        let one = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 37, height: 29, threads: 1)
        for threads in [2, 3, 7] {
            #expect(MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 37, height: 29, threads: threads) == one)
        }
    }

    /// One triangle over the lower-left half of NDC on a 4×4 raster, vertex 2 at w = 2.
    static func halfTriangle(w2: Float = 2, clockwise: Bool = false) -> ([Float], [SIMD3<UInt32>]) {
        let clip: [Float] = [-1, -1, 0, 1, /**/ 1, -1, 0, 1, /**/ -w2, w2, 0, w2]
        return (clip, [clockwise ? SIMD3(0, 2, 1) : SIMD3(0, 1, 2)])
    }

    @Test("perspective-correct barycentrics and inclusive edges, worked by hand")
    func handWorkedTriangle() {
        let (clip, tris) = Self.halfTriangle()
        let r = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 4, height: 4)
        // Pixel centres at NDC ±0.25, ±0.75; covered where x + y ≤ 0 (the diagonal included): 10 pixels.
        #expect(r.triangleIDs.filter { $0 == 0 }.count == 10)
        #expect(r.triangleIDs[0] == 0 && r.triangleIDs[3] == -1 && r.triangleIDs[12] == 0 && r.triangleIDs[15] == 0)
        // Bottom-left pixel (row 3, col 0), NDC (−0.75, −0.75): screen weights (0.75, 0.125, 0.125),
        // divided by w = (1, 1, 2) and renormalised: (0.8, 0.1333…, 0.0666…).
        let p = 12
        #expect(abs(r.barycentrics[2 * p] - 0.8) < 1e-6)
        #expect(abs(r.barycentrics[2 * p + 1] - 0.4 / 3) < 1e-6)
        // z = 0 at every vertex: z/w = 0.
        #expect(r.depth[p] == 0)
    }

    @Test("back faces are culled only when asked")
    func backFaceCulling() {
        let (clip, tris) = Self.halfTriangle(clockwise: true)
        let kept = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 4, height: 4)
        let culled = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 4, height: 4, options: RasterizeOptions(cullBackFaces: true))
        #expect(kept.triangleIDs.filter { $0 == 0 }.count == 10)
        #expect(culled.triangleIDs.allSatisfy { $0 == -1 })
        // The front-facing winding survives culling.
        let (frontClip, front) = Self.halfTriangle()
        #expect(MeshRasterizer.rasterize(clipPositions: frontClip, triangles: front, width: 4, height: 4,
                                         options: RasterizeOptions(cullBackFaces: true)).triangleIDs.contains(0))
    }

    @Test("degenerate, off-screen, behind-the-eye and non-finite triangles draw nothing")
    func emptyCases() {
        let collinear: [Float] = [0, 0, 0, 1, 0.5, 0.5, 0, 1, 1, 1, 0, 1]
        let offScreen: [Float] = [3, 3, 0, 1, 4, 3, 0, 1, 3, 4, 0, 1]
        let behindEye: [Float] = [0, 0, 0, -1, 0.5, 0, 0, -1, 0, 0.5, 0, -1]  // w < 0
        let notFinite: [Float] = [.nan, 0, 0, 1, 0.5, 0, 0, 1, 0, 0.5, 0, 1]
        let beyondFar: [Float] = [0, 0, 2, 1, 0.5, 0, 2, 1, 0, 0.5, 2, 1]
        let clip: [Float] = [collinear, offScreen, behindEye, notFinite, beyondFar].flatMap { $0 }
        let tris: [SIMD3<UInt32>] = (0..<5).map { (t: Int) -> SIMD3<UInt32> in
            let base = UInt32(3 * t)
            return SIMD3(base, base + 1, base + 2)
        }
        let r = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 9, height: 6)
        #expect(r.triangleIDs.allSatisfy { $0 == -1 })
        #expect(MeshRasterizer.rasterize(clipPositions: [], triangles: [], width: 3, height: 2).triangleIDs == [Int32](repeating: -1, count: 6))
    }

    @Test("a triangle crossing the near plane is clipped per pixel, and its depth is exact")
    func nearPlaneClipping() {
        // A floor y = −1 seen by a camera at the origin looking down −Z (OpenGL) / +z (OpenCV):
        // world points in front at z from −0.1 (behind the near plane at 0.5) to −20.
        let camera = Camera(width: 16, height: 16, fovYRadians: 1.2,
                            cameraFromWorld: Camera.lookAtCameraFromWorld(eye: SIMD3(0, 0, 0), target: SIMD3(0, 0, -1)))
        let points: [SIMD3<Float>] = [SIMD3(-20, -1, 5), SIMD3(20, -1, 5), SIMD3(0, -1, -20)]  // one vertex behind the eye
        let clip = camera.clipPositions(points, near: 0.5, far: 50)
        let r = MeshRasterizer.rasterize(clipPositions: clip, triangles: [SIMD3(0, 1, 2)], width: 16, height: 16)
        let reference = MeshReference.rasterize(clipPositions: clip.map(Double.init), triangles: [SIMD3(0, 1, 2)], width: 16, height: 16)
        #expect(r.triangleIDs == reference.triangleIDs)
        // Camera depth by interpolating w; compare with the ray–floor intersection.
        let depth = MeshInterpolate.forward(stride(from: 3, to: 12, by: 4).map { clip[$0] }, channels: 1, triangles: [SIMD3(0, 1, 2)], raster: r)
        var checked = 0
        for row in 0..<16 { for col in 0..<16 where r.triangleIDs[row * 16 + col] == 0 {
            let ray = camera.ray(pixelX: col, pixelY: row)
            let s = (-1 - ray.origin.y) / ray.direction.y
            let expected = s * ray.direction.z * -1  // camera looks down −Z: depth = −z
            #expect(abs(depth[row * 16 + col] - expected) < 1e-3 * expected, "pixel \(col),\(row): \(depth[row * 16 + col]) vs \(expected)")
            #expect(expected >= 0.5 - 1e-4)
            checked += 1
        }}
        #expect(checked > 20)
        // The rows just below the horizon see the floor; the bottom rows would be nearer than 0.5.
        #expect(r.triangleIDs[15 * 16 + 8] == -1 || depth[15 * 16 + 8] >= 0.5)
    }

    @Test("a tessellated screen-filling plane leaves no cracks")
    func watertight() {
        var rng = RNG(seed: 4)
        let n = 23
        var points: [SIMD3<Float>] = []
        for j in 0...n { for i in 0...n {
            var p = SIMD3(-1.3 + 2.6 * Float(i) / Float(n), -1.3 + 2.6 * Float(j) / Float(n), 0)
            if i > 0 && i < n && j > 0 && j < n { p.x += rng.uniform(-0.04...0.04); p.y += rng.uniform(-0.04...0.04); p.z = rng.uniform(-0.2...0.2) }
            points.append(p)
        }}
        var tris: [SIMD3<UInt32>] = []
        for j in 0..<n { for i in 0..<n {
            let a = UInt32(j * (n + 1) + i), b = a + 1, c = a + UInt32(n + 1), d = c + 1
            tris.append(SIMD3(a, b, d)); tris.append(SIMD3(a, d, c))
        }}
        let camera = Camera.lookAt(eye: SIMD3(0.05, -0.03, 2), target: .zero, width: 61, height: 47, fovYRadians: 0.9)
        let clip = camera.clipPositions(points, near: 0.1, far: 10)
        let r = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 61, height: 47, options: RasterizeOptions(cullBackFaces: true))
        #expect(r.triangleIDs.allSatisfy { $0 >= 0 }, "\(r.triangleIDs.filter { $0 < 0 }.count) uncovered pixels")
    }

    @Test("rasterize backward: fast matches reference, reference matches float64 finite differences")
    func rasterizeBackward() {
        let scene = MeshScene(triangleCount: 16, seed: 22, width: 13, height: 11, spread: 0.5, size: 0.8, cameraRadius: 1.6)
        let raster = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: 13, height: 11)
        #expect(raster.triangleIDs.filter { $0 >= 0 }.count > 30)
        let wb = randomWeights(2 * 13 * 11, seed: 1), wd = randomWeights(13 * 11, seed: 2)
        let grad = MeshReference.rasterizeBackward(raster, clipPositions: scene.clip, triangles: scene.triangles, barycentricGradient: wb, depthGradient: wd)
        let fd = finiteDifferences(scene.clip, indices: Array(scene.clip.indices), discrete: {
            MeshReference.rasterize(clipPositions: $0, triangles: scene.triangles, width: 13, height: 11).triangleIDs
        }) { x in
            let r = MeshReference.rasterize(clipPositions: x, triangles: scene.triangles, width: 13, height: 11)
            return weighted(r.barycentrics, wb) + weighted(r.depth, wd)
        }
        var checked = 0, worst = 0.0
        let scale = grad.map(abs).max()!
        for (i, value) in fd { guard let value else { continue }
            worst = max(worst, abs(grad[i] - value) / max(abs(value), 1e-3 * scale)); checked += 1 }
        #expect(checked > scene.clip.count / 2)
        #expect(worst < 1e-5, "worst relative error \(worst)")

        let rasterF = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 13, height: 11)
        #expect(rasterF.triangleIDs == raster.triangleIDs)
        let fast = MeshRasterizer.rasterizeBackward(rasterF, clipPositions: scene.clipFloat, triangles: scene.triangles,
                                                    barycentricGradient: wb.map { Float($0) }, depthGradient: wd.map { Float($0) }, threads: 2)
        let (error, index) = worstRelativeError(fast.map(Double.init), grad)
        #expect(error < 1e-3, "fast vs reference: worst \(error) at \(index)")
    }

    @Test("interpolate: fast matches reference; gradients to attributes and positions match finite differences")
    func interpolate() {
        let scene = MeshScene(triangleCount: 10, seed: 33, width: 12, height: 10, size: 0.9)
        let channels = 3
        let attributes = randomWeights(scene.clip.count / 4 * channels, seed: 5)
        let raster = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: 12, height: 10, options: RasterizeOptions(barycentricDerivatives: true))
        let rasterF = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 12, height: 10, options: RasterizeOptions(barycentricDerivatives: true))
        #expect(rasterF.triangleIDs == raster.triangleIDs)
        let attributesF = attributes.map { Float($0) }
        let out = MeshReference.interpolate(attributes, channels: channels, triangles: scene.triangles, raster: raster)
        let outF = MeshInterpolate.forward(attributesF, channels: channels, triangles: scene.triangles, raster: rasterF, threads: 2)
        #expect(worstRelativeError(outF.map(Double.init), out).error < 1e-3)
        let derivatives = MeshReference.interpolateDerivatives(attributes, channels: channels, triangles: scene.triangles, raster: raster)
        let derivativesF = MeshInterpolate.derivatives(attributesF, channels: channels, triangles: scene.triangles, raster: rasterF)
        #expect(worstRelativeError(derivativesF.map(Double.init), derivatives).error < 1e-3)

        // Screen derivatives against differences of the interpolated attribute across a pixel
        // step inside one triangle (exact for affine-in-screen attributes only to first order;
        // compare with a step-halved central difference of the barycentrics).
        let weights = randomWeights(12 * 10 * channels, seed: 6)
        let (ga, gb) = MeshReference.interpolateBackward(attributes, channels: channels, triangles: scene.triangles, raster: raster, outputGradient: weights)
        let (gaF, gbF) = MeshInterpolate.backward(attributesF, channels: channels, triangles: scene.triangles, raster: rasterF,
                                                  outputGradient: weights.map { Float($0) }, threads: 2)
        #expect(worstRelativeError(gaF.map(Double.init), ga).error < 1e-3)
        #expect(worstRelativeError(gbF.map(Double.init), gb).error < 1e-3)

        // The whole chain, positions → rasterize → interpolate, against finite differences.
        let gPositions = MeshReference.rasterizeBackward(raster, clipPositions: scene.clip, triangles: scene.triangles, barycentricGradient: gb)
        let fdPositions = finiteDifferences(scene.clip, indices: Array(scene.clip.indices), discrete: {
            MeshReference.rasterize(clipPositions: $0, triangles: scene.triangles, width: 12, height: 10).triangleIDs
        }) { x in
            weighted(MeshReference.interpolate(attributes, channels: channels, triangles: scene.triangles,
                                               raster: MeshReference.rasterize(clipPositions: x, triangles: scene.triangles, width: 12, height: 10)), weights)
        }
        var worst = 0.0, checked = 0
        let scale = gPositions.map(abs).max()!
        for (i, v) in fdPositions { guard let v else { continue }; worst = max(worst, abs(gPositions[i] - v) / max(abs(v), 1e-3 * scale)); checked += 1 }
        #expect(checked > scene.clip.count / 2)
        #expect(worst < 1e-5, "positions: worst relative error \(worst)")
        let fdAttributes = finiteDifferences(attributes, indices: Array(attributes.indices), discrete: { _ in [] }) { a in
            weighted(MeshReference.interpolate(a, channels: channels, triangles: scene.triangles, raster: raster), weights)
        }
        for (i, v) in fdAttributes { #expect(abs(ga[i] - v!) < 1e-7) }
    }
}

@Suite("Mesh depth peeling")
struct MeshDepthPeelingTests {
    @Test("layers come out front to back, then empty")
    func twoQuads() {
        // Two screen-filling quads at z/w = −0.5 and 0.25, the far one listed first.
        func quad(_ z: Float) -> [Float] { [-2, -2, z, 1, 2, -2, z, 1, 2, 2, z, 1, -2, 2, z, 1] }
        let clip = quad(0.25) + quad(-0.5)
        let tris: [SIMD3<UInt32>] = [SIMD3(0, 1, 2), SIMD3(0, 2, 3), SIMD3(4, 5, 6), SIMD3(4, 6, 7)]
        let first = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 5, height: 4)
        #expect(first.triangleIDs.allSatisfy { $0 >= 2 } && first.depth.allSatisfy { $0 == -0.5 })
        let second = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 5, height: 4, behind: first)
        #expect(second.triangleIDs.allSatisfy { $0 == 0 || $0 == 1 } && second.depth.allSatisfy { $0 == 0.25 })
        let third = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 5, height: 4, behind: second)
        #expect(third.triangleIDs.allSatisfy { $0 == -1 })
    }

    @Test("peeled layers match the reference on random scenes")
    func matchesReference() {
        let scene = MeshScene(triangleCount: 40, seed: 77, width: 21, height: 17, spread: 0.5, size: 0.8, cameraRadius: 2)
        var fast = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 21, height: 17)
        var reference = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: 21, height: 17)
        for layer in 1...3 {
            fast = MeshRasterizer.rasterize(clipPositions: scene.clipFloat, triangles: scene.triangles, width: 21, height: 17, behind: fast, threads: 2)
            reference = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: 21, height: 17, behind: reference)
            let agree = zip(fast.triangleIDs, reference.triangleIDs).filter { $0 == $1 }.count
            #expect(agree >= 21 * 17 - 3, "layer \(layer): \(21 * 17 - agree) pixels differ")
            if layer == 1 { #expect(reference.triangleIDs.contains { $0 >= 0 }, "the scene has overlapping surfaces") }
        }
    }
}
