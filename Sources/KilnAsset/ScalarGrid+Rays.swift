import KilnCore

extension ScalarGrid {
    /// The field at a world position by trilinear interpolation; 0 outside the grid's box.
    public func sample(at p: SIMD3<Float>) -> Float {
        let u = (p - origin) / spacing
        guard u.x >= 0, u.y >= 0, u.z >= 0, u.x <= Float(nx - 1), u.y <= Float(ny - 1), u.z <= Float(nz - 1) else { return 0 }
        return interpolate(at: p) { values[$0] } lerp: { a, b, f in a + (b - a) * f }
    }

    /// The largest value along a ray through the grid's box, sampled every half of the smallest
    /// spacing (0 for a ray that misses the box). `direction` need not be unit length.
    public func peak(alongRayFrom start: SIMD3<Float>, direction: SIMD3<Float>) -> Float {
        guard nx >= 2, ny >= 2, nz >= 2 else { return 0 }
        let lo = origin, hi = origin + spacing * SIMD3(Float(nx - 1), Float(ny - 1), Float(nz - 1))
        guard let (t0, t1) = rayBoxIntersection(origin: start, direction: direction, lo: lo, hi: hi) else { return 0 }
        let length = (direction * direction).sum().squareRoot()
        let step = spacing.min() / 2 / length
        var peak: Float = 0
        var t = t0
        while t <= t1 {
            peak = Swift.max(peak, sample(at: start + t * direction))
            t += step
        }
        return peak
    }

    /// `peak` for the ray through every pixel centre of `camera` (`[H, W]`, row-major).
    public func peaks(camera: Camera, threads: Int = Parallel.defaultThreadCount) -> [Float] {
        let w = camera.width, h = camera.height
        let rows = parallelMapChunks(h, threads: threads) { rows in
            rows.flatMap { y in (0..<w).map { x in
                let ray = camera.ray(pixelX: x, pixelY: y)
                return peak(alongRayFrom: ray.origin, direction: ray.direction)
            } }
        }
        return rows.flatMap { $0 }
    }
}
