import CAssimp
import Foundation
import KilnCore

/// A mesh read from a file, merged into one `TriangleMesh`, with what the file held.
public struct ImportedMesh: Sendable, Equatable {
    public var mesh: TriangleMesh
    public var info: Info

    /// Facts about the source scene, for `kiln inspect` and for warnings.
    public struct Info: Codable, Sendable, Equatable {
        /// Meshes in the scene (all merged, node transforms applied).
        public var sourceMeshCount: Int = 0
        public var nodeCount: Int = 0
        public var materialCount: Int = 0
        public var embeddedTextureCount: Int = 0
        /// Where the base-colour texture came from: `*N` (embedded) or a file name; nil if none.
        public var textureSource: String?
        /// Things the import could not keep (unsupported texture formats, missing files, ...).
        public var warnings: [String] = []
    }
}

/// Reads meshes with Assimp.
///
/// Debian's Assimp is built with assertions on and its importers have known memory-safety bugs
/// (REFERENCE.md §9), so a hostile file can `abort()` or corrupt the process that reads it.
/// `MeshImport.read` therefore runs the import in a child `kiln` process with resource limits
/// and takes back only a validated, plain serialisation of the result.
public enum MeshImport {
    /// Resource limits for the import child.
    public struct Limits: Sendable {
        public var addressSpaceBytes: Int = 16 << 30
        public var cpuSeconds: Int = 300
        public var wallSeconds: Double = 600
        public init() {}

        /// Limits sized to the file: 10 s of CPU plus 2 s per MB (Assimp reads a 38 MB, 2M-face
        /// binary PLY in about 5 s), at most 300 s; the wall clock gets twice that plus 10 s. A
        /// small hostile file that sends an importer into a loop (a mutated 300 KB DAE did) is
        /// stopped within seconds.
        public static func scaled(toFileSize bytes: Int) -> Limits {
            var limits = Limits()
            limits.cpuSeconds = min(300, 10 + 2 * (bytes >> 20))
            limits.wallSeconds = Double(2 * limits.cpuSeconds + 10)
            return limits
        }
    }

    /// Post-processing Kiln asks of Assimp: triangles, shared vertices, smooth normals where the
    /// file has none, a validated structure, point and line primitives split out.
    static let postProcessFlags: UInt32 = UInt32(aiProcess_Triangulate.rawValue | aiProcess_JoinIdenticalVertices.rawValue
        | aiProcess_GenSmoothNormals.rawValue | aiProcess_ValidateDataStructure.rawValue
        | aiProcess_SortByPType.rawValue)

    /// Reads a mesh file in an isolated child process (see the type's documentation).
    ///
    /// Files that are known to hang an Assimp importer (a PLY whose header never ends, or whose
    /// body is shorter than its header promises) are refused before Assimp sees them.
    /// - Parameters:
    ///   - limits: the child's limits; by default `Limits.scaled(toFileSize:)`.
    ///   - worker: the `kiln` executable to run as `kiln _import-worker IN OUT`;
    ///     defaults to `MeshImport.workerExecutable()`.
    ///   - allowOutsidePaths: let materials name texture files outside the mesh's folder
    ///     (`../`, absolute paths); by default such a texture is an error.
    public static func read(_ url: URL, limits: Limits? = nil, worker: URL? = nil, allowOutsidePaths: Bool = false) throws -> ImportedMesh {
        let size = try checkReadable(url)
        try PLYPrecheck.check(url)
        guard let executable = worker ?? workerExecutable() else {
            throw MeshIOError(path: url.path, reason: "cannot find the kiln executable to import meshes in isolation: set KILN_EXECUTABLE to its path")
        }
        var imported = try IsolatedProcess.importMesh(url, executable: executable, limits: limits ?? .scaled(toFileSize: size),
                                                      allowOutsidePaths: allowOutsidePaths)
        // A PLY or STL that Kiln wrote Z up says so; turn it back to Kiln's Y up.
        let up = UpMark.read(url)
        if up != .y {
            imported.mesh.positions = imported.mesh.positions.map(up.toKiln)
            imported.mesh.normals = imported.mesh.normals.map(up.toKiln)
        }
        return imported
    }

