import Foundation

extension GaussianCloud {
    /// Flat Gaussians sampled on a mesh surface, area-weighted, coloured by the interpolated
    /// vertex colours (or the material's base colour), SH degree 0.
    ///
    /// Each Gaussian lies in its triangle's plane: its local z axis is the face normal, its
    /// in-plane scale is `spacing · 0.5` with `spacing = √(area / count)`, and its normal scale
    /// a tenth of that. Useful as an initialisation and as a test asset.
    /// - Parameters:
    ///   - count: number of Gaussians, ≥ 0.
    ///   - opacity: initial opacity in (0, 1).
    public static func sampled(on mesh: TriangleMesh, count: Int, opacity: Float = 0.9, rng: inout RNG) -> GaussianCloud {
        precondition(count >= 0, "count must be non-negative")
        precondition(opacity > 0 && opacity < 1, "opacity must be in (0, 1)")
        var cloud = GaussianCloud(shDegree: 0)
        let areas = mesh.triangleAreas
        let total = areas.reduce(0, +)
        guard total > 0, count > 0 else { return cloud }
        var cumulative: [Float] = []
        cumulative.reserveCapacity(areas.count)
        var running: Float = 0
        for a in areas { running += a; cumulative.append(running) }
        let spacing = (total / Float(count)).squareRoot()
        let logScale = Vec3(log(spacing * 0.5), log(spacing * 0.5), log(spacing * 0.05))
        let logit = log(opacity / (1 - opacity))
        for _ in 0..<count {
            let pick = rng.nextFloat() * total
            var lo = 0, hi = cumulative.count - 1
            while lo < hi { let mid = (lo + hi) / 2; if cumulative[mid] < pick { lo = mid + 1 } else { hi = mid } }
            let t = mesh.triangles[lo]
            var u = rng.nextFloat(), v = rng.nextFloat()
            if u + v > 1 { u = 1 - u; v = 1 - v }
            let w = 1 - u - v
            let a = mesh.positions[Int(t.x)], b = mesh.positions[Int(t.y)], c = mesh.positions[Int(t.z)]
            let position = w * a + u * b + v * c
            var color = Vec3(mesh.material.baseColorFactor.x, mesh.material.baseColorFactor.y, mesh.material.baseColorFactor.z)
            if !mesh.colors.isEmpty {
                let ca = mesh.colors[Int(t.x)], cb = mesh.colors[Int(t.y)], cc = mesh.colors[Int(t.z)]
                let mixed = w * ca + u * cb + v * cc
                color *= Vec3(mixed.x, mixed.y, mixed.z)
            }
            let normal = normalize(cross(b - a, c - a))
            cloud.append(mean: position, logScale: logScale, rotation: rotationTaking(Vec3(0, 0, 1), to: normal).wxyz,
                         opacityLogit: logit, sh: [0, 1, 2].map { (color[$0] - 0.5) / shC0 })
        }
        return cloud
    }

    /// The shortest rotation taking unit vector `a` to unit vector `b`.
    static func rotationTaking(_ a: Vec3, to b: Vec3) -> Quat {
        let d = dot(a, b)
        if d < -0.999999 {  // opposite: any axis perpendicular to a
            let axis = abs(a.x) < 0.9 ? normalize(cross(a, Vec3(1, 0, 0))) : normalize(cross(a, Vec3(0, 1, 0)))
            return Quat(axis: axis, angleRadians: .pi)
        }
        return Quat(real: 1 + d, imaginary: cross(a, b)).normalized
    }
}
