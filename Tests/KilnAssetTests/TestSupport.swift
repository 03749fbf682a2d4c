import Foundation
import KilnCore

/// A fresh folder under the system temporary folder, removed after `body`.
func withTemporaryFolder<R>(_ body: (URL) throws -> R) throws -> R {
    let url = URL(fileURLWithPath: NSTemporaryDirectory())
        .appendingPathComponent("kiln-test-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Names of the visible files in a folder, sorted (temporary files start with a dot).
func visibleFiles(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
}

/// All files in a folder, hidden ones included.
func allFiles(_ folder: URL) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
}

/// A small deterministic generator for test data (SplitMix64).
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func float() -> Float { Float(next() >> 40) / Float(1 << 24) }
    mutating func float(_ range: ClosedRange<Float>) -> Float { range.lowerBound + float() * (range.upperBound - range.lowerBound) }
}

/// A closed, outward-oriented cube with UVs, vertex colours, a 4×2 texture and a coloured material.
func sampleCube() -> TriangleMesh {
    let p: [SIMD3<Float>] = [[-1, -1, -1], [1, -1, -1], [1, 1, -1], [-1, 1, -1], [-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, 1, 1]]
    var mesh = TriangleMesh()
    mesh.positions = p.map { $0 * 0.5 + SIMD3(0.25, 0, -0.5) }
    mesh.uvs = p.map { SIMD2(($0.x + 1) / 2, ($0.y + 1) / 4 + 0.25) }
    mesh.colors = p.map { SIMD4(($0.x + 1) / 2, ($0.y + 1) / 2, ($0.z + 1) / 2, 1) }
    mesh.triangles = [[0, 2, 1], [0, 3, 2], [4, 5, 6], [4, 6, 7], [0, 1, 5], [0, 5, 4],
                      [2, 3, 7], [2, 7, 6], [1, 2, 6], [1, 6, 5], [0, 4, 7], [0, 7, 3]]
    var texture = Image(width: 4, height: 2, channels: 4, fill: 1)
    for x in 0..<4 { for y in 0..<2 { texture[x, y, 0] = Float(x) / 3; texture[x, y, 1] = Float(y) } }
    mesh.material = TriangleMesh.Material(name: "cube_material", baseColorFactor: SIMD4(0.8, 0.6, 0.4, 1),
                                          metallicFactor: 0.25, roughnessFactor: 0.75, baseColorTexture: texture)
    return mesh
}
