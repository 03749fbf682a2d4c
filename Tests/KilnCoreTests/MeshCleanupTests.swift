import Foundation
import Testing
@testable import KilnCore

// MARK: - Helpers

/// Every triangle with its own three vertices (as marching cubes or an STL file gives them).
private func soup(_ mesh: TriangleMesh, jitter: Float = 0, seed: UInt64 = 1) -> TriangleMesh {
    var rng = RNG(seed: seed)
    var out = TriangleMesh(material: mesh.material)
    for t in mesh.triangles {
        for i in [t.x, t.y, t.z] {
            let p = mesh.positions[Int(i)]
            out.positions.append(p + jitter * SIMD3(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)))
            if !mesh.normals.isEmpty { out.normals.append(mesh.normals[Int(i)]) }
            if !mesh.uvs.isEmpty { out.uvs.append(mesh.uvs[Int(i)]) }
            if !mesh.colors.isEmpty { out.colors.append(mesh.colors[Int(i)]) }
        }
        let base = UInt32(out.positions.count - 3)
        out.triangles.append(SIMD3(base, base + 1, base + 2))
    }
    return out
}

/// Why the mesh is not closed and consistently oriented (every edge used once in each direction),
/// or nil.
private func closedOrientedFailure(_ mesh: TriangleMesh) -> String? {
    var directed: [SIMD2<UInt32>: Int] = [:]
    for t in mesh.triangles {
        for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] { directed[SIMD2(a, b), default: 0] += 1 }
    }
    for (edge, count) in directed {
        if count != 1 { return "edge \(edge) is used \(count) times in one direction" }
        if directed[SIMD2(edge.y, edge.x)] != 1 { return "edge \(edge) has no opposite (a hole or a flipped triangle)" }
    }
    return nil
}

/// A flat `n × n` grid of quads in the XZ plane over [0, size]², facing +Y.
private func grid(_ n: Int, size: Float = 1) -> TriangleMesh {
    var mesh = TriangleMesh()
    for j in 0...n {
        for i in 0...n {
            mesh.positions.append(SIMD3(size * Float(i) / Float(n), 0, size * Float(j) / Float(n)))
            mesh.uvs.append(SIMD2(Float(i) / Float(n), Float(j) / Float(n)))
        }
    }
    let row = UInt32(n + 1)
    for j in 0..<UInt32(n) {
        for i in 0..<UInt32(n) {
            let a = j * row + i, b = a + 1, c = a + row, d = c + 1
            mesh.triangles.append(SIMD3(a, c, d))  // counter-clockwise seen from +Y
            mesh.triangles.append(SIMD3(a, d, b))
        }
    }
    return mesh
}

/// A unit cube centred at the origin, each face an `n × n` grid with its own vertices and normal:
/// its edges are hard-edge seams.
private func subdividedBox(_ n: Int) -> TriangleMesh {
    let faces: [(SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)] = [
        (SIMD3(1, 0, 0), SIMD3(0, 0, -1), SIMD3(0, 1, 0)), (SIMD3(-1, 0, 0), SIMD3(0, 0, 1), SIMD3(0, 1, 0)),
        (SIMD3(0, 1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, -1)), (SIMD3(0, -1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1)),
        (SIMD3(0, 0, 1), SIMD3(1, 0, 0), SIMD3(0, 1, 0)), (SIMD3(0, 0, -1), SIMD3(-1, 0, 0), SIMD3(0, 1, 0)),
    ]
    var parts: [TriangleMesh] = []
    for (normal, right, up) in faces {
        var face = grid(n, size: 1)
        // The grid lies in XZ facing +Y: x → right, z → −up keeps it counter-clockwise about `normal`.
        face.positions = face.positions.map { 0.5 * normal + ($0.x - 0.5) * right - ($0.z - 0.5) * up }
        face.normals = Array(repeating: normal, count: face.vertexCount)
        parts.append(face)
    }
    return TriangleMesh.merged(parts)
}

/// Plain versions of `TriangleMesh`'s clean-up, for the tests.
private enum TriangleMeshReference {
    /// The brute-force welding rule: each vertex joins the lowest-index kept vertex within tolerance
    /// whose attributes match. O(V²): the reference for the spatial-hash version.
    static func weldRepresentatives(_ mesh: TriangleMesh, tolerance: Float, attributeTolerance: Float) -> [Int] {
        var representative = Array(mesh.positions.indices)
        var kept: [Int] = []
        for i in mesh.positions.indices {
            let match = kept.first { j in
                lengthSquared(mesh.positions[i] - mesh.positions[j]) <= tolerance * tolerance
                    && (mesh.normals.isEmpty || maxAbs(mesh.normals[i] - mesh.normals[j]) <= attributeTolerance)
                    && (mesh.uvs.isEmpty || max(abs(mesh.uvs[i].x - mesh.uvs[j].x), abs(mesh.uvs[i].y - mesh.uvs[j].y)) <= attributeTolerance)
                    && (mesh.colors.isEmpty || maxAbs(mesh.colors[i] - mesh.colors[j]) <= attributeTolerance)
            }
            if let match { representative[i] = match } else { kept.append(i) }
        }
        return representative
    }
}