    /// The executable that hosts isolated imports: `$KILN_EXECUTABLE`, this process when it is
    /// `kiln`, or a `kiln` beside this process's executable (as in a build folder).
    public static func workerExecutable() -> URL? {
        if let path = ProcessInfo.processInfo.environment["KILN_EXECUTABLE"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        if me.lastPathComponent == "kiln" { return me }
        var folder = me.deletingLastPathComponent()
        for _ in 0..<3 {  // test bundles live in `<build>/X.xctest/...`
            let candidate = folder.appendingPathComponent("kiln")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            folder = folder.deletingLastPathComponent()
        }
        return nil
    }

    /// Throws unless `url` is a readable, non-empty regular file; returns its size in bytes.
    @discardableResult
    static func checkReadable(_ url: URL) throws -> Int {
        var info = stat()
        if stat(url.path, &info) != 0 {
            throw FileIOError.posix(errno, path: url.path, doing: "open the mesh")
        }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw MeshIOError(path: url.path, reason: "is a folder, not a mesh file") }
        if info.st_size == 0 { throw MeshIOError(path: url.path, reason: "is empty (0 bytes): re-export the file") }
        if access(url.path, R_OK) != 0 { throw FileIOError.posix(errno, path: url.path, doing: "read the mesh") }
        return Int(info.st_size)
    }

    // MARK: - In-process import (only inside the isolated child)

    /// Imports in this process. Unsafe on untrusted files: a malformed file can abort the process.
    /// Use `read(_:)`; this is what the isolated child runs.
    public static func unsafeReadInProcess(_ url: URL, allowOutsidePaths: Bool = false) throws -> ImportedMesh {
        try checkReadable(url)
        guard let scene = aiImportFile(url.path, postProcessFlags) else {
            let reason = String(cString: aiGetErrorString())
            throw MeshIOError(path: url.path, reason: "Assimp cannot read it: \(reason.isEmpty ? "unknown format or corrupt file" : reason)")
        }
        defer { aiReleaseImport(scene) }
        return try convert(scene.pointee, source: url, allowOutsidePaths: allowOutsidePaths)
    }

