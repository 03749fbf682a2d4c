import Foundation
import Testing

@Suite("kiln export: the surface level and the colours of a soft volume")
struct ExportMeshingTests {
    /// A splat PLY (3DGS layout, SH degree 0) of Gaussians given as (centre, σ, opacity, display RGB).
    static func splatPLY(_ gaussians: [(center: SIMD3<Float>, sigma: Float, opacity: Float, color: SIMD3<Float>)]) -> Data {
        let names = ["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
        var data = Data(("ply\nformat binary_little_endian 1.0\nelement vertex \(gaussians.count)\n" + names.map { "property float \($0)\n" }.joined() + "end_header\n").utf8)
        let c0: Float = 0.28209479177387814  // SH band 0: colour = 0.5 + c0 · f_dc
        for g in gaussians {
            let dc = (g.color - 0.5) / c0, s = Foundation.log(g.sigma), logit = Foundation.log(g.opacity / (1 - g.opacity))
            let row: [Float] = [g.center.x, g.center.y, g.center.z, 0, 0, 0, dc.x, dc.y, dc.z, logit, s, s, s, 1, 0, 0, 0]
            for v in row { withUnsafeBytes(of: v.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        }
        return data
    }

    /// Vertices (position, RGB 0…255) of an ASCII PLY as Assimp writes it.
    static func vertices(ofPLY path: String) throws -> [(SIMD3<Float>, SIMD3<Float>)] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        guard let countLine = lines.first(where: { $0.hasPrefix("element vertex") }), let count = Int(countLine.split(separator: " ")[2]),
              let end = lines.firstIndex(of: "end_header") else { return [] }
        return lines[(end + 1)..<(end + 1 + count)].map { line in
            let v = line.split(separator: " ").compactMap { Float($0) }
            return (SIMD3(v[0], v[1], v[2]), SIMD3(v[6], v[7], v[8]))
        }
    }

    /// A deterministic point in the ball of `radius` (a small LCG: the test needs no RNG from Kiln).
    struct Points {
        var state: UInt64 = 12345
        mutating func uniform() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(state >> 40) / Float(1 << 24)
        }
        mutating func inBall(_ radius: Float) -> SIMD3<Float> {
            while true {
                let p = SIMD3(uniform(), uniform(), uniform()) * 2 - 1
                if (p * p).sum() <= 1 { return radius * p }
            }
        }
    }

    /// Exports a run folder holding only `splats.ply` as ASCII PLY with `extra` flags.
    static func export(_ gaussians: [(center: SIMD3<Float>, sigma: Float, opacity: Float, color: SIMD3<Float>)], in folder: URL, name: String,
                       _ extra: [String] = []) throws -> [(SIMD3<Float>, SIMD3<Float>)] {
        let run = folder.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        try splatPLY(gaussians).write(to: run.appendingPathComponent("splats.ply"))
        let out = folder.path + "/\(name)\(extra.joined()).ply"
        let export = try KilnRun(["export", run.path, "--format", "ply", "--faces", "4000", "--resolution", "64", "--out", out] + extra)
        #expect(export.status == 0, "\(export.stderr)")
        return try vertices(ofPLY: out)
    }

    @Test("vertex colours are what the renders show, not the colour field at the surface")
    func colorsFromRenders() throws {
        try withScratchFolder { folder in
            // A red ball of small opaque Gaussians around one wide blue Gaussian: the renders show the
            // red skin, while at the surface the blue Gaussian carries about half the density.
            var points = Points()
            let ball = (0..<400).map { _ in (center: points.inBall(0.4), sigma: Float(0.05), opacity: Float(0.95), color: SIMD3<Float>(0.9, 0.1, 0.1)) }
            let vertices = try Self.export(ball + [(center: .zero, sigma: 0.35, opacity: 0.95, color: SIMD3(0.1, 0.2, 0.9))], in: folder, name: "core")
            #expect(vertices.count > 1000)
            // (The colour field there is blue-dominant at every vertex: red share 0.0, checked with numpy.)
            let red = vertices.filter { $0.1.x > 2 * $0.1.z }.count
            #expect(Double(red) > 0.9 * Double(vertices.count), "\(red) of \(vertices.count) vertices are red")
        }
    }

    @Test("the default surface follows the renders where a fixed density level tears a sparse volume")
    func levelFromSilhouettes() throws {
        try withScratchFolder { folder in
            // A ball of faint Gaussians: opaque in the renders, but its density stays under 0.5 in places.
            var points = Points()
            let ball = (0..<400).map { _ in (center: points.inBall(0.4), sigma: Float(0.05), opacity: Float(0.3), color: SIMD3<Float>(0.9, 0.1, 0.1)) }
            let chosen = try Self.export(ball, in: folder, name: "sparse"), fixed = try Self.export(ball, in: folder, name: "sparse", ["--level", "0.5"])
            func innerShare(_ v: [(SIMD3<Float>, SIMD3<Float>)]) -> Double {
                Double(v.filter { ($0.0 * $0.0).sum() < 0.09 }.count) / Double(max(1, v.count))
            }
            // Surface deep inside the ball (radius < 0.3) is the level set torn into the gaps between Gaussians.
            #expect(innerShare(chosen) < 0.1 && innerShare(fixed) > innerShare(chosen) + 0.06, "inner share: chosen \(innerShare(chosen)), fixed \(innerShare(fixed))")
        }
    }
}
