import CAssimp
import Foundation
import KilnCore

/// A mesh that could not be exported or imported: what, where and how to fix it.
public struct MeshIOError: Error, CustomStringConvertible, Equatable {
    public var path: String
    public var reason: String
    public var description: String { "\(path): \(reason)" }
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// Which way is up in a written file: Kiln's world is +Y up; `.z` turns it so that the file's +Z is
/// Kiln's up (and Kiln's front, +Z, faces the file's −Y), as Blender and 3D printing expect.
public enum UpAxis: String, CaseIterable, Sendable, Codable, CustomStringConvertible {
    case y, z
    public var description: String { rawValue }

    /// Kiln's world → the file's frame: a quarter turn about +X for `.z`, (x, y, z) → (x, −z, y).
    @inlinable
    public func fromKiln(_ p: SIMD3<Float>) -> SIMD3<Float> { self == .z ? SIMD3(p.x, -p.z, p.y) : p }

    /// The file's frame → Kiln's world, the inverse of `fromKiln`.
    @inlinable
    public func toKiln(_ p: SIMD3<Float>) -> SIMD3<Float> { self == .z ? SIMD3(p.x, p.z, -p.y) : p }
}

/// Writes `TriangleMesh` values through Assimp's exporters.
///
/// The scene is built by hand in C memory (Assimp's C API has no builders) following the Assimp
/// 5.2.5 rules in REFERENCE.md §9: identity root transform, at least one material with
/// `mNumAllocated ≥ mNumProperties`, triangle primitive type, two UV components, and an embedded
/// texture `*0` for glb. `aiExportScene` deep-copies the scene, so Kiln frees what it allocated.
///
/// What Kiln does beyond Assimp, so that the files open right in Blender and engines:
/// - vertex colours are sRGB-encoded in every format but glTF (whose `COLOR_0` is linear), and
///   for OBJ, FBX and DAE also baked into a texture the material shows (`bakesVertexColors`);
/// - `up` turns the mesh for formats whose users expect Z up (PLY, STL), and Kiln marks the file
///   (a PLY `comment kiln up z`, the STL header) so that its own import turns it back;
/// - glTF states `baseColorFactor` and lists only the extensions it uses (`GLTFDocument`);
/// - FBX is binary, Assimp's output with the list terminators its writer forgets (`FBXBinary`);
/// - STL is binary, written by Kiln (`BinarySTL`).
public enum MeshExport {
    /// Writes `mesh` to `url` in `format`. Formats that reference a texture file get a PNG named
    /// `<stem>_basecolor.png` beside the mesh (OBJ also gets `<stem>.mtl`, glTF `<stem>.bin`).
    /// Every file appears at once: all are written in a temporary folder and renamed into place.
    /// - Parameter up: the file's up axis; nil takes the format's `defaultUp`.
    /// - Returns: the files written, the mesh first.
    @discardableResult
    public static func write(_ mesh: TriangleMesh, to url: URL, format: MeshFormat? = nil, up: UpAxis? = nil) throws -> [URL] {
        guard let format = format ?? MeshFormat(pathExtension: url.pathExtension) else {
            throw MeshIOError(path: url.path, reason: "unknown mesh extension \".\(url.pathExtension)\": use one of \(MeshFormat.allCases.map(\.rawValue).joined(separator: ", ")) or pass --format")
        }
        if let failure = mesh.validationFailure() {
            throw MeshIOError(path: url.path, reason: "cannot export an invalid mesh: it \(failure)")
        }
        let up = up ?? format.defaultUp
        var mesh = mesh.removingUnusedVertices()
        if mesh.positions.count > Int(UInt32.max) / 2 {
            throw MeshIOError(path: url.path, reason: "too many vertices for export")
        }
        if format.bakesVertexColors, !mesh.colors.isEmpty, mesh.material.baseColorTexture == nil,
           mesh.triangleCount <= maximumTrianglesToBake {
            // Where the atlas cannot hold the charts, the file keeps its vertex colours alone.
            if let baked = try? mesh.bakingVertexColors(size: vertexColorTextureSize(triangles: mesh.triangleCount)) { mesh = baked }
        }
        if mesh.normals.isEmpty { mesh.normals = mesh.computedVertexNormals() }
        if up != .y {
            mesh.positions = mesh.positions.map(up.fromKiln)
            mesh.normals = mesh.normals.map(up.fromKiln)
        }
        if format.storesSRGBColors {
            mesh.colors = mesh.colors.map(SRGB.encode)
        }
        if format == .ply {
            // Assimp's PLY writer stores `UInt8(c · 255)`, truncating: hand it the nearest byte
            // plus a quarter step, so the file holds the rounded value.
            mesh.colors = mesh.colors.map { c in
                let clamped = pointwiseMin(pointwiseMax(c, .zero), .one)
                return ((clamped * 255).rounded(.toNearestOrEven) + 0.25) / 255
            }
        }
        let folder = url.deletingLastPathComponent()
        try FileIO.checkWritableFolder(folder)
        if format == .stl {
            try FileIO.writeAtomically(BinarySTL.encode(mesh, up: up), to: url)
            return [url]
        }
        let staging = folder.appendingPathComponent(".kiln-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard mkdir(staging.path, 0o755) == 0 else {
            throw FileIOError.posix(errno, path: staging.path, doing: "create a temporary folder")
        }
        defer { try? FileManager.default.removeItem(at: staging) }

        let stem = url.deletingPathExtension().lastPathComponent
        var textureFile: String?
        var texturePNG: [UInt8]?
        if let texture = mesh.material.baseColorTexture, format.holdsTexture, !mesh.uvs.isEmpty {
            let png = try PNG.encode(texture, text: KilnMetadata(command: "export").textEntries, source: url.path)
            texturePNG = png
            if !format.embedsTexture {
                let name = "\(stem)_basecolor.png"
                try FileIO.writeAtomically(png, to: staging.appendingPathComponent(name))
                textureFile = name
            }
        }
        let target = staging.appendingPathComponent(url.lastPathComponent)
        try SceneBuilder.withScene(mesh, embeddedPNG: format.embedsTexture ? texturePNG : nil,
                                   textureFile: textureFile) { scene in
            let status = aiExportScene(scene, format.assimpExporterID, target.path, 0)
            guard status == aiReturn_SUCCESS, FileManager.default.fileExists(atPath: target.path) else {
                throw MeshIOError(path: url.path, reason: "Assimp could not write \(format) (the C export API gives no reason; check free disk space and the folder's permissions)")
            }
        }
        try finish(target, format: format, material: mesh.material, up: up, source: url.path)
        // Move the mesh last so that its sidecars (mtl, bin, png) exist before it appears.
        let produced = try FileManager.default.contentsOfDirectory(atPath: staging.path)
            .sorted { ($0 == url.lastPathComponent ? 1 : 0, $0) < ($1 == url.lastPathComponent ? 1 : 0, $1) }
        var written: [URL] = []
        for name in produced {
            let destination = folder.appendingPathComponent(name)
            guard rename(staging.appendingPathComponent(name).path, destination.path) == 0 else {
                throw FileIOError.posix(errno, path: destination.path, doing: "move the exported file into place")
            }
            written.append(destination)
        }
        return [written.last!] + written.dropLast()
    }