    /// Merges every triangle mesh of the scene, node transforms applied, into one `TriangleMesh`.
    static func convert(_ scene: aiScene, source: URL, allowOutsidePaths: Bool = false) throws -> ImportedMesh {
        var info = ImportedMesh.Info()
        info.materialCount = Int(scene.mNumMaterials)
        info.embeddedTextureCount = Int(scene.mNumTextures)
        guard let root = scene.mRootNode else {
            throw MeshIOError(path: source.path, reason: "the scene has no root node")
        }
        // Collect (mesh index, world transform) for every node reference.
        var placements: [(Int, aiMatrix4x4)] = []
        func visit(_ node: UnsafeMutablePointer<aiNode>, _ parent: aiMatrix4x4, depth: Int) {
            info.nodeCount += 1
            guard depth < 256 else { return }
            let world = multiply(parent, node.pointee.mTransformation)
            for i in 0..<Int(node.pointee.mNumMeshes) {
                let index = Int(node.pointee.mMeshes[i])
                if index < Int(scene.mNumMeshes) { placements.append((index, world)) }
            }
            for i in 0..<Int(node.pointee.mNumChildren) {
                if let child = node.pointee.mChildren[i] { visit(child, world, depth: depth + 1) }
            }
        }
        visit(root, identityMatrix, depth: 0)

        struct Part { var mesh: UnsafeMutablePointer<aiMesh>; var transform: aiMatrix4x4; var baseColor: SIMD4<Float> }
        var parts: [Part] = []
        for (index, transform) in placements {
            guard let mesh = scene.mMeshes[index],
                  mesh.pointee.mPrimitiveTypes & UInt32(aiPrimitiveType_TRIANGLE.rawValue) != 0,
                  mesh.pointee.mNumFaces > 0 else { continue }
            var color = SIMD4<Float>(1, 1, 1, 1)
            if Int(mesh.pointee.mMaterialIndex) < Int(scene.mNumMaterials), let m = scene.mMaterials[Int(mesh.pointee.mMaterialIndex)] {
                color = materialColor(m) ?? color
            }
            parts.append(Part(mesh: mesh, transform: transform, baseColor: color))
        }
        info.sourceMeshCount = parts.count
        let anyColors = parts.contains { $0.mesh.pointee.mColors.0 != nil }
        let distinctMaterialColors = Set(parts.map { [$0.baseColor.x, $0.baseColor.y, $0.baseColor.z, $0.baseColor.w] }).count > 1
        // When parts have different material colours, vertex colours carry them (multiplied in), so
        // nothing is lost by merging into one material; otherwise colours and factor stay as they are.
        let bakeMaterialColors = distinctMaterialColors
        let bakeColors = anyColors || distinctMaterialColors
        let anyUVs = parts.contains { $0.mesh.pointee.mTextureCoords.0 != nil }
        // Vertex colours are linear in glTF and sRGB-encoded everywhere else (PLY, OBJ, FBX, DAE...).
        let srgbColors = MeshFormat(pathExtension: source.pathExtension)?.storesSRGBColors ?? true

        var out = TriangleMesh()
        for part in parts {
            let m = part.mesh.pointee
            let base = UInt32(out.positions.count)
            let normalMatrix = normalTransform(part.transform)
            for v in 0..<Int(m.mNumVertices) {
                let p = m.mVertices[v]
                out.positions.append(transformPoint(part.transform, SIMD3(p.x, p.y, p.z)))
                if let normals = m.mNormals {
                    let n = normals[v]
                    var t = normalMatrix.0 * n.x + normalMatrix.1 * n.y + normalMatrix.2 * n.z
                    let l = (t * t).sum().squareRoot()
                    t = l > 0 && l.isFinite ? t / l : SIMD3(0, 1, 0)
                    out.normals.append(t)
                } else {
                    out.normals.append(SIMD3(0, 1, 0))
                }
                if anyUVs {
                    if let uv = m.mTextureCoords.0 { out.uvs.append(SIMD2(uv[v].x, uv[v].y)) } else { out.uvs.append(.zero) }
                }
                if bakeColors {
                    var c = SIMD4<Float>(1, 1, 1, 1)
                    if let colors = m.mColors.0 {
                        c = SIMD4(colors[v].r, colors[v].g, colors[v].b, colors[v].a)
                        if srgbColors { c = SRGB.decode(c) }
                    }
                    out.colors.append(bakeMaterialColors ? c * part.baseColor : c)
                }
            }
            for f in 0..<Int(m.mNumFaces) {
                let face = m.mFaces[f]
                guard face.mNumIndices == 3 else { continue }  // points and lines are not surfaces
                out.triangles.append(SIMD3(base + face.mIndices[0], base + face.mIndices[1], base + face.mIndices[2]))
            }
        }
        if out.triangles.isEmpty {
            throw MeshIOError(path: source.path, reason: "the file holds no triangles (\(scene.mNumMeshes) meshes, \(info.nodeCount) nodes): it may be only points, lines or an empty scene")
        }
        // Material: the first mesh's material gives the name, factors and texture.
        if let first = parts.first, Int(first.mesh.pointee.mMaterialIndex) < Int(scene.mNumMaterials),
           let material = scene.mMaterials[Int(first.mesh.pointee.mMaterialIndex)] {
            out.material.name = materialName(material) ?? "material"
            out.material.baseColorFactor = bakeMaterialColors ? SIMD4(1, 1, 1, 1) : first.baseColor
            out.material.metallicFactor = materialFloat(material, "$mat.metallicFactor") ?? 0
            out.material.roughnessFactor = materialFloat(material, "$mat.roughnessFactor") ?? 1
            if anyUVs { out.material.baseColorTexture = try loadTexture(material, scene: scene, source: source, allowOutsidePaths: allowOutsidePaths, info: &info) }
        }
        if let failure = out.validationFailure() {
            throw MeshIOError(path: source.path, reason: "the imported mesh is inconsistent: it \(failure)")
        }
        return ImportedMesh(mesh: out, info: info)
    }

