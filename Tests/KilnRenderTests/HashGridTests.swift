import KilnCore
import Testing
@testable import KilnRender

@Suite("Hash-grid encoding")
struct HashGridTests {
    /// Small enough that coarse levels are dense and fine ones hash.
    static let grid = HashGrid(levels: 6, featuresPerLevel: 2, log2TableSize: 10, baseResolution: 4, maxResolution: 64)

    static func inputs(_ n: Int, seed: UInt64) -> (points: [Float], table: [Float]) {
        var rng = RNG(seed: seed)
        var points = rng.uniforms(count: 3 * n, in: 0...1)
        points[0] = 0; points[1] = 1; points[2] = 1.2  // corners and an outside point are clamped
        return (points, rng.uniforms(count: grid.parameterCount, in: -1...1))
    }

    @Test("resolutions grow geometrically from base to max; coarse levels are dense, fine ones hashed")
    func layout() {
        let g = Self.grid
        #expect((0..<g.levels).map { g.resolution(level: $0) } == [4, 6, 12, 21, 36, 64])
        #expect(g.slot(1, 2, 3, resolution: 4) == 1 + 5 * (2 + 5 * 3))  // 5³ = 125 ≤ 1024: dense
        var rng = RNG(seed: 4)
        let hashed = (0..<200).map { _ in g.slot(Int(rng.next() % 37), Int(rng.next() % 37), Int(rng.next() % 37), resolution: 36) }
        // 200 random corners in 1024 slots: about 182 distinct if the hash spreads them.
        #expect(hashed.allSatisfy { (0..<1024).contains($0) } && Set(hashed).count > 165, "\(Set(hashed).count) distinct")
    }

    @Test("forward matches the float64 reference, for 1 and 3 threads, 1, 2 (the paired kernel) and 3 features per level",
          arguments: [1, 3], [1, 2, 3])
    func forward(threads: Int, features: Int) {
        var grid = Self.grid
        grid.featuresPerLevel = features
        var rng = RNG(seed: 1)
        var points = rng.uniforms(count: 3 * 300, in: 0...1)
        points[0] = 0; points[1] = 1; points[2] = 1.2; points[3] = -0.3  // corners and outside points are clamped
        let table = rng.uniforms(count: grid.parameterCount, in: -1...1)
        let fast = grid.forward(points: points, table: table, threads: threads)
        let reference = HashGridReference.forward(grid, points: points.map(Double.init), table: table.map(Double.init))
        let worst = zip(fast, reference).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 1e-5, "worst \(worst)")
    }

    @Test("backward of the paired kernel equals the generic one's, and both are Jᵀg", arguments: [2, 3])
    func backwardKernels(features: Int) {
        var grid = Self.grid
        grid.featuresPerLevel = features
        var rng = RNG(seed: 5)
        let points = rng.uniforms(count: 3 * 150, in: -0.1...1.1)
        let table = rng.uniforms(count: grid.parameterCount, in: -1...1)
        var g = rng.uniforms(count: 150 * grid.outputWidth, in: -1...1)
        for i in stride(from: 0, to: g.count, by: 7) { g[i] = 0 }  // skipped zero gradients
        let dTable = grid.backward(points: points, featureGradient: g, threads: 2)
        let features64 = HashGridReference.forward(grid, points: points.map(Double.init), table: table.map(Double.init))
        let lhs = zip(features64, g).map { $0 * Double($1) }.reduce(0, +)
        let rhs = zip(table, dTable).map { Double($0) * Double($1) }.reduce(0, +)
        #expect(abs(lhs - rhs) < 1e-3 * max(1, abs(lhs)), "\(lhs) vs \(rhs)")
        // Every table entry against the float64 transpose, slot by slot.
        let reference = HashGridReference.backward(grid, points: points.map(Double.init), featureGradient: g.map(Double.init))
        // The reference backward is the reference forward's transpose: ⟨F t, g⟩ = ⟨t, Fᵀ g⟩ in float64.
        let transposed = zip(table, reference).map { Double($0) * $1 }.reduce(0, +)
        #expect(abs(lhs - transposed) < 1e-9 * max(1, abs(lhs)), "\(lhs) vs \(transposed)")
        let worst = zip(dTable, reference).map { abs(Double($0) - $1) }.max()!
        #expect(worst < 1e-4, "worst \(worst)")
    }

    @Test("backward is the transpose of forward: ⟨J t, g⟩ = ⟨t, Jᵀ g⟩, and matches central differences")
    func backward() {
        let (points, table) = Self.inputs(200, seed: 2)
        var rng = RNG(seed: 3)
        let g = rng.uniforms(count: 200 * Self.grid.outputWidth, in: -1...1)
        let dTable = Self.grid.backward(points: points, featureGradient: g, threads: 2)
        // The encoding is linear in the table, so the loss ⟨features, g⟩ has gradient Jᵀ g exactly.
        let features = HashGridReference.forward(Self.grid, points: points.map(Double.init), table: table.map(Double.init))
        let lhs = zip(features, g).map { $0 * Double($1) }.reduce(0, +)
        let rhs = zip(table, dTable).map { Double($0) * Double($1) }.reduce(0, +)
        #expect(abs(lhs - rhs) < 1e-3 * max(1, abs(lhs)), "\(lhs) vs \(rhs)")
        for k in stride(from: 0, to: table.count, by: 97) {
            var up = table.map(Double.init), down = up
            up[k] += 0.5; down[k] -= 0.5
            let numeric = (zip(HashGridReference.forward(Self.grid, points: points.map(Double.init), table: up), g).map { $0 * Double($1) }.reduce(0, +)
                - zip(HashGridReference.forward(Self.grid, points: points.map(Double.init), table: down), g).map { $0 * Double($1) }.reduce(0, +))
            #expect(abs(numeric - Double(dTable[k])) < 1e-4 * max(1, abs(numeric)), "slot \(k): \(numeric) vs \(dTable[k])")
        }
        #expect(Self.grid.backward(points: points, featureGradient: g, threads: 1) == Self.grid.backward(points: points, featureGradient: g, threads: 1))
    }
}