// MARK: - Degenerate triangles

@Suite("Mesh clean-up")
struct MeshCleanupTests {
    @Test("Degenerate, non-finite and duplicate triangles go; reversed twins and good slivers stay")
    func degenerateTriangles() {
        let h: Float = 1e-8  // a height far below the 1e-6 relative tolerance
        var mesh = TriangleMesh(positions: [
            SIMD3(0, 0, 0), SIMD3(1, 0, 0), SIMD3(0, 1, 0),  // 0–2: a good triangle
            SIMD3(2, 0, 0), SIMD3(0.5, h, 0),  // 3–4: with 0 and 1, caps on the x axis
            SIMD3(.nan, 0, 0), SIMD3(0, .infinity, 0),  // 5–6
            SIMD3(0.5, 1e-3, 0),  // 7: a thin but real sliver with 0 and 1
        ])
        mesh.triangles = [
            SIMD3(0, 1, 2),  // kept
            SIMD3(0, 0, 1),  // repeated index
            SIMD3(0, 1, 3),  // collinear
            SIMD3(0, 4, 1),  // height 1e-8 over a unit edge
            SIMD3(0, 1, 5), SIMD3(6, 1, 2),  // non-finite corners
            SIMD3(1, 2, 0), SIMD3(2, 0, 1),  // rotations of the first: duplicates
            SIMD3(0, 2, 1),  // the reversed twin: kept
            SIMD3(0, 7, 1),  // kept: height 1e-3
        ]
        let step = mesh.filteringDegenerateTriangles(areaEpsilon: 1e-6, removingDuplicates: true)
        #expect(step.mesh.triangles == [SIMD3(0, 1, 2), SIMD3(0, 2, 1), SIMD3(0, 7, 1)])
        #expect(step.degenerate == 5 && step.duplicates == 2)
        #expect(step.mesh.positions.count == mesh.positions.count, "vertices are kept")
        #expect(mesh.removingDegenerateTriangles(removingDuplicates: false).triangleCount == 5)

        // The tolerance is relative: the same shapes at any scale give the same answer.
        for scale: Float in [1e-3, 1e3] {
            var scaled = mesh
            scaled.positions = mesh.positions.map { $0 * scale }
            #expect(scaled.removingDegenerateTriangles().triangles == step.mesh.triangles, "scale \(scale)")
        }
        #expect(TriangleMesh().removingDegenerateTriangles() == TriangleMesh())
    }

    // MARK: Welding

    @Test("A triangle soup welds back to the shared mesh; seams and hard edges stay split")
    func weldingSoup() throws {
        let sphere = TriangleMesh.uvSphere(segments: 16, rings: 8)
        let welded = soup(sphere, jitter: 1e-6).mergingVertices(tolerance: 1e-4)
        // Attributes keep the UV seam and the pole fans split: exactly the sphere's vertices.
        #expect(welded.vertexCount == sphere.vertexCount)
        #expect(welded.triangleCount == sphere.triangleCount)
        #expect(abs(welded.surfaceArea - sphere.surfaceArea) < 1e-4)

        let solid = soup(sphere, jitter: 1e-6).mergingVertices(tolerance: 1e-4, ignoringAttributes: true)
        #expect(solid.vertexCount == 2 + 7 * 16, "poles + 7 rings of 16")
        #expect(closedOrientedFailure(solid) == nil)
        #expect(sphere.mergingVertices(tolerance: 1e-4).vertexCount == sphere.vertexCount, "the seam is not welded")

        // A box's faces meet at hard edges: three normals per corner.
        let box = TriangleMesh.box()
        #expect(box.mergingVertices(tolerance: 1e-4) == box)
        let smooth = box.mergingVertices(tolerance: 1e-4, ignoringAttributes: true)
        #expect(smooth.vertexCount == 8 && smooth.triangleCount == 12)
        #expect(closedOrientedFailure(smooth) == nil)
        for (p, n) in zip(smooth.positions, smooth.normals) {
            #expect(maxAbs(n - normalize(p)) < 1e-5, "corner normals average the three faces")
        }
    }