    // MARK: Materials and textures

    static func materialColor(_ material: UnsafeMutablePointer<aiMaterial>) -> SIMD4<Float>? {
        var color = aiColor4D()
        for key in ["$clr.base", "$clr.diffuse"] where aiGetMaterialColor(material, key, 0, 0, &color) == aiReturn_SUCCESS {
            return SIMD4(color.r, color.g, color.b, color.a)
        }
        return nil
    }

    static func materialFloat(_ material: UnsafeMutablePointer<aiMaterial>, _ key: String) -> Float? {
        var value: Float = 0
        var count: UInt32 = 1
        return aiGetMaterialFloatArray(material, key, 0, 0, &value, &count) == aiReturn_SUCCESS ? value : nil
    }

    static func materialName(_ material: UnsafeMutablePointer<aiMaterial>) -> String? {
        var name = aiString()
        guard aiGetMaterialString(material, "?mat.name", 0, 0, &name) == aiReturn_SUCCESS else { return nil }
        return string(name)
    }

    static func string(_ s: aiString) -> String {
        var copy = s
        let length = min(Int(copy.length), 1023)
        return withUnsafeBytes(of: &copy.data) { String(decoding: $0.prefix(length), as: UTF8.self) }
    }

    static func loadTexture(_ material: UnsafeMutablePointer<aiMaterial>, scene: aiScene, source: URL, allowOutsidePaths: Bool,
                            info: inout ImportedMesh.Info) throws -> Image? {
        var path = aiString()
        var found = false
        for type in [aiTextureType_BASE_COLOR, aiTextureType_DIFFUSE] where aiGetMaterialTexture(material, type, 0, &path, nil, nil, nil, nil, nil, nil) == aiReturn_SUCCESS {
            found = true
            break
        }
        guard found else { return nil }
        let reference = string(path)
        info.textureSource = reference
        // Embedded: "*N", or a file name matching an embedded texture's name.
        var embedded: UnsafeMutablePointer<aiTexture>?
        if reference.hasPrefix("*"), let index = Int(reference.dropFirst()), index >= 0, index < Int(scene.mNumTextures) {
            embedded = scene.mTextures[index]
        } else {
            let short = (reference as NSString).lastPathComponent
            for i in 0..<Int(scene.mNumTextures) {
                if let t = scene.mTextures[i], (string(t.pointee.mFilename) as NSString).lastPathComponent == short { embedded = t }
            }
        }
        if let texture = embedded?.pointee {
            if texture.mHeight == 0 {
                let bytes = [UInt8](UnsafeRawBufferPointer(start: texture.pcData, count: Int(texture.mWidth)))
                do { return try PNG.decode(bytes, source: "\(source.lastPathComponent) texture \(reference)").image() } catch {
                    info.warnings.append("embedded texture \(reference) is not a PNG (Kiln reads PNG textures): \(error)")
                    return nil
                }
            }
            // Uncompressed BGRA8888 texels.
            let w = Int(texture.mWidth), h = Int(texture.mHeight)
            var image = Image(width: w, height: h, channels: 4)
            for i in 0..<(w * h) {
                let t = texture.pcData[i]
                image.pixels[4 * i] = Float(t.r) / 255; image.pixels[4 * i + 1] = Float(t.g) / 255
                image.pixels[4 * i + 2] = Float(t.b) / 255; image.pixels[4 * i + 3] = Float(t.a) / 255
            }
            return image
        }
        // A file beside the mesh (relative paths resolve against the mesh's folder).
        let normalized = reference.replacingOccurrences(of: "\\", with: "/")
        let file = normalized.hasPrefix("/") ? URL(fileURLWithPath: normalized)
            : source.deletingLastPathComponent().appendingPathComponent(normalized)
        if !allowOutsidePaths, !FileIO.isInside(file, folder: source.deletingLastPathComponent()) {
            throw MeshIOError(path: source.path, reason: "its material names the texture \"\(reference)\", outside the mesh's folder; "
                              + "Kiln reads only files beside the mesh: copy the texture into the mesh's folder, or pass --allow-outside-paths if you trust the file")
        }
        do {
            return try PNG.read(file).image()
        } catch {
            info.warnings.append("texture \(reference) was not loaded: \(error)")
            return nil
        }
    }