    /// Above this many triangles vertex colours are not baked (a 2048² texture would give each
    /// under 8 texels, and the atlas takes seconds): OBJ, FBX and DAE keep them as vertex colours.
    static let maximumTrianglesToBake = 500_000

    /// The side of the texture that carries vertex colours for OBJ, FBX and DAE: about 32 texels
    /// a triangle, a power of two from 256 to 2048.
    static func vertexColorTextureSize(triangles: Int) -> Int {
        var size = 256
        while size < 2048 && size * size < 32 * triangles { size *= 2 }
        return size
    }

    /// What Assimp's file still needs, edited in place in the staging folder.
    static func finish(_ file: URL, format: MeshFormat, material: TriangleMesh.Material, up: UpAxis, source: String) throws {
        switch format {
        case .glb, .gltf:
            let data = try Data(contentsOf: file)
            var document = format == .glb ? try GLTFDocument(glb: data, source: source) : try GLTFDocument(gltf: data, source: source)
            document.setBaseColorFactor(material.baseColorFactor)
            document.dropUnusedExtensions()
            try FileIO.writeAtomically(format == .glb ? document.glbData() : document.gltfData(), to: file)
        case .fbx:
            try FileIO.writeAtomically(FBXBinary.finishingAssimpOutput(Data(contentsOf: file), source: source), to: file)
        case .ply where up != .y:
            try FileIO.writeAtomically(PLYUpMark.markingZUp(Data(contentsOf: file), source: source), to: file)
        case .ply, .obj, .dae, .stl:
            break
        }
    }
}

extension MeshExport {
    /// Writes a GLB whose mesh moves: `frames[i]` are the vertex positions at `times[i]` seconds
    /// (the first is `mesh` itself), played as a morph-target animation. Assimp writes the morph
    /// targets but drops the weights that animate them (`tools/assimp_animation_probe.sh`), so
    /// Kiln adds them to the file itself: an animation whose one channel drives the mesh node's
    /// `weights`, each frame's target at full weight at its time, linear in between. Each target
    /// carries its frame's normals too, so shading follows the motion. The file appears at once,
    /// as `write`'s do.
    public static func writeAnimatedGLB(_ mesh: TriangleMesh, frames: [[SIMD3<Float>]], times: [Float], to url: URL) throws {
        guard frames.count >= 2, frames.count == times.count, frames.allSatisfy({ $0.count == mesh.positions.count }),
              zip(times, times.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw MeshIOError(path: url.path, reason: "an animation needs at least two frames of the mesh's \(mesh.positions.count) vertices at increasing times")
        }
        guard mesh.removingUnusedVertices().positions.count == mesh.positions.count else {
            throw MeshIOError(path: url.path, reason: "the animated mesh has unused vertices; clean it before exporting")
        }
        if let failure = mesh.validationFailure() { throw MeshIOError(path: url.path, reason: "cannot export an invalid mesh: it \(failure)") }
        guard frames.allSatisfy({ $0.allSatisfy { $0.x.isFinite && $0.y.isFinite && $0.z.isFinite } }) else {
            throw MeshIOError(path: url.path, reason: "an animation frame has non-finite vertex positions")
        }
        let folder = url.deletingLastPathComponent()
        try FileIO.checkWritableFolder(folder)
        let staging = folder.appendingPathComponent(".kiln-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).glb")
        defer { try? FileManager.default.removeItem(at: staging) }
        let texture = try mesh.material.baseColorTexture.map { try PNG.encode($0, text: KilnMetadata(command: "export").textEntries, source: url.path) }
        var base = mesh
        if base.normals.isEmpty { base.normals = base.computedVertexNormals() }
        let targets = frames.dropFirst().map { positions -> (positions: [SIMD3<Float>], normals: [SIMD3<Float>]) in
            var frame = base
            frame.positions = positions
            return (positions, frame.computedVertexNormals())
        }
        try SceneBuilder.withScene(base, embeddedPNG: mesh.uvs.isEmpty ? nil : texture, textureFile: nil, morphTargets: targets) { scene in
            guard aiExportScene(scene, MeshFormat.glb.assimpExporterID, staging.path, 0) == aiReturn_SUCCESS else {
                throw MeshIOError(path: url.path, reason: "Assimp could not write glb (check free disk space and the folder's permissions)")
            }
        }
        var document = try GLTFDocument(glb: Data(contentsOf: staging), source: url.path)
        try document.addMorphWeightAnimation(targets: frames.count - 1, times: times)
        document.setBaseColorFactor(mesh.material.baseColorFactor)
        document.dropUnusedExtensions()
        try FileIO.writeAtomically(document.glbData(), to: url)
    }
}

extension GLTFDocument {
    /// Adds an animation of the single mesh's morph weights: at `times[k]` (k ≥ 1) target k − 1
    /// has weight 1 and the others 0 (frame 0 is the base mesh), linear in between.
    mutating func addMorphWeightAnimation(targets: Int, times: [Float]) throws {
        guard var meshes = json["meshes"] as? [[String: Any]], meshes.count == 1,
              let nodes = json["nodes"] as? [[String: Any]], let node = nodes.firstIndex(where: { $0["mesh"] as? Int == 0 }) else {
            throw failure("no node holding the mesh")
        }
        var weights: [Float] = []
        for k in times.indices { for target in 0..<targets { weights.append(target == k - 1 ? 1 : 0) } }
        let input = appendFloatAccessor(times, minMax: true), output = appendFloatAccessor(weights)
        meshes[0]["weights"] = [Float](repeating: 0, count: targets).map(Double.init)
        json["meshes"] = meshes
        var animations = json["animations"] as? [[String: Any]] ?? []
        animations.append(["name": "motion",
                           "samplers": [["input": input, "output": output, "interpolation": "LINEAR"]],
                           "channels": [["sampler": 0, "target": ["node": node, "path": "weights"]]]])
        json["animations"] = animations
    }
}

// MARK: - Building an aiScene by hand

/// Owns every C allocation of one hand-built scene and frees them together.
private final class CArena {
    private var blocks: [UnsafeMutableRawPointer] = []
    deinit { blocks.forEach { free($0) } }

