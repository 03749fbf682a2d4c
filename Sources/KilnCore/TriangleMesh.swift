/// An indexed triangle mesh with optional per-vertex attributes and a base-colour material.
///
/// Units are the scene's; +Y is up by convention (glTF). Per-vertex arrays all have
/// `positions.count` entries or are empty. Triangles are counter-clockwise seen from outside.
/// UVs have their origin at the bottom-left of the texture (OpenGL/glTF-after-flip convention:
/// v = 0 is the texture's last row).
public struct TriangleMesh: Sendable, Equatable {
    /// `[V]` vertex positions.
    public var positions: [SIMD3<Float>]
    /// `[V]` unit normals, or empty.
    public var normals: [SIMD3<Float>]
    /// `[V]` texture coordinates, bottom-left origin, or empty.
    public var uvs: [SIMD2<Float>]
    /// `[V]` linear RGBA vertex colours in [0, 1], or empty.
    public var colors: [SIMD4<Float>]
    /// `[F]` vertex indices per triangle.
    public var triangles: [SIMD3<UInt32>]
    /// The base-colour material.
    public var material: Material

    /// PBR metallic-roughness material with an optional base-colour texture.
    public struct Material: Sendable, Equatable {
        public var name: String
        /// RGBA factor, multiplied with texture and vertex colours.
        public var baseColorFactor: SIMD4<Float>
        public var metallicFactor: Float
        public var roughnessFactor: Float
        /// RGBA texture, row 0 at the top of the picture, or nil.
        public var baseColorTexture: Image?

        public init(name: String = "material", baseColorFactor: SIMD4<Float> = SIMD4(1, 1, 1, 1),
                    metallicFactor: Float = 0, roughnessFactor: Float = 1,
                    baseColorTexture: Image? = nil) {
            self.name = name
            self.baseColorFactor = baseColorFactor
            self.metallicFactor = metallicFactor
            self.roughnessFactor = roughnessFactor
            self.baseColorTexture = baseColorTexture
        }
    }

    public init(positions: [SIMD3<Float>] = [], normals: [SIMD3<Float>] = [], uvs: [SIMD2<Float>] = [],
                colors: [SIMD4<Float>] = [], triangles: [SIMD3<UInt32>] = [],
                material: Material = Material()) {
        self.positions = positions
        self.normals = normals
        self.uvs = uvs
        self.colors = colors
        self.triangles = triangles
        self.material = material
    }

    public var vertexCount: Int { positions.count }
    public var triangleCount: Int { triangles.count }

    /// Axis-aligned bounds of the vertices, or nil when empty.
    public var bounds: (min: SIMD3<Float>, max: SIMD3<Float>)? {
        guard var lo = positions.first else { return nil }
        var hi = lo
        for p in positions { lo = pointwiseMin(lo, p); hi = pointwiseMax(hi, p) }
        return (lo, hi)
    }

    /// Why the mesh is inconsistent (attribute counts, index range, non-finite values), or nil.
    public func validationFailure() -> String? {
        let v = positions.count
        if !normals.isEmpty && normals.count != v { return "has \(normals.count) normals for \(v) vertices" }
        if !uvs.isEmpty && uvs.count != v { return "has \(uvs.count) UVs for \(v) vertices" }
        if !colors.isEmpty && colors.count != v { return "has \(colors.count) colours for \(v) vertices" }
        for (i, t) in triangles.enumerated() where Int(t.x) >= v || Int(t.y) >= v || Int(t.z) >= v {
            return "triangle \(i) indexes vertex \(max(t.x, t.y, t.z)) but there are only \(v) vertices"
        }
        if let i = positions.firstIndex(where: { !($0.x.isFinite && $0.y.isFinite && $0.z.isFinite) }) {
            return "vertex \(i) has a non-finite position"
        }
        return nil
    }

    /// Per-vertex normals averaged from area-weighted face normals (zero-area faces ignored).
    public func computedVertexNormals() -> [SIMD3<Float>] {
        var acc = [SIMD3<Float>](repeating: .zero, count: positions.count)
        for t in triangles {
            let a = positions[Int(t.x)], b = positions[Int(t.y)], c = positions[Int(t.z)]
            let n = cross(b - a, c - a)  // length = 2 × area
            acc[Int(t.x)] += n; acc[Int(t.y)] += n; acc[Int(t.z)] += n
        }
        return acc.map { n in
            let l = (n * n).sum().squareRoot()
            return l > 0 ? n / l : SIMD3(0, 1, 0)
        }
    }
}

extension TriangleMesh {
    /// The mesh without vertices that no triangle uses (indices remapped, order kept).
    /// Some readers (trimesh's PLY loader among them) drop unused vertices but keep their
    /// colour rows, shifting every colour after the gap.
    public func removingUnusedVertices() -> TriangleMesh {
        var used = [Bool](repeating: false, count: positions.count)
        for t in triangles { used[Int(t.x)] = true; used[Int(t.y)] = true; used[Int(t.z)] = true }
        if !used.contains(false) { return self }
        var remap = [UInt32](repeating: 0, count: positions.count)
        var next: UInt32 = 0
        for i in used.indices where used[i] { remap[i] = next; next += 1 }
        func keep<T>(_ values: [T]) -> [T] { values.isEmpty ? [] : values.indices.filter { used[$0] }.map { values[$0] } }
        var out = self
        out.positions = keep(positions)
        out.normals = keep(normals)
        out.uvs = keep(uvs)
        out.colors = keep(colors)
        out.triangles = triangles.map { SIMD3(remap[Int($0.x)], remap[Int($0.y)], remap[Int($0.z)]) }
        return out
    }
}
