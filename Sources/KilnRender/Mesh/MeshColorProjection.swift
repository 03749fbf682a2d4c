import KilnCore

/// Colours for points on a mesh's surface taken from pictures of the object (with their cameras
/// and coverage): each point takes the coverage-weighted mean of the straight colour at its pixel
/// in every picture whose camera sees it, a camera seeing it when the mesh's own depth at that
/// pixel is the point's depth (within `depthTolerance`, so occluded points keep out). This is how
/// a mesh extracted from a soft volume (splats, a NeRF) gets the colours of the volume's renders
/// rather than of the haze at its level set (DreamGaussian bakes its texture the same way).
public struct MeshColorProjection: Sendable {
    struct View: Sendable {
        var camera: Camera
        /// `[H, W, 3]` colour premultiplied by coverage.
        var premultiplied: [Float]
        var coverage: [Float]
        /// The mesh's camera-space depth per pixel, 0 where it is empty.
        var meshDepth: [Float]
    }
    let views: [View]
    public let depthTolerance: Float
    /// Pixels with less coverage than this say nothing.
    public let minimumCoverage: Float

    /// - Parameters:
    ///   - pictures: each camera with the object's premultiplied colour (`[H, W, 3]`, i.e. rendered
    ///     over black) and its coverage (`[H, W]`), at the camera's size.
    public init(mesh: TriangleMesh, pictures: [(camera: Camera, premultiplied: [Float], coverage: [Float])], depthTolerance: Float,
                minimumCoverage: Float = 0.2, threads: Int = Parallel.defaultThreadCount) {
        let renderer = MeshRenderer(mesh)
        views = pictures.map { picture in
            let pixels = picture.camera.width * picture.camera.height
            precondition(picture.premultiplied.count == 3 * pixels && picture.coverage.count == pixels,
                         "MeshColorProjection: a picture must have the camera's size")
            let seen = renderer.render(camera: picture.camera, settings: MeshRenderSettings(cullBackFaces: false), threads: threads)
            return View(camera: picture.camera, premultiplied: picture.premultiplied, coverage: picture.coverage, meshDepth: seen.depth.pixels)
        }
        self.depthTolerance = depthTolerance
        self.minimumCoverage = minimumCoverage
    }

    /// The colour at a surface point, nil where no picture sees it.
    public func color(at point: SIMD3<Float>) -> SIMD3<Float>? {
        var sum = SIMD3<Float>.zero, weight: Float = 0
        for view in views {
            let (pixel, depth) = view.camera.project(point)
            guard depth > 0, pixel.x >= 0, pixel.y >= 0 else { continue }
            let x = Int(pixel.x), y = Int(pixel.y)
            guard x < view.camera.width, y < view.camera.height else { continue }
            let i = y * view.camera.width + x
            let surface = view.meshDepth[i]
            guard surface > 0, Swift.abs(surface - depth) <= depthTolerance, view.coverage[i] >= minimumCoverage else { continue }
            sum += SIMD3(view.premultiplied[3 * i], view.premultiplied[3 * i + 1], view.premultiplied[3 * i + 2])
            weight += view.coverage[i]
        }
        return weight > 0 ? sum / weight : nil
    }

    /// The share of `points` that some picture sees.
    public func share(of points: [SIMD3<Float>]) -> Double {
        points.isEmpty ? 0 : Double(points.filter { color(at: $0) != nil }.count) / Double(points.count)
    }
}
