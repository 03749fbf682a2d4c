import KilnCore
import Testing
@testable import KilnRender

extension MeshRaster where R == Double {
    var float: MeshRaster<Float> {
        var r = MeshRaster<Float>(width: width, height: height)
        r.barycentrics = barycentrics.map { Float($0) }
        r.depth = depth.map { Float($0) }
        r.triangleIDs = triangleIDs
        r.barycentricDerivatives = barycentricDerivatives?.map { Float($0) }
        return r
    }
}

@Suite("Mesh antialias")
struct MeshAntialiasTests {
    /// A triangle whose only edge in view is vertical at NDC x = `edgeX`, on an 8×4 raster.
    static func verticalEdge(_ edgeX: Float) -> (clip: [Float], triangles: [SIMD3<UInt32>]) {
        ([-3, 0, 0, 1, /**/ edgeX, -3, 0, 1, /**/ edgeX, 3, 0, 1], [SIMD3(0, 1, 2)])
    }

    @Test("blending across a vertical silhouette, worked by hand", arguments: [(Float(0.05), 4, Float(0.2)), (-0.05, 3, 0.8), (0.125, 4, 0.5)])
    func handWorkedEdge(edgeX: Float, column: Int, expected: Float) {
        // Pixel centres in NDC: −7/8 + col/4. Edge at 0.05 crosses the pair (3, 4) at t = 0.7 from
        // column 3: column 4 takes 0.2 of the inside colour. At −0.05, t = 0.3: column 3 gives up
        // 0.2. At 0.125 the edge passes through column 4's centre, which the triangle then covers.
        let (clip, tris) = Self.verticalEdge(edgeX)
        let raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: tris, width: 8, height: 4)
        let color = raster.coverage
        let out = MeshAntialias.forward(color, channels: 1, raster: raster, clipPositions: clip, triangles: tris, topology: MeshTopology(triangles: tris))
        for row in 0..<4 {
            for col in 0..<8 {
                let want = col == column ? expected : color[row * 8 + col]
                #expect(abs(out[row * 8 + col] - want) < 1e-5, "row \(row) col \(col): \(out[row * 8 + col]) vs \(want)")
            }
        }
    }

    @Test("interior edges of a closed mesh are not silhouettes, seams welded by position")
    func interiorEdges() {
        // A cube with every face's vertices split (as UV seams do): welded, all edges have neighbours.
        let cube = TriangleMesh.box(size: SIMD3(1, 1, 1))
        var split = TriangleMesh()
        for t in cube.triangles {
            let base = UInt32(split.positions.count)
            split.positions += [cube.positions[Int(t.x)], cube.positions[Int(t.y)], cube.positions[Int(t.z)]]
            split.triangles.append(SIMD3(base, base + 1, base + 2))
        }
        #expect(MeshTopology(triangles: split.triangles, positions: split.positions).neighbors.allSatisfy { $0 >= 0 })
        #expect(MeshTopology(triangles: split.triangles).neighbors.allSatisfy { $0 == -1 })

        // Rendered with a constant colour, antialias changes only pixels next to the outline.
        let camera = Camera.orbit(azimuthDegrees: 30, elevationDegrees: 25, radius: 3, width: 32, height: 32, fovYRadians: 0.8)
        let clip = camera.clipPositions(split.positions, near: 0.1, far: 10)
        let raster = MeshRasterizer.rasterize(clipPositions: clip, triangles: split.triangles, width: 32, height: 32)
        let color = raster.coverage
        let out = MeshAntialias.forward(color, channels: 1, raster: raster, clipPositions: clip, triangles: split.triangles,
                                        topology: MeshTopology(triangles: split.triangles, positions: split.positions))
        var changed = 0
        for p in 0..<(32 * 32) where out[p] != color[p] {
            changed += 1
            let (row, col) = (p / 32, p % 32)
            let neighbours = [(row, col - 1), (row, col + 1), (row - 1, col), (row + 1, col)].filter { $0.0 >= 0 && $0.0 < 32 && $0.1 >= 0 && $0.1 < 32 }
            #expect(neighbours.contains { raster.triangleIDs[$0.0 * 32 + $0.1] < 0 } || raster.triangleIDs[p] < 0, "pixel \(col),\(row) changed away from the outline")
        }
        #expect(changed > 10)
    }

    @Test("antialias gradients match float64 finite differences on silhouettes; fast matches reference")
    func gradients() {
        let scene = MeshScene(triangleCount: 10, seed: 44, width: 14, height: 12, spread: 0.5, size: 0.8)
        let w = scene.width, h = scene.height, channels = 3
        let topology = MeshTopology(triangles: scene.triangles)
        let raster = MeshReference.rasterize(clipPositions: scene.clip, triangles: scene.triangles, width: w, height: h)
        let color = randomWeights(w * h * channels, seed: 7).map { 0.5 + 0.5 * $0 }
        let weights = randomWeights(w * h * channels, seed: 8)
        let (gc, gp) = MeshReference.antialiasBackward(color, channels: channels, raster: raster, clipPositions: scene.clip,
                                                       triangles: scene.triangles, topology: topology, outputGradient: weights)
        func loss(_ clip: [Double], _ color: [Double]) -> Double {
            let r = MeshReference.rasterize(clipPositions: clip, triangles: scene.triangles, width: w, height: h)
            return weighted(MeshReference.antialias(color, channels: channels, raster: r, clipPositions: clip,
                                                    triangles: scene.triangles, topology: topology), weights)
        }
        // Positions: the colour is an input of its own, held fixed.
        let fd = finiteDifferences(scene.clip, indices: Array(scene.clip.indices), discrete: {
            MeshReference.rasterize(clipPositions: $0, triangles: scene.triangles, width: w, height: h).triangleIDs
        }) { loss($0, color) }
        var worst = 0.0, checked = 0, nonzero = 0
        let scale = gp.map(abs).max()!
        for (i, v) in fd { guard let v else { continue }
            worst = max(worst, abs(gp[i] - v) / max(abs(v), 1e-3 * scale)); checked += 1
            if abs(v) > 1e-6 { nonzero += 1 } }
        #expect(nonzero > 10, "the scene should put silhouettes under many vertices")
        #expect(checked > scene.clip.count / 2)
        #expect(worst < 1e-5, "positions: worst relative error \(worst)")
        let fdColor = finiteDifferences(color, indices: Array(stride(from: 0, to: color.count, by: 5)), discrete: { _ in [] }) { loss(scene.clip, $0) }
        for (i, v) in fdColor { #expect(abs(gc[i] - v!) < 1e-6, "colour \(i): \(gc[i]) vs \(v!)") }

        let rasterF = raster.float
        let outF = MeshAntialias.forward(color.map { Float($0) }, channels: channels, raster: rasterF, clipPositions: scene.clipFloat,
                                         triangles: scene.triangles, topology: topology, threads: 3)
        let out = MeshReference.antialias(color, channels: channels, raster: raster, clipPositions: scene.clip, triangles: scene.triangles, topology: topology)
        #expect(worstRelativeError(outF.map(Double.init), out).error < 1e-4)
        let (gcF, gpF) = MeshAntialias.backward(color.map { Float($0) }, channels: channels, raster: rasterF, clipPositions: scene.clipFloat,
                                                triangles: scene.triangles, topology: topology, outputGradient: weights.map { Float($0) }, threads: 3)
        #expect(worstRelativeError(gcF.map(Double.init), gc).error < 1e-4)
        #expect(worstRelativeError(gpF.map(Double.init), gp).error < 1e-3)
    }

    @Test("gradients stay exact when the silhouette edge lies triangles away from the inside pixel")
    func walkedSilhouetteGradients() {
        // A fine sphere: near the outline its triangles are thinner than a pixel.
        let mesh = TriangleMesh.uvSphere(radius: 1, segments: 40, rings: 20)
        let camera = Camera.orbit(azimuthDegrees: 10, elevationDegrees: 15, radius: 4, width: 24, height: 24, fovYRadians: 0.7)
        let clip = camera.clipPositions(mesh.positions, near: 2, far: 6).map(Double.init)
        let topology = MeshTopology(triangles: mesh.triangles, positions: mesh.positions)
        let raster = MeshReference.rasterize(clipPositions: clip, triangles: mesh.triangles, width: 24, height: 24)
        let facing = MeshAntialias.facing(clip, mesh.triangles)
        var walked = 0, crossings = 0
        MeshReference.forEachPair(raster) { a, b in
            guard let x = MeshAntialias.crossing(a, b, raster: raster, clipPositions: clip, triangles: mesh.triangles, topology: topology, facing: facing) else { return }
            crossings += 1
            if x.triangle != Int(raster.triangleIDs[x.inside]) { walked += 1 }
        }
        #expect(crossings > 40 && walked > 5, "\(crossings) crossings, \(walked) found by walking")

        let color = randomWeights(24 * 24, seed: 3).map { 0.5 + 0.5 * $0 }
        let weights = randomWeights(24 * 24, seed: 4)
        let (_, gp) = MeshReference.antialiasBackward(color, channels: 1, raster: raster, clipPositions: clip, triangles: mesh.triangles,
                                                      topology: topology, outputGradient: weights)
        // Visibility (ids) stays fixed for small steps, so the loss only moves through the crossings.
        let indices = Array(gp.indices.filter { gp[$0] != 0 }.prefix(120))
        #expect(indices.count > 40)
        let fd = finiteDifferences(clip, indices: indices, discrete: {
            MeshRasterizer.rasterize(clipPositions: $0.map { Float($0) }, triangles: mesh.triangles, width: 24, height: 24).triangleIDs
        }) { x in
            weighted(MeshReference.antialias(color, channels: 1, raster: raster, clipPositions: x, triangles: mesh.triangles, topology: topology), weights)
        }
        var worst = 0.0, checked = 0
        let scale = gp.map(abs).max()!
        for (i, v) in fd { guard let v else { continue }; worst = max(worst, abs(gp[i] - v) / max(abs(v), 1e-3 * scale)); checked += 1 }
        #expect(checked > indices.count / 2)
        #expect(worst < 1e-5, "worst relative error \(worst)")
    }
}