    @Test("Welding matches the brute-force rule on random clustered points", arguments: [UInt64(1), 2, 3])
    func weldingMatchesReference(seed: UInt64) {
        var rng = RNG(seed: seed)
        var mesh = TriangleMesh()
        let tolerance: Float = 0.05
        for _ in 0..<400 {
            // Points on a coarse lattice plus jitter of the order of the tolerance: many near ties.
            let lattice = SIMD3<Float>(Float(Int(rng.nextFloat() * 5)), Float(Int(rng.nextFloat() * 5)), Float(Int(rng.nextFloat() * 5))) * 0.1
            mesh.positions.append(lattice + 0.04 * SIMD3(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)))
            mesh.uvs.append(rng.nextFloat() < 0.8 ? SIMD2(0, 0) : SIMD2(1, 0))
        }
        for _ in 0..<300 {
            mesh.triangles.append(SIMD3(UInt32(rng.next() % 400), UInt32(rng.next() % 400), UInt32(rng.next() % 400)))
        }
        for ignoring in [false, true] {
            let fast = mesh.weldRepresentatives(tolerance: tolerance, attributeTolerance: 1e-4, ignoringAttributes: ignoring)
            var plain = mesh
            if ignoring { plain.uvs = [] }
            let reference = TriangleMeshReference.weldRepresentatives(plain, tolerance: tolerance, attributeTolerance: 1e-4)
            let differ = fast.indices.filter { fast[$0] != reference[$0] }
            #expect(differ.isEmpty, "ignoring attributes \(ignoring): \(differ.count) differ, first \(differ.prefix(5).map { ($0, fast[$0], reference[$0]) })")
            #expect(fast.indices.allSatisfy { fast[$0] <= $0 && fast[fast[$0]] == fast[$0] })
        }
        let welded = mesh.mergingVertices(tolerance: tolerance)
        #expect(welded.triangles.allSatisfy { $0.x != $0.y && $0.y != $0.z && $0.z != $0.x }, "collapsed triangles are dropped")
        #expect(welded.validationFailure() == nil)
    }

    @Test("Welding with zero tolerance joins equal positions only; non-finite vertices stay")
    func weldingExact() {
        let mesh = TriangleMesh(positions: [SIMD3(0, 0, 0), SIMD3(1, 0, 0), SIMD3(0, 1, 0), SIMD3(1, 0, 0),
                                            SIMD3(1, 1e-6, 0), SIMD3(.nan, 0, 0), SIMD3(.nan, 0, 0)],
                                triangles: [SIMD3(0, 1, 2), SIMD3(3, 4, 2), SIMD3(5, 6, 0)])
        let welded = mesh.mergingVertices(tolerance: 0)
        #expect(welded.vertexCount == 6)
        #expect(welded.triangles.prefix(2) == [SIMD3(0, 1, 2), SIMD3(1, 3, 2)])
        #expect(TriangleMesh().mergingVertices(tolerance: 1) == TriangleMesh())
    }

    // MARK: Components

    @Test("Components join across attribute seams; tiny floating triangles are removed by area")
    func components() {
        let sphere = TriangleMesh.uvSphere(segments: 24, rings: 12)
        var mesh = sphere
        for k in 0..<3 {  // three specks far from the sphere, one triangle each
            let base = UInt32(mesh.positions.count)
            let o = SIMD3<Float>(3 + Float(k), 0, 0)
            mesh.positions += [o, o + SIMD3(0.01, 0, 0), o + SIMD3(0, 0.01, 0)]
            mesh.normals += Array(repeating: SIMD3(0, 0, 1), count: 3)
            mesh.uvs += Array(repeating: .zero, count: 3)
            mesh.colors += Array(repeating: SIMD4(1, 1, 1, 1), count: 3)
            mesh.triangles.append(SIMD3(base, base + 1, base + 2))
        }
        let parts = mesh.connectedComponents()
        #expect(parts.count == 4)
        #expect(parts.triangleCounts == [sphere.triangleCount, 1, 1, 1])
        #expect(Array(parts.labels.suffix(3)) == [1, 2, 3])
        #expect(abs(parts.areas[0] - sphere.surfaceArea) < 1e-3)

        let step = mesh.filteringSmallComponents(minimumAreaFraction: 0.001)
        #expect(step.mesh.triangles == sphere.triangles)
        #expect(step.components == 3 && step.triangles == 3)
        #expect(mesh.removingSmallComponents(minimumAreaFraction: 0) == mesh)
        #expect(TriangleMesh.box().connectedComponents().count == 1, "faces with their own vertices are one box")
        #expect(TriangleMesh().connectedComponents().count == 0)
    }

    // MARK: Decimation

    @Test("A 20k-triangle sphere decimates to 2k: closed, oriented, same area and volume, on the sphere")
    func decimateSphere() {
        let radius: Float = 2
        let sphere = TriangleMesh.uvSphere(radius: radius, segments: 128, rings: 80)
            .mergingVertices(tolerance: 1e-5, ignoringAttributes: true)
        #expect(sphere.triangleCount == 20224)
        #expect(closedOrientedFailure(sphere) == nil)
        let out = sphere.decimated(toTriangleCount: 2000)
        #expect(out.triangleCount <= 2000 && out.triangleCount >= 1990)
        #expect(closedOrientedFailure(out) == nil)
        #expect(out.validationFailure() == nil)
        let areaError = abs(out.surfaceArea / sphere.surfaceArea - 1)
        let volumeError = abs(out.signedVolume / sphere.signedVolume - 1)
        #expect(areaError < 0.02 && volumeError < 0.02, "area off by \(areaError), volume by \(volumeError)")
        let worst = out.positions.map { abs(length($0) - radius) }.max() ?? 0
        #expect(worst < 0.01 * radius, "farthest vertex is \(worst) off the sphere")
        #expect(out.normals.allSatisfy { abs(length($0) - 1) < 1e-4 })
    }

    @Test("Decimating across UV seams opens no crack and keeps UVs in range")
    func decimateAcrossSeams() {
        let sphere = TriangleMesh.uvSphere(segments: 48, rings: 24)
        let out = sphere.decimated(toTriangleCount: 600)
        #expect(out.triangleCount <= 600)
        // Weld by position: a crack anywhere would show as an open edge.
        #expect(closedOrientedFailure(out.mergingVertices(tolerance: 1e-5, ignoringAttributes: true)) == nil)
        #expect(out.uvs.allSatisfy { $0.x >= 0 && $0.x <= 1 && $0.y >= 0 && $0.y <= 1 })
        #expect(abs(out.signedVolume / sphere.signedVolume - 1) < 0.03)
        #expect(sphere.decimated(toTriangleCount: 600) == out, "deterministic")
    }

    @Test("A flat grid keeps its outline and corners")
    func decimateGrid() {
        let plane = grid(24)
        let out = plane.decimated(toTriangleCount: 100)
        #expect(out.triangleCount <= 100)
        #expect(out.positions.allSatisfy { $0.y == 0 }, "stays flat")
        for corner in [SIMD3<Float>(0, 0, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1), SIMD3(1, 0, 1)] {
            #expect(out.positions.contains(corner), "corner \(corner) kept")
        }
        #expect(abs(out.surfaceArea - 1) < 1e-4, "area \(out.surfaceArea)")
        // Every open edge still lies on the square's border.
        var undirected: [SIMD2<UInt32>: Int] = [:]
        for t in out.triangles {
            for (a, b) in [(t.x, t.y), (t.y, t.z), (t.z, t.x)] { undirected[SIMD2(min(a, b), max(a, b)), default: 0] += 1 }
        }
        for (edge, count) in undirected where count == 1 {
            let a = out.positions[Int(edge.x)], b = out.positions[Int(edge.y)]
            let onBorder = (a.x == b.x && (a.x == 0 || a.x == 1)) || (a.z == b.z && (a.z == 0 || a.z == 1))
            #expect(onBorder, "open edge \(a) – \(b) left the border")
        }
        #expect(out.triangles.allSatisfy { t in
            cross(out.positions[Int(t.y)] - out.positions[Int(t.x)], out.positions[Int(t.z)] - out.positions[Int(t.x)]).y > 0
        }, "no triangle flipped")
    }

    @Test("A box with hard edges stays a box: edges slide along themselves, corners stay")
    func decimateHardEdges() {
        let box = subdividedBox(8)
        #expect(closedOrientedFailure(box.mergingVertices(tolerance: 1e-5, ignoringAttributes: true)) == nil)
        #expect(abs(box.signedVolume - 1) < 1e-5)
        let out = box.decimated(toTriangleCount: 60)
        #expect(out.triangleCount <= 60)
        #expect(closedOrientedFailure(out.mergingVertices(tolerance: 1e-5, ignoringAttributes: true)) == nil)
        #expect(abs(out.signedVolume - 1) < 1e-4 && abs(out.surfaceArea - 6) < 1e-4, "volume \(out.signedVolume), area \(out.surfaceArea)")
        for (p, n) in zip(out.positions, out.normals) {
            #expect(abs(dot(p, n) - 0.5) < 1e-5, "vertex \(p) left its face \(n)")
        }
        for corner in 0..<8 {
            let c = SIMD3<Float>(corner & 1 == 0 ? -0.5 : 0.5, corner & 2 == 0 ? -0.5 : 0.5, corner & 4 == 0 ? -0.5 : 0.5)
            #expect(out.positions.contains { maxAbs($0 - c) < 1e-6 }, "corner \(c) kept")
        }
    }

    @Test("Decimation edge cases: no-op budget, empty mesh, a tetrahedron cannot shrink")
    func decimateEdgeCases() {
        let sphere = TriangleMesh.uvSphere()
        #expect(sphere.decimated(toTriangleCount: sphere.triangleCount) == sphere)
        #expect(sphere.decimated(toTriangleCount: 1_000_000) == sphere)
        #expect(TriangleMesh().decimated(toTriangleCount: 0) == TriangleMesh())
        let tetrahedron = TriangleMesh(positions: [SIMD3(1, 1, 1), SIMD3(1, -1, -1), SIMD3(-1, 1, -1), SIMD3(-1, -1, 1)],
                                       triangles: [SIMD3(0, 1, 2), SIMD3(0, 2, 3), SIMD3(0, 3, 1), SIMD3(1, 3, 2)])
        #expect(closedOrientedFailure(tetrahedron) == nil)
        #expect(tetrahedron.decimated(toTriangleCount: 0) == tetrahedron)
        let coarse = sphere.mergingVertices(tolerance: 1e-5, ignoringAttributes: true).decimated(toTriangleCount: 0)
        #expect(coarse.triangleCount == 4 && closedOrientedFailure(coarse) == nil, "stops at a tetrahedron")
    }

    @Test("The quadric minimiser matches the corner of three planes and declines flat regions")
    func quadricPlacement() {
        var q = Quadric()
        let corner = SIMD3<Double>(0.3, -0.2, 0.7)
        for n in [SIMD3<Double>(1, 0, 0), SIMD3(0, 1, 0), SIMD3(0, 0, 1)] {
            q += Quadric(normal: n, offset: -(n * corner).sum(), weight: 2)
        }
        let p = q.minimizer()
        #expect(p.map { (($0 - corner) * ($0 - corner)).sum() < 1e-20 } == true)
        #expect(abs(q.value(at: corner)) < 1e-15 && abs(q.value(at: corner + SIMD3(1, 0, 0)) - 2) < 1e-12)
        let flat = Quadric(normal: SIMD3(0, 1, 0), offset: 0, weight: 1) + Quadric(normal: SIMD3(0, 1, 0), offset: 0, weight: 3)
        #expect(flat.minimizer() == nil)
    }

    // MARK: Everything for export

    @Test("cleanedForExport chains the steps and reports what each removed")
    func cleanedForExport() {
        var mesh = soup(TriangleMesh.uvSphere(segments: 32, rings: 16), jitter: 1e-7)
        mesh.uvs = []  // no seams: welds into one closed sphere
        mesh.normals = []
        let sphereTriangles = mesh.triangleCount
        let base = UInt32(mesh.positions.count)
        mesh.positions += [SIMD3(5, 0, 0), SIMD3(5.01, 0, 0), SIMD3(5, 0.01, 0), SIMD3(5, 0, 0.01), SIMD3(.nan, 0, 0)]
        mesh.colors += Array(repeating: SIMD4(1, 0, 0, 1), count: 5)
        mesh.triangles += [SIMD3(base, base + 1, base + 2), SIMD3(base, base + 2, base + 3),  // an island
                           SIMD3(0, 0, 1), SIMD3(base, base + 1, base + 4)]  // degenerate, non-finite
        var options = MeshCleanupOptions()
        options.maximumTriangleCount = 300
        let result = mesh.cleanedForExport(options)
        let r = result.report
        #expect(r.degenerateTriangles == 2 && r.duplicateTriangles == 0)
        #expect(r.mergedVertices == 3 * sphereTriangles - (2 + 15 * 32))
        #expect(r.islands == 1 && r.islandTriangles == 2)
        #expect(r.decimatedFrom == sphereTriangles && (r.decimatedTo ?? .max) <= 300)
        #expect(result.mesh.triangleCount == r.decimatedTo)
        #expect(closedOrientedFailure(result.mesh) == nil)
        #expect(result.mesh.validationFailure() == nil)
        #expect(r.description == "removed 2 degenerate triangles, merged \(r.mergedVertices) vertices, removed 1 island (2 triangles); decimated \(sphereTriangles) → \(result.mesh.triangleCount) triangles")
        #expect(TriangleMesh().cleanedForExport().mesh == TriangleMesh())
    }
}