    // MARK: Matrices (Assimp's are row-major: a1…a4 is the first row)

    static let identityMatrix: aiMatrix4x4 = {
        var m = aiMatrix4x4()
        m.a1 = 1; m.b2 = 1; m.c3 = 1; m.d4 = 1
        return m
    }()

    static func rows(_ m: aiMatrix4x4) -> [[Float]] {
        [[m.a1, m.a2, m.a3, m.a4], [m.b1, m.b2, m.b3, m.b4], [m.c1, m.c2, m.c3, m.c4], [m.d1, m.d2, m.d3, m.d4]]
    }

    static func multiply(_ a: aiMatrix4x4, _ b: aiMatrix4x4) -> aiMatrix4x4 {
        let x = rows(a), y = rows(b)
        var r = [[Float]](repeating: [0, 0, 0, 0], count: 4)
        for i in 0..<4 { for j in 0..<4 { for k in 0..<4 { r[i][j] += x[i][k] * y[k][j] } } }
        return aiMatrix4x4(a1: r[0][0], a2: r[0][1], a3: r[0][2], a4: r[0][3], b1: r[1][0], b2: r[1][1], b3: r[1][2], b4: r[1][3],
                           c1: r[2][0], c2: r[2][1], c3: r[2][2], c4: r[2][3], d1: r[3][0], d2: r[3][1], d3: r[3][2], d4: r[3][3])
    }

    static func transformPoint(_ m: aiMatrix4x4, _ p: SIMD3<Float>) -> SIMD3<Float> {
        SIMD3(m.a1 * p.x + m.a2 * p.y + m.a3 * p.z + m.a4,
              m.b1 * p.x + m.b2 * p.y + m.b3 * p.z + m.b4,
              m.c1 * p.x + m.c2 * p.y + m.c3 * p.z + m.c4)
    }

    /// Columns of the inverse-transpose of the upper 3×3 (the cofactor matrix, up to scale).
    static func normalTransform(_ m: aiMatrix4x4) -> (SIMD3<Float>, SIMD3<Float>, SIMD3<Float>) {
        let r0 = SIMD3(m.a1, m.a2, m.a3), r1 = SIMD3(m.b1, m.b2, m.b3), r2 = SIMD3(m.c1, m.c2, m.c3)
        // cofactor(M) rows are r1×r2, r2×r0, r0×r1; n' = cof(M)·n, so its columns are these.
        let c0 = cross(r1, r2), c1 = cross(r2, r0), c2 = cross(r0, r1)
        let det = (r0 * c0).sum()
        let s: Float = det < 0 ? -1 : 1
        return (SIMD3(c0.x, c1.x, c2.x) * s, SIMD3(c0.y, c1.y, c2.y) * s, SIMD3(c0.z, c1.z, c2.z) * s)
    }
}