    /// Zero-filled memory for `count` values of `T`.
    func allocate<T>(_ type: T.Type, count: Int = 1) -> UnsafeMutablePointer<T> {
        let raw = calloc(max(count, 1), MemoryLayout<T>.stride)!
        blocks.append(raw)
        return raw.bindMemory(to: T.self, capacity: max(count, 1))
    }
}

private enum SceneBuilder {
    static func withScene<R>(_ mesh: TriangleMesh, embeddedPNG: [UInt8]?, textureFile: String?,
                             morphTargets: [(positions: [SIMD3<Float>], normals: [SIMD3<Float>])] = [],
                             _ body: (UnsafePointer<aiScene>) throws -> R) throws -> R {
        let arena = CArena()
        let scene = arena.allocate(aiScene.self)
        let root = arena.allocate(aiNode.self)
        setString(&root.pointee.mName, "root")
        root.pointee.mTransformation = MeshImport.identityMatrix  // a zero transform collapses every vertex
        root.pointee.mNumMeshes = 1
        root.pointee.mMeshes = arena.allocate(UInt32.self)
        root.pointee.mMeshes[0] = 0
        scene.pointee.mRootNode = root

        let aimesh = arena.allocate(aiMesh.self)
        fill(aimesh, from: mesh, arena: arena)
        if !morphTargets.isEmpty {
            // Absolute positions; Assimp's glTF 2 exporter writes them as displacements.
            let targets = arena.allocate(UnsafeMutablePointer<aiAnimMesh>?.self, count: morphTargets.count)
            for (k, frame) in morphTargets.enumerated() {
                let target = arena.allocate(aiAnimMesh.self)
                setString(&target.pointee.mName, "frame_\(k + 1)")
                target.pointee.mNumVertices = UInt32(frame.positions.count)
                let vertices = arena.allocate(aiVector3D.self, count: frame.positions.count)
                for (i, p) in frame.positions.enumerated() { vertices[i] = aiVector3D(x: p.x, y: p.y, z: p.z) }
                target.pointee.mVertices = vertices
                let normals = arena.allocate(aiVector3D.self, count: frame.normals.count)
                for (i, n) in frame.normals.enumerated() { normals[i] = aiVector3D(x: n.x, y: n.y, z: n.z) }
                target.pointee.mNormals = normals
                targets[k] = target
            }
            aimesh.pointee.mNumAnimMeshes = UInt32(morphTargets.count)
            aimesh.pointee.mAnimMeshes = targets
        }
        scene.pointee.mNumMeshes = 1
        scene.pointee.mMeshes = arena.allocate(UnsafeMutablePointer<aiMesh>?.self)
        scene.pointee.mMeshes[0] = aimesh

        let material = arena.allocate(aiMaterial.self)
        var texturePath: String?
        if let embeddedPNG {
            let texture = arena.allocate(aiTexture.self)
            texture.pointee.mWidth = UInt32(embeddedPNG.count)  // byte count of compressed data
            texture.pointee.mHeight = 0
            withUnsafeMutableBytes(of: &texture.pointee.achFormatHint) { hint in
                for (i, c) in "png".utf8.enumerated() { hint[i] = c }
            }
            let data = arena.allocate(UInt8.self, count: embeddedPNG.count)
            data.update(from: embeddedPNG, count: embeddedPNG.count)
            texture.pointee.pcData = UnsafeMutableRawPointer(data).bindMemory(to: aiTexel.self, capacity: 1)
            scene.pointee.mNumTextures = 1
            scene.pointee.mTextures = arena.allocate(UnsafeMutablePointer<aiTexture>?.self)
            scene.pointee.mTextures[0] = texture
            texturePath = "*0"
        } else if let textureFile {
            texturePath = textureFile
        }
        fill(material, from: mesh.material, texturePath: texturePath, arena: arena)
        scene.pointee.mNumMaterials = 1
        scene.pointee.mMaterials = arena.allocate(UnsafeMutablePointer<aiMaterial>?.self)
        scene.pointee.mMaterials[0] = material
        return try body(scene)
    }

