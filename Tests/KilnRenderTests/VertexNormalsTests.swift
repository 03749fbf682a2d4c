import KilnCore
import Testing
@testable import KilnRender

@Suite("Vertex normals and the Laplacian smoothness term")
struct VertexNormalsTests {
    /// A sphere with every vertex pushed in or out at random, as flat float64 positions.
    static func bumpySphere(seed: UInt64) -> (positions: [Double], triangles: [SIMD3<UInt32>]) {
        let mesh = TriangleMesh.uvSphere(radius: 0.6, segments: 7, rings: 5)
        var rng = RNG(seed: seed)
        let positions = mesh.positions.flatMap { p -> [Double] in
            let s = Double(rng.uniform(0.8...1.2))
            return [Double(p.x) * s, Double(p.y) * s, Double(p.z) * s]
        }
        return (positions, mesh.triangles)
    }

    @Test("forward matches TriangleMesh.computedVertexNormals")
    func matchesMesh() {
        let (p, triangles) = Self.bumpySphere(seed: 3)
        let mesh = TriangleMesh(positions: stride(from: 0, to: p.count, by: 3).map { SIMD3(Float(p[$0]), Float(p[$0 + 1]), Float(p[$0 + 2])) },
                                triangles: triangles)
        let expected = mesh.computedVertexNormals().flatMap { [Double($0.x), Double($0.y), Double($0.z)] }
        let normals = VertexNormals.forward(positions: p, triangles: triangles).normals
        #expect(zip(normals, expected).allSatisfy { abs($0 - $1) < 1e-5 })
    }

    @Test("backward matches float64 central differences")
    func gradients() {
        let (p, triangles) = Self.bumpySphere(seed: 4)
        let weights = randomWeights(p.count, seed: 5)
        let (_, sums) = VertexNormals.forward(positions: p, triangles: triangles)
        let analytic = VertexNormals.backward(positions: p, triangles: triangles, sums: sums, normalGradient: weights)
        let fd = finiteDifferences(p, indices: Array(p.indices), discrete: { _ in [] }) {
            weighted(VertexNormals.forward(positions: $0, triangles: triangles).normals, weights)
        }
        let numeric = p.indices.map { fd[$0]!! }
        let (error, index) = worstRelativeError(analytic, numeric)
        #expect(error < 1e-6, "worst relative error \(error) at \(index)")
        #expect(numeric.map(abs).max()! > 0.1)
    }

    @Test("Laplacian energy gradient matches float64 central differences; a translation costs nothing")
    func laplacian() {
        let (p, triangles) = Self.bumpySphere(seed: 6)
        let laplacian = UniformLaplacian(triangles: triangles, vertexCount: p.count / 3)
        #expect(laplacian.neighbors.allSatisfy { $0.count >= 2 })
        let delta = randomWeights(p.count, seed: 7).map { 0.1 * $0 }
        let analytic = laplacian.gradient(delta, weight: 2.5)
        let fd = finiteDifferences(delta, indices: Array(delta.indices), discrete: { _ in [] }) { laplacian.energy($0, weight: 2.5) }
        let (error, index) = worstRelativeError(analytic, delta.indices.map { fd[$0]!! })
        #expect(error < 1e-6, "worst relative error \(error) at \(index)")
        let shift = (0..<p.count).map { [0.3, -0.2, 0.7][$0 % 3] }
        #expect(abs(laplacian.energy(shift, weight: 1.0)) < 1e-24)
        #expect(laplacian.energy(delta, weight: 1.0) > 0)
    }
}

@Suite("Gradient smoothing (I + λL)⁻¹")
struct GradientSmoothingTests {
    @Test("solves (I + λL)y = g, keeps a constant field, and damps per-vertex noise")
    func smoothing() {
        let (p, triangles) = VertexNormalsTests.bumpySphere(seed: 8)
        let laplacian = UniformLaplacian(triangles: triangles, vertexCount: p.count / 3)
        let noise = randomWeights(p.count, seed: 9)
        let y = laplacian.smoothed(noise, lambda: 5.0, iterations: 200)
        // The residual of the system it solves.
        let ly = laplacian.apply(y)
        let residual = zip(zip(y, ly), noise).map { ($0.0 + 5 * $0.1) - $1 }.map(abs).max()!
        #expect(residual < 1e-9, "residual \(residual)")
        let roughness = { (v: [Double]) in laplacian.apply(v).reduce(0) { $0 + $1 * $1 } }
        #expect(roughness(y) < 0.05 * roughness(noise), "roughness \(roughness(noise)) → \(roughness(y))")
        let constant = (0..<p.count).map { [0.3, -1.0, 2.0][$0 % 3] }
        #expect(zip(laplacian.smoothed(constant, lambda: 5.0, iterations: 30), constant).allSatisfy { abs($0 - $1) < 1e-12 })
        #expect(laplacian.smoothed(noise, lambda: 0.0, iterations: 30) == noise)
    }
}
