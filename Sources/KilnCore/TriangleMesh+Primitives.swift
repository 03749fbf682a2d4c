import Foundation

// MARK: - Primitive shapes

extension TriangleMesh {
    /// A UV sphere: `segments` around +Y, `rings` from pole to pole; outward normals, UVs with
    /// u around the axis and v from the bottom (0) to the top (1), one vertex colour.
    public static func uvSphere(center: SIMD3<Float> = .zero, radius: Float = 1, segments: Int = 24, rings: Int = 12,
                                color: SIMD4<Float> = SIMD4(1, 1, 1, 1)) -> TriangleMesh {
        precondition(segments >= 3 && rings >= 2, "a sphere needs at least 3 segments and 2 rings")
        var mesh = TriangleMesh()
        for r in 0...rings {
            let v = Float(r) / Float(rings)
            let polar = Float.pi * (1 - v)  // v = 0 at the bottom pole
            for s in 0...segments {
                let u = Float(s) / Float(segments)
                let azimuth = 2 * Float.pi * u
                let n = SIMD3(sin(polar) * sin(azimuth), cos(polar), sin(polar) * cos(azimuth))
                mesh.positions.append(center + radius * n)
                mesh.normals.append(n)
                mesh.uvs.append(SIMD2(u, v))
                mesh.colors.append(color)
            }
        }
        let row = UInt32(segments + 1)
        for r in 0..<UInt32(rings) {
            for s in 0..<UInt32(segments) {
                let a = r * row + s, b = a + 1, c = a + row, d = c + 1
                // Counter-clockwise seen from outside (u grows toward +X from +Z, v grows upward).
                if r > 0 { mesh.triangles.append(SIMD3(a, b, d)) }
                if r < UInt32(rings) - 1 { mesh.triangles.append(SIMD3(a, d, c)) }
            }
        }
        return mesh.removingUnusedVertices()  // the last vertex of each pole row
    }

    /// A closed cone from a base disc (centre `base`, `radius`) to `tip`; flat-shaded base.
    public static func cone(base: SIMD3<Float>, tip: SIMD3<Float>, radius: Float, segments: Int = 16,
                            color: SIMD4<Float> = SIMD4(1, 1, 1, 1)) -> TriangleMesh {
        frustum(base: base, top: tip, baseRadius: radius, topRadius: 0, segments: segments, color: color)
    }

    /// A closed cylinder between two disc centres.
    public static func cylinder(base: SIMD3<Float>, top: SIMD3<Float>, radius: Float, segments: Int = 16,
                                color: SIMD4<Float> = SIMD4(1, 1, 1, 1)) -> TriangleMesh {
        frustum(base: base, top: top, baseRadius: radius, topRadius: radius, segments: segments, color: color)
    }

    /// A closed truncated cone (cylinder or cone as special cases) with capped ends.
    public static func frustum(base: SIMD3<Float>, top: SIMD3<Float>, baseRadius: Float, topRadius: Float,
                               segments: Int = 16, color: SIMD4<Float> = SIMD4(1, 1, 1, 1)) -> TriangleMesh {
        precondition(segments >= 3, "a frustum needs at least 3 segments")
        let axis = top - base
        let height = (axis * axis).sum().squareRoot()
        precondition(height > 0, "frustum base and top must differ")
        let w = axis / height
        let helper: SIMD3<Float> = abs(w.y) < 0.9 ? SIMD3(0, 1, 0) : SIMD3(1, 0, 0)
        var u = cross(helper, w)
        u /= (u * u).sum().squareRoot()
        let v = cross(w, u)
        var mesh = TriangleMesh()
        func ring(_ centre: SIMD3<Float>, _ r: Float) -> [SIMD3<Float>] {
            (0..<segments).map { i in
                let a = 2 * Float.pi * Float(i) / Float(segments)
                return centre + r * (cos(a) * u + sin(a) * v)
            }
        }
        let bottom = ring(base, baseRadius), upper = ring(top, topRadius)
        func add(_ p: SIMD3<Float>, _ n: SIMD3<Float>, _ t: SIMD2<Float>) -> UInt32 {
            mesh.positions.append(p); mesh.normals.append(n); mesh.uvs.append(t); mesh.colors.append(color)
            return UInt32(mesh.positions.count - 1)
        }
        // Side: normals tilt by the slope.
        let slope = (baseRadius - topRadius) / height
        for i in 0..<segments {
            let j = (i + 1) % segments
            let ni = normalize((bottom[i] - base) / max(baseRadius, 1e-9) + slope * w)
            let nj = normalize((bottom[j] - base) / max(baseRadius, 1e-9) + slope * w)
            let ui = Float(i) / Float(segments), uj = Float(i + 1) / Float(segments)
            let a = add(bottom[i], ni, SIMD2(ui, 0)), b = add(bottom[j], nj, SIMD2(uj, 0))
            let c = add(upper[j], nj, SIMD2(uj, 1)), d = add(upper[i], ni, SIMD2(ui, 1))
            mesh.triangles.append(SIMD3(a, b, c))
            if topRadius > 0 { mesh.triangles.append(SIMD3(a, c, d)) }
        }
        // Caps.
        let bottomCentre = add(base, -w, SIMD2(0.5, 0.5))
        let bottomRing = bottom.map { add($0, -w, SIMD2(0.5, 0.5)) }
        for i in 0..<segments { mesh.triangles.append(SIMD3(bottomCentre, bottomRing[(i + 1) % segments], bottomRing[i])) }
        if topRadius > 0 {
            let topCentre = add(top, w, SIMD2(0.5, 0.5))
            let topRing = upper.map { add($0, w, SIMD2(0.5, 0.5)) }
            for i in 0..<segments { mesh.triangles.append(SIMD3(topCentre, topRing[i], topRing[(i + 1) % segments])) }
        }
        return mesh.removingUnusedVertices()  // a cone's apex corners d
    }