    static func setString(_ target: inout aiString, _ value: String) {
        let bytes = Array(value.utf8.prefix(1023))
        target.length = UInt32(bytes.count)
        withUnsafeMutableBytes(of: &target.data) { data in
            for (i, b) in bytes.enumerated() { data[i] = b }
            data[bytes.count] = 0
        }
    }

    static func fill(_ target: UnsafeMutablePointer<aiMesh>, from mesh: TriangleMesh, arena: CArena) {
        let v = mesh.positions.count
        target.pointee.mPrimitiveTypes = UInt32(aiPrimitiveType_TRIANGLE.rawValue)
        target.pointee.mNumVertices = UInt32(v)
        setString(&target.pointee.mName, "mesh")
        let positions = arena.allocate(aiVector3D.self, count: v)
        for (i, p) in mesh.positions.enumerated() { positions[i] = aiVector3D(x: p.x, y: p.y, z: p.z) }
        target.pointee.mVertices = positions
        let normalsSource = mesh.normals.isEmpty ? mesh.computedVertexNormals() : mesh.normals  // `write` fills them
        let normals = arena.allocate(aiVector3D.self, count: v)
        for (i, n) in normalsSource.enumerated() { normals[i] = aiVector3D(x: n.x, y: n.y, z: n.z) }
        target.pointee.mNormals = normals
        if !mesh.uvs.isEmpty {
            let uvs = arena.allocate(aiVector3D.self, count: v)
            for (i, t) in mesh.uvs.enumerated() { uvs[i] = aiVector3D(x: t.x, y: t.y, z: 0) }
            target.pointee.mTextureCoords.0 = uvs
            target.pointee.mNumUVComponents.0 = 2  // else the glTF exporter drops the UVs
        }
        if !mesh.colors.isEmpty {
            let colors = arena.allocate(aiColor4D.self, count: v)
            for (i, c) in mesh.colors.enumerated() { colors[i] = aiColor4D(r: c.x, g: c.y, b: c.z, a: c.w) }
            target.pointee.mColors.0 = colors
        }
        let f = mesh.triangles.count
        let faces = arena.allocate(aiFace.self, count: f)
        let indices = arena.allocate(UInt32.self, count: 3 * f)
        for (i, t) in mesh.triangles.enumerated() {
            indices[3 * i] = t.x; indices[3 * i + 1] = t.y; indices[3 * i + 2] = t.z
            faces[i] = aiFace(mNumIndices: 3, mIndices: indices + 3 * i)
        }
        target.pointee.mNumFaces = UInt32(f)
        target.pointee.mFaces = faces
        target.pointee.mMaterialIndex = 0
    }

