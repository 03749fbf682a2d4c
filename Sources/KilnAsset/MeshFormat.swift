/// Mesh file formats Kiln exports through Assimp, named by the usual extension.
public enum MeshFormat: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case glb, gltf, obj, ply, stl, fbx, dae

    /// Assimp's exporter id. Plain `gltf`/`glb` are glTF 1.0 in Assimp 5.2, so use the `2` ids;
    /// binary PLY writes float colours under a uchar header and binary FBX cannot be read back,
    /// so the ASCII writers are used for both.
    public var assimpExporterID: String {
        switch self {
        case .glb: "glb2"
        case .gltf: "gltf2"
        case .obj: "obj"
        case .ply: "ply"
        case .stl: "stl"
        case .fbx: "fbxa"
        case .dae: "collada"
        }
    }

    public var fileExtension: String { rawValue }
    public var description: String { rawValue }

    /// Whether the format stores per-vertex colours (as written by Assimp 5.2 and read back).
    public var holdsVertexColors: Bool {
        switch self {
        case .glb, .gltf, .ply, .dae, .fbx, .obj: true
        case .stl: false
        }
    }

    /// Whether the format stores texture coordinates and a base-colour texture reference.
    public var holdsTexture: Bool { self != .stl && self != .ply }

    /// The texture is embedded in the file itself (otherwise it is a PNG written beside it).
    public var embedsTexture: Bool { self == .glb }

    /// The format for a file name's extension (case-insensitive), or nil.
    public init?(pathExtension: String) {
        self.init(rawValue: pathExtension.lowercased())
    }
}