    /// An axis-aligned box with per-face normals and a full [0, 1]² UV square on each face.
    public static func box(center: SIMD3<Float> = .zero, size: SIMD3<Float> = SIMD3(1, 1, 1),
                           color: SIMD4<Float> = SIMD4(1, 1, 1, 1)) -> TriangleMesh {
        var mesh = TriangleMesh()
        let h = size / 2
        // Each face: normal, and two in-plane axes (right, up) with right × up = normal.
        let faces: [(SIMD3<Float>, SIMD3<Float>, SIMD3<Float>)] = [
            (SIMD3(1, 0, 0), SIMD3(0, 0, -1), SIMD3(0, 1, 0)), (SIMD3(-1, 0, 0), SIMD3(0, 0, 1), SIMD3(0, 1, 0)),
            (SIMD3(0, 1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, -1)), (SIMD3(0, -1, 0), SIMD3(1, 0, 0), SIMD3(0, 0, 1)),
            (SIMD3(0, 0, 1), SIMD3(1, 0, 0), SIMD3(0, 1, 0)), (SIMD3(0, 0, -1), SIMD3(-1, 0, 0), SIMD3(0, 1, 0)),
        ]
        for (n, r, u) in faces {
            let base = UInt32(mesh.positions.count)
            for (s, t) in [(Float(-1), Float(-1)), (1, -1), (1, 1), (-1, 1)] {
                mesh.positions.append(center + h * (n + s * r + t * u))
                mesh.normals.append(n)
                mesh.uvs.append(SIMD2((s + 1) / 2, (t + 1) / 2))
                mesh.colors.append(color)
            }
            mesh.triangles.append(SIMD3(base, base + 1, base + 2))
            mesh.triangles.append(SIMD3(base, base + 2, base + 3))
        }
        return mesh
    }

    /// Concatenates meshes; attributes missing from some parts are filled (normals computed,
    /// UVs zero, colours white). The material is the first part's.
    public static func merged(_ parts: [TriangleMesh]) -> TriangleMesh {
        var out = TriangleMesh(material: parts.first?.material ?? Material())
        let anyUVs = parts.contains { !$0.uvs.isEmpty }
        let anyColors = parts.contains { !$0.colors.isEmpty }
        for part in parts {
            let base = UInt32(out.positions.count)
            out.positions += part.positions
            out.normals += part.normals.isEmpty ? part.computedVertexNormals() : part.normals
            if anyUVs { out.uvs += part.uvs.isEmpty ? Array(repeating: .zero, count: part.vertexCount) : part.uvs }
            if anyColors { out.colors += part.colors.isEmpty ? Array(repeating: SIMD4(1, 1, 1, 1), count: part.vertexCount) : part.colors }
            out.triangles += part.triangles.map { $0 &+ SIMD3(repeating: base) }
        }
        return out
    }

    /// `[F]` triangle areas.
    public var triangleAreas: [Float] {
        triangles.map { t in
            0.5 * length(cross(positions[Int(t.y)] - positions[Int(t.x)], positions[Int(t.z)] - positions[Int(t.x)]))
        }
    }

    /// Total surface area.
    public var surfaceArea: Float { triangleAreas.reduce(0, +) }

    /// Signed enclosed volume (positive for closed, outward-oriented meshes), by the divergence theorem.
    public var signedVolume: Float {
        triangles.reduce(0) { sum, t in
            let a = positions[Int(t.x)], b = positions[Int(t.y)], c = positions[Int(t.z)]
            return sum + (a * cross(b, c)).sum() / 6
        }
    }
}
