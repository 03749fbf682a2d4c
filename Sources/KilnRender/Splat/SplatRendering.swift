import KilnCore
import RealModule

/// Images of a Gaussian cloud from one camera, as `Image` values.
public struct SplatView: Sendable {
    /// RGB over the background.
    public var color: Image
    /// Accumulated opacity.
    public var alpha: Image
    /// Expected depth (camera-space z) where alpha > 0.01, else 0.
    public var depth: Image
}

extension SplatRasterizer {
    /// Renders one view of a cloud (no backward pass).
    public static func render(_ p: SplatParameters<Float>, camera: Camera, settings: SplatRenderSettings = SplatRenderSettings(),
                              threads: Int = Parallel.defaultThreadCount) -> SplatView {
        let frame = forward(p, camera: camera, settings: settings, threads: threads)
        let w = camera.width, h = camera.height
        let images = frame.images
        let depth = (0..<(w * h)).map { i in images.alpha[i] > 0.01 ? images.depth[i] / images.alpha[i] : 0 }
        return SplatView(color: Image(width: w, height: h, channels: 3, pixels: images.color),
                         alpha: Image(width: w, height: h, channels: 1, pixels: images.alpha),
                         depth: Image(width: w, height: h, channels: 1, pixels: depth))
    }

    /// Renders several views; `backward` of a batch is the sum of the per-view backwards.
    public static func forward(_ p: SplatParameters<Float>, cameras: [Camera], settings: SplatRenderSettings = SplatRenderSettings(),
                               threads: Int = Parallel.defaultThreadCount) -> [SplatFrame] {
        cameras.map { forward(p, camera: $0, settings: settings, threads: threads) }
    }
}

/// Default framing: orbit cameras around the robust bounds of a set of points.
public enum OrbitFraming {
    /// Centre and radius of the points between the 1st and 99th percentile on each axis (stray
    /// Gaussians far away do not shrink the subject).
    public static func robustSphere(_ points: [SIMD3<Float>]) -> (center: SIMD3<Float>, radius: Float) {
        guard !points.isEmpty else { return (.zero, 1) }
        var lo = SIMD3<Float>.zero, hi = SIMD3<Float>.zero
        for a in 0..<3 {
            let sorted = points.map { $0[a] }.sorted()
            lo[a] = sorted[Int(Float(sorted.count - 1) * 0.01)]
            hi[a] = sorted[Int(Float(sorted.count - 1) * 0.99)]
        }
        let center = (lo + hi) / 2
        let radius = max(1e-3, length(hi - lo) / 2)
        return (center, radius)
    }

    /// `views` cameras evenly spaced in azimuth (starting at 0, the +Z side) at one elevation,
    /// at `distance` or at the distance where the sphere fills the vertical field of view with
    /// 10% margin.
    public static func cameras(views: Int, size: Int, center: SIMD3<Float>, radius: Float, elevationDegrees: Float,
                               distance: Float? = nil, fovYRadians: Float = radians(degrees: 40)) -> [Camera] {
        let d = distance ?? (radius * 1.1 / Float.sin(fovYRadians / 2))
        return (0..<views).map { i in
            Camera.orbit(azimuthDegrees: 360 * Float(i) / Float(max(1, views)), elevationDegrees: elevationDegrees, radius: d,
                         target: center, width: size, height: size, fovYRadians: fovYRadians)
        }
    }
}
