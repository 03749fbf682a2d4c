import Foundation
import KilnAsset
import KilnCore

/// `kiln demo`: a procedural snowman and crate exported in every mesh format, splats sampled on
/// the snowman (3DGS PLY and .splat), point previews with their cameras (transforms.json), and
/// every file read back through the importers, with what came back in summary.json.
public struct DemoJob {
    public var folder: URL
    public var seed: UInt64
    public var splats: Int
    public var size: Int

    public init(folder: URL, seed: UInt64, splats: Int, size: Int) { (self.folder, self.seed, self.splats, self.size) = (folder, seed, splats, size) }

    /// Writes the files into `folder` (which must exist) and reads them back.
    public func run() throws {
        let clock = ContinuousClock()
        let start = clock.now

        let snowman = DemoAssets.snowman()
        let crate = DemoAssets.crate()
        var exported: [(file: URL, source: TriangleMesh)] = []
        for format in MeshFormat.allCases {
            let url = folder.appendingPathComponent("snowman.\(format)")
            try MeshExport.write(snowman, to: url, format: format)
            exported.append((url, snowman))
        }
        for format in [MeshFormat.glb, .obj] {
            let url = folder.appendingPathComponent("crate.\(format)")
            try MeshExport.write(crate, to: url, format: format)
            exported.append((url, crate))
        }

        var rng = RNG(seed: seed)
        let cloud = GaussianCloud.sampled(on: snowman, count: splats, rng: &rng)
        try GaussianCloudIO.write(cloud, to: folder.appendingPathComponent("splats.ply"))
        try GaussianCloudIO.write(cloud, to: folder.appendingPathComponent("splats.splat"))

        // Point previews around the splats, and the cameras in the NeRF convention.
        let (lo, hi) = cloud.bounds!
        let centre = (lo + hi) / 2, radius = length(hi - lo) * 1.1
        let cameras = (0..<8).map { i in
            Camera.orbit(azimuthDegrees: Float(i) * 45, elevationDegrees: 15, radius: radius, target: centre,
                         width: size, height: size, fovYRadians: radians(degrees: 49))
        }
        let previews = cameras.map { PointPreview.render(cloud, camera: $0) }
        let sheet = Image.contactSheet(previews, columns: 4, labels: (0..<8).map { "azimuth \($0 * 45)" })
        let settings = DemoSettings(splats: splats, tileSize: size, elevationDegrees: 15, views: cameras.count)
        try PNG.write(sheet, to: folder.appendingPathComponent("preview.png"),
                      metadata: KilnMetadata(command: "demo", prompt: "a snowman with a carrot nose", seed: seed, settings: settings))
        let transforms = try NeRFTransforms(cameras: cameras, filePaths: (0..<8).map { "preview_\($0)" })
        try FileIO.writeAtomically(transforms.jsonData(), to: folder.appendingPathComponent("transforms.json"))

        // Read every export back through the isolated importer and record what came back.
        var checks: [DemoCheck] = []
        for (file, source) in exported {
            let back = try MeshImport.read(file).mesh
            checks.append(DemoCheck(file: file.lastPathComponent, vertices: back.vertexCount, triangles: back.triangleCount,
                                    sourceTriangles: source.triangleCount, colors: !back.colors.isEmpty, uvs: !back.uvs.isEmpty,
                                    texture: back.material.baseColorTexture.map { "\($0.width)x\($0.height)" },
                                    areaRelativeError: abs(back.surfaceArea - source.surfaceArea) / source.surfaceArea))
        }
        let reread = try GaussianCloudIO.read(folder.appendingPathComponent("splats.ply"))
        let summary = DemoSummary(seed: seed, splats: cloud.count, splatPLYExact: reread == cloud, meshes: checks,
                                  seconds: (clock.now - start).seconds)
        try writeJSON(summary, to: folder.appendingPathComponent("summary.json"))

        print("kiln demo → \(folder.relativePath)")
        for c in checks {
            print("  \(c.file.padding(toLength: 14, withPad: " ", startingAt: 0)) \(c.vertices) vertices, \(c.triangles) triangles"
                  + (c.colors ? ", colours" : "") + (c.uvs ? ", UVs" : "") + (c.texture.map { ", texture \($0)" } ?? "")
                  + String(format: ", area error %.2e", c.areaRelativeError))
        }
        print("  splats.ply     \(cloud.count) Gaussians, bit-exact re-read: \(summary.splatPLYExact)")
        print("  preview.png    \(sheet.width)×\(sheet.height) contact sheet of 8 views")
        print(String(format: "  done in %.2f s", summary.seconds))
    }
}

struct DemoSettings: Codable {
    var splats: Int, tileSize: Int, elevationDegrees: Float, views: Int
}

struct DemoCheck: Codable {
    var file: String
    var vertices: Int, triangles: Int, sourceTriangles: Int
    var colors: Bool, uvs: Bool
    var texture: String?
    var areaRelativeError: Float
}

struct DemoSummary: Codable {
    var seed: UInt64
    var splats: Int
    var splatPLYExact: Bool
    var meshes: [DemoCheck]
    var seconds: Double
}

// MARK: - Demo content

