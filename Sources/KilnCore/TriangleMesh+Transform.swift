// MARK: - Affine transforms

extension TriangleMesh {
    /// The mesh under x ↦ L·x + t: positions transformed, normals by the inverse transpose of L
    /// (renormalised), triangles flipped when det L < 0 so they stay counter-clockwise from outside.
    /// - Precondition: L is invertible.
    public func transformed(linear: Mat3, translation: Vec3 = .zero) -> TriangleMesh {
        let det = linear.determinant
        precondition(det != 0 && det.isFinite, "TriangleMesh.transformed: the linear part is singular")
        var out = self
        out.positions = positions.map { linear * $0 + translation }
        let normalMatrix = linear.inverse.transpose
        out.normals = normals.map { n in
            let m = normalMatrix * n
            let length = (m * m).sum().squareRoot()
            return length > 0 ? m / length : n
        }
        if det < 0 { out.triangles = triangles.map { SIMD3($0.x, $0.z, $0.y) } }
        return out
    }

    /// The mesh translated by `t`.
    public func translated(by t: Vec3) -> TriangleMesh {
        var out = self
        out.positions = positions.map { $0 + t }
        return out
    }
}
