/// Mesh file formats Kiln exports through Assimp, named by the usual extension.
public enum MeshFormat: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case glb, gltf, obj, ply, stl, fbx, dae

    /// Assimp's exporter id. Plain `gltf`/`glb` are glTF 1.0 in Assimp 5.2, so use the `2` ids;
    /// binary PLY writes float colours under a uchar header, so the ASCII writer is used. FBX is
    /// Assimp's binary writer, finished by `FBXBinary` (Blender refuses ASCII FBX). STL is written
    /// by Kiln itself (`BinarySTL`); its id here is only for completeness.
    public var assimpExporterID: String {
        switch self {
        case .glb: "glb2"
        case .gltf: "gltf2"
        case .obj: "obj"
        case .ply: "ply"
        case .stl: "stlb"
        case .fbx: "fbx"
        case .dae: "collada"
        }
    }

    /// The up axis the format's users expect, and `MeshExport`'s default: Z for STL (slicers
    /// for 3D printing) and PLY (Blender and most point-cloud tools take its axes as they are);
    /// Y for glTF (Y up by its specification), OBJ, FBX and DAE (their importers convert from
    /// Y up: OBJ by convention, FBX and DAE by the axis the file states).
    public var defaultUp: UpAxis {
        switch self {
        case .stl, .ply: .z
        case .glb, .gltf, .obj, .fbx, .dae: .y
        }
    }

    /// Whether a mesh's vertex colours are also baked into a texture for this format: OBJ, FBX
    /// and DAE readers (Blender's among them) load vertex colours but do not show them through
    /// the material; a base-colour texture they show as they import it. (Meshes over
    /// `MeshExport.maximumTrianglesToBake` triangles, or whose atlas does not fit, keep vertex
    /// colours alone.)
    public var bakesVertexColors: Bool { self == .obj || self == .fbx || self == .dae }

    /// Whether vertex colours in the file are sRGB-encoded, as PLY, OBJ, FBX and DAE readers
    /// (Blender among them) take them; glTF's `COLOR_0` is linear by its specification.
    public var storesSRGBColors: Bool { self != .glb && self != .gltf }

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
