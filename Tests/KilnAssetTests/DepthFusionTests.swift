import Foundation
import KilnCore
import Testing
@testable import KilnAsset

@Suite("Depth fusion")
struct DepthFusionTests {
    /// Exact depth and coverage of a ball of radius `r` at the origin seen by `camera` (ray–sphere).
    static func ballView(_ camera: Camera, r: Float) -> DepthFusion.View {
        var depth = [Float](repeating: 0, count: camera.width * camera.height), coverage = depth
        for y in 0..<camera.height {
            for x in 0..<camera.width {
                let ray = camera.ray(pixelX: x, pixelY: y)
                let b = (ray.origin * ray.direction).sum(), c = (ray.origin * ray.origin).sum() - r * r
                let disc = b * b - c
                guard disc >= 0 else { continue }
                let t = -b - disc.squareRoot()
                let hit = ray.origin + t * ray.direction
                depth[y * camera.width + x] = camera.project(hit).depth
                coverage[y * camera.width + x] = 1
            }
        }
        return DepthFusion.View(camera: camera, depth: depth, coverage: coverage)
    }

    static let cameras = [-20, 20, 60].flatMap { e in stride(from: 0, to: 360, by: 60).map {
        Camera.orbit(azimuthDegrees: Float($0), elevationDegrees: Float(e), radius: 3, width: 64, height: 64, fovYRadians: 0.7)
    } }

    static func fusedBall(_ views: [DepthFusion.View]) throws -> TriangleMesh {
        let spacing: Float = 0.05
        let grid = DepthFusion.field(views, origin: SIMD3(repeating: -0.8), spacing: spacing, n: SIMD3(repeating: 33), truncation: 3 * spacing, threads: 3)
        return try MarchingCubes.extract(grid, level: 0, inside: .below)
    }

    @Test("posed depth maps of a ball fuse into the ball")
    func ball() throws {
        let mesh = try Self.fusedBall(Self.cameras.map { Self.ballView($0, r: 0.5) })
        let radii = mesh.positions.map { ($0 * $0).sum().squareRoot() }
        #expect(mesh.triangleCount > 500)
        // Within a voxel (0.05) of the sphere everywhere, and on it on average.
        #expect(radii.allSatisfy { abs($0 - 0.5) < 0.05 }, "radii \(radii.min()!)…\(radii.max()!)")
        #expect(abs(radii.reduce(0, +) / Float(radii.count) - 0.5) < 0.015)
        // One region of space: no inner shell where no view sees the interior.
        #expect(radii.min()! > 0.4)
    }

    @Test("one view that misses the object cannot carve it; two views that agree on free space can")
    func robustCarving() throws {
        var views = Self.cameras.map { Self.ballView($0, r: 0.5) }
        views[0].coverage = [Float](repeating: 0, count: views[0].coverage.count)  // sees nothing at all
        let radii = try Self.fusedBall(views).positions.map { ($0 * $0).sum().squareRoot() }
        #expect(radii.allSatisfy { abs($0 - 0.5) < 0.05 }, "radii \(radii.min()!)…\(radii.max()!)")
        views[1].coverage = views[0].coverage
        // With a second empty view the voxels both see are free: the ball loses what they share.
        let carved = try? Self.fusedBall(views)
        #expect(carved == nil || carved!.triangleCount < Self.cameras.count * 1000)
        // A point both views frame, on the ball: free twice, so outside.
        #expect(DepthFusion.value(at: .zero, views, truncation: 0.15) == 1)
        // The same point with every view intact: deep inside, seen near no surface, so inside.
        #expect(DepthFusion.value(at: .zero, Self.cameras.map { Self.ballView($0, r: 0.5) }, truncation: 0.15) == -1)
    }
}
