import KilnCore

/// A surface from posed depth maps (renders of a soft volume: splats, a field), as a signed field
/// on a grid whose zero level set is the surface (negative inside). Each view votes on each voxel
/// x it sees, with s = (d − z)/τ, d the view's depth at x's pixel, z x's depth and τ the
/// truncation:
/// - *free*: x projects outside the view's silhouette (coverage below `minimumCoverage`) or
///   outside its picture (the views are expected to frame the whole object, as orbit renders
///   do), or lies in front of the surface by more than τ (s > 1);
/// - *near*: |s| ≤ 1, the truncated signed distance of TSDF fusion (Curless & Levoy 1996);
/// - nothing: x is hidden behind the surface (s < −1).
/// A voxel two or more views see as free is outside (+1): space carving that one bad view cannot
/// do alone, as `VisualHull`'s robust hull. Otherwise it takes the mean of its near votes, or is inside (−1) when none sees it near the
/// surface. The surface then matches the renders'
/// silhouettes and depths, which a density level set of translucent, layered splats does not.
public enum DepthFusion {
    /// One posed depth map.
    public struct View: Sendable {
        public var camera: Camera
        /// `[H, W]` camera-space depth (z along the optical axis).
        public var depth: [Float]
        /// `[H, W]` how opaque each pixel is (alpha).
        public var coverage: [Float]

        public init(camera: Camera, depth: [Float], coverage: [Float]) {
            precondition(depth.count == camera.width * camera.height && coverage.count == depth.count,
                         "DepthFusion.View: depth and coverage must have the camera's size")
            self.camera = camera
            self.depth = depth
            self.coverage = coverage
        }
    }

    /// The fused field on the grid with `n` samples from `origin`, `spacing` apart.
    public static func field(_ views: [View], origin: SIMD3<Float>, spacing: Float, n: SIMD3<Int>, truncation: Float,
                             minimumCoverage: Float = 0.5, threads: Int = Parallel.defaultThreadCount) -> ScalarGrid {
        precondition(truncation > 0 && spacing > 0 && n.x > 1 && n.y > 1 && n.z > 1, "DepthFusion.field: positive truncation and spacing, 2+ samples per axis")
        let slabs = parallelMapChunks(n.z, threads: threads) { zs -> [Float] in
            var out: [Float] = []
            out.reserveCapacity(zs.count * n.x * n.y)
            for k in zs { for j in 0..<n.y { for i in 0..<n.x {
                let x = origin + spacing * SIMD3(Float(i), Float(j), Float(k))
                out.append(value(at: x, views, truncation: truncation, minimumCoverage: minimumCoverage))
            } } }
            return out
        }
        return ScalarGrid(nx: n.x, ny: n.y, nz: n.z, values: slabs.flatMap { $0 }, origin: origin, spacing: SIMD3(repeating: spacing))
    }

    /// The fused value at one point (see the type's description).
    public static func value(at x: SIMD3<Float>, _ views: [View], truncation: Float, minimumCoverage: Float = 0.5) -> Float {
        var free = 0, near = 0, sum: Float = 0
        for view in views {
            let (pixel, z) = view.camera.project(x)
            guard z > 0, pixel.x >= 0, pixel.y >= 0, pixel.x < Float(view.camera.width), pixel.y < Float(view.camera.height) else {
                free += 1
                continue
            }
            let p = Int(pixel.y) * view.camera.width + Int(pixel.x)
            if view.coverage[p] < minimumCoverage { free += 1; continue }
            let s = (view.depth[p] - z) / truncation
            if s > 1 { free += 1 } else if s >= -1 { near += 1; sum += s }
        }
        if free >= 2 { return 1 }
        return near > 0 ? sum / Float(near) : -1
    }
}