    // MARK: Material properties

    /// One `aiMaterialProperty`: key, texture semantic and index, type and raw bytes.
    private static func property(_ key: String, semantic: UInt32 = 0, index: UInt32 = 0,
                                 type: aiPropertyTypeInfo, bytes: [UInt8], arena: CArena)
        -> UnsafeMutablePointer<aiMaterialProperty> {
        let p = arena.allocate(aiMaterialProperty.self)
        setString(&p.pointee.mKey, key)
        p.pointee.mSemantic = semantic
        p.pointee.mIndex = index
        p.pointee.mType = type
        p.pointee.mDataLength = UInt32(bytes.count)
        let data = arena.allocate(CChar.self, count: bytes.count)
        for (i, b) in bytes.enumerated() { data[i] = CChar(bitPattern: b) }
        p.pointee.mData = data
        return p
    }

    private static func floats(_ values: [Float]) -> [UInt8] {
        values.withUnsafeBytes { Array($0) }
    }

    /// A material string property: uint32 length, the UTF-8 bytes and a NUL.
    private static func string(_ value: String) -> [UInt8] {
        let utf8 = Array(value.utf8.prefix(1023))
        return withUnsafeBytes(of: UInt32(utf8.count).littleEndian) { Array($0) } + utf8 + [0]
    }