enum DemoAssets {
    static let white = SIMD4<Float>(0.95, 0.95, 0.97, 1), black = SIMD4<Float>(0.05, 0.05, 0.06, 1)
    static let orange = SIMD4<Float>(0.95, 0.45, 0.08, 1), red = SIMD4<Float>(0.8, 0.1, 0.1, 1)

    /// A snowman facing +Z (azimuth 0): three snowballs, coal eyes, a carrot nose, a hat and a scarf.
    static func snowman() -> TriangleMesh {
        var parts: [TriangleMesh] = [
            .uvSphere(center: Vec3(0, 0.35, 0), radius: 0.35, segments: 32, rings: 16, color: white),
            .uvSphere(center: Vec3(0, 0.82, 0), radius: 0.25, segments: 32, rings: 16, color: white),
            .uvSphere(center: Vec3(0, 1.18, 0), radius: 0.17, segments: 24, rings: 12, color: white),
            .cone(base: Vec3(0, 1.18, 0.15), tip: Vec3(0, 1.16, 0.38), radius: 0.035, segments: 12, color: orange),
            .cylinder(base: Vec3(0, 1.30, 0), top: Vec3(0, 1.32, 0), radius: 0.2, segments: 24, color: black),
            .cylinder(base: Vec3(0, 1.32, 0), top: Vec3(0, 1.50, 0), radius: 0.12, segments: 24, color: black),
            .frustum(base: Vec3(0, 0.98, 0), top: Vec3(0, 1.05, 0), baseRadius: 0.2, topRadius: 0.17, segments: 24, color: red),
        ]
        for x: Float in [-0.06, 0.06] {
            parts.append(.uvSphere(center: Vec3(x, 1.23, 0.15), radius: 0.022, segments: 8, rings: 6, color: black))
        }
        for y: Float in [0.6, 0.75, 0.9] {
            let z = (0.25 * 0.25 - (y - 0.82) * (y - 0.82)).squareRoot()
            parts.append(.uvSphere(center: Vec3(0, y, y < 0.7 ? 0.32 : z), radius: 0.025, segments: 8, rings: 6, color: black))
        }
        var mesh = TriangleMesh.merged(parts)
        mesh.material = TriangleMesh.Material(name: "snowman", roughnessFactor: 0.9)
        return mesh
    }

    /// A unit crate with an 8×8 checker texture of two wood tones and a border.
    static func crate() -> TriangleMesh {
        var mesh = TriangleMesh.box(center: Vec3(0, 0.5, 0), size: Vec3(1, 1, 1))
        mesh.colors = []
        let n = 64
        var texture = Image(width: n, height: n, channels: 4, fill: 1)
        for y in 0..<n {
            for x in 0..<n {
                let border = x < 4 || y < 4 || x >= n - 4 || y >= n - 4
                let checker = ((x / 8) + (y / 8)) % 2 == 0
                let c: SIMD3<Float> = border ? SIMD3(0.35, 0.2, 0.08) : checker ? SIMD3(0.75, 0.55, 0.3) : SIMD3(0.6, 0.4, 0.2)
                texture[x, y, 0] = c.x; texture[x, y, 1] = c.y; texture[x, y, 2] = c.z
            }
        }
        mesh.material = TriangleMesh.Material(name: "crate", baseColorTexture: texture)
        return mesh
    }
}

/// A quick, non-differentiable preview of splat centres: painter's-order discs, no blending.
enum PointPreview {
    static func render(_ cloud: GaussianCloud, camera: Camera, background: Vec3 = Vec3(1, 1, 1)) -> Image {
        var image = Image(width: camera.width, height: camera.height, channels: 3)
        for p in 0..<(camera.width * camera.height) {
            image.pixels[3 * p] = background.x; image.pixels[3 * p + 1] = background.y; image.pixels[3 * p + 2] = background.z
        }
        let projected = (0..<cloud.count).map { i in (i, camera.project(cloud.means[i])) }
            .filter { $0.1.depth > 0.05 }
            .sorted { $0.1.depth > $1.1.depth }  // far to near
        for (i, (pixel, depth)) in projected {
            let l = cloud.logScales[i]
            let r = max(1, camera.fy * exp(max(l.x, l.y)) / depth)
            let color = simd_clamp(cloud.baseColor(i), .zero, SIMD3(1, 1, 1))
            let x0 = max(0, Int(pixel.x - r)), x1 = min(camera.width - 1, Int(pixel.x + r))
            let y0 = max(0, Int(pixel.y - r)), y1 = min(camera.height - 1, Int(pixel.y + r))
            guard x0 <= x1, y0 <= y1 else { continue }
            for y in y0...y1 {
                for x in x0...x1 {
                    let dx = Float(x) + 0.5 - pixel.x, dy = Float(y) + 0.5 - pixel.y
                    guard dx * dx + dy * dy <= r * r else { continue }
                    let o = 3 * (y * camera.width + x)
                    image.pixels[o] = color.x; image.pixels[o + 1] = color.y; image.pixels[o + 2] = color.z
                }
            }
        }
        return image
    }

    static func simd_clamp(_ v: SIMD3<Float>, _ lo: SIMD3<Float>, _ hi: SIMD3<Float>) -> SIMD3<Float> {
        v.clamped(lowerBound: lo, upperBound: hi)
    }
}