    static func fill(_ target: UnsafeMutablePointer<aiMaterial>, from material: TriangleMesh.Material,
                     texturePath: String?, arena: CArena) {
        let c = material.baseColorFactor
        var properties = [
            property("?mat.name", type: aiPTI_String, bytes: string(material.name), arena: arena),
            property("$clr.base", type: aiPTI_Float, bytes: floats([c.x, c.y, c.z, c.w]), arena: arena),
            property("$clr.diffuse", type: aiPTI_Float, bytes: floats([c.x, c.y, c.z, c.w]), arena: arena),
            property("$mat.opacity", type: aiPTI_Float, bytes: floats([c.w]), arena: arena),
            property("$mat.metallicFactor", type: aiPTI_Float, bytes: floats([material.metallicFactor]), arena: arena),
            property("$mat.roughnessFactor", type: aiPTI_Float, bytes: floats([material.roughnessFactor]), arena: arena),
            property("$mat.twosided", type: aiPTI_Integer, bytes: withUnsafeBytes(of: Int32(0)) { Array($0) }, arena: arena),
        ]
        if let texturePath {
            for semantic in [aiTextureType_DIFFUSE, aiTextureType_BASE_COLOR] {
                properties.append(property("$tex.file", semantic: UInt32(semantic.rawValue), type: aiPTI_String,
                                           bytes: string(texturePath), arena: arena))
            }
        }
        let list = arena.allocate(UnsafeMutablePointer<aiMaterialProperty>?.self, count: properties.count)
        for (i, p) in properties.enumerated() { list[i] = p }
        target.pointee.mProperties = list
        target.pointee.mNumProperties = UInt32(properties.count)
        target.pointee.mNumAllocated = UInt32(properties.count)  // export deep-copies mNumAllocated slots
    }
}
