import Foundation
import KilnCore
import Testing
@testable import KilnAsset

@Suite("Meshes through Assimp")
struct MeshIOTests {
    /// Imported vertex closest to `p` (formats may duplicate or reorder vertices).
    func nearest(_ p: SIMD3<Float>, in mesh: TriangleMesh) -> Int {
        var best = 0, bestDistance = Float.infinity
        for (i, q) in mesh.positions.enumerated() {
            let d = ((q - p) * (q - p)).sum()
            if d < bestDistance { best = i; bestDistance = d }
        }
        return best
    }

    /// Triangles as sorted corner positions with their orientation sign, for order-free comparison.
    func triangleSignature(_ mesh: TriangleMesh) -> [String] {
        mesh.triangles.map { t in
            let a = mesh.positions[Int(t.x)], b = mesh.positions[Int(t.y)], c = mesh.positions[Int(t.z)]
            // `+ 0` makes −0 (from turning a Z-up file back) print as 0.
            let corners = [a, b, c].map { "\(($0.x * 1000).rounded() + 0),\(($0.y * 1000).rounded() + 0),\(($0.z * 1000).rounded() + 0)" }.sorted()
            let e1 = b - a, e2 = c - a
            let n = SIMD3(e1.y * e2.z - e1.z * e2.y, e1.z * e2.x - e1.x * e2.z, e1.x * e2.y - e1.y * e2.x)
            let centroid = (a + b + c) / 3 - SIMD3(0.25, 0, -0.5)  // cube centre: outward normals point away
            return corners.joined(separator: "|") + ((n * centroid).sum() > 0 ? "+" : "-")
        }.sorted()
    }

    @Test("Every export format round-trips what it can hold", arguments: MeshFormat.allCases)
    func roundTrip(format: MeshFormat) throws {
        let cube = sampleCube()
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("cube.\(format)")
            let written = try MeshExport.write(cube, to: url)
            #expect(written.first == url)
            let expectedFiles: [String] = switch format {
            case .glb, .ply, .stl: ["cube.\(format)"]
            case .gltf: ["cube.bin", "cube.gltf", "cube_basecolor.png"]
            case .obj: ["cube.mtl", "cube.obj", "cube_basecolor.png"]
            case .fbx, .dae: ["cube.\(format)", "cube_basecolor.png"]
            }
            #expect(allFiles(folder) == expectedFiles.sorted())

            let back = try MeshImport.read(url).mesh
            #expect(back.triangleCount == 12)
            #expect(triangleSignature(back) == triangleSignature(cube), "geometry or winding changed")
            #expect(back.normals.count == back.vertexCount)
            for (i, p) in cube.positions.enumerated() {
                let j = nearest(p, in: back)
                let dp = back.positions[j] - p
                #expect((dp * dp).sum() < 1e-10, "vertex \(i) moved by \(dp)")
                if format.holdsVertexColors {
                    // PLY holds 8-bit sRGB: compare there, within half a step.
                    func stored(_ c: SIMD4<Float>) -> SIMD4<Float> {
                        format.storesSRGBColors ? SIMD4(SRGB.encode(c.x), SRGB.encode(c.y), SRGB.encode(c.z), c.w) : c
                    }
                    let dc = stored(back.colors[j]) - stored(cube.colors[i])
                    let tolerance: Float = format == .ply ? 0.5 / 255 + 1e-5 : 1e-5
                    #expect(dc.x.magnitude <= tolerance && dc.y.magnitude <= tolerance && dc.z.magnitude <= tolerance, "colour of vertex \(i): \(back.colors[j]) vs \(cube.colors[i])")
                }
                if format != .stl {
                    let du = back.uvs[j] - cube.uvs[i]
                    #expect(du.x.magnitude < 1e-5 && du.y.magnitude < 1e-5, "uv of vertex \(i): \(back.uvs[j]) vs \(cube.uvs[i])")
                }
            }
            if format.holdsTexture {
                let texture = try #require(back.material.baseColorTexture, "texture lost")
                #expect(texture.width == 4 && texture.height == 2)
                let source = cube.material.baseColorTexture!
                for y in 0..<2 { for x in 0..<4 { for c in 0..<4 {
                    #expect(abs(texture[x, y, c] - source[x, y, c]) <= 0.5 / 255, "texel (\(x), \(y)) channel \(c)")
                } } }
            }
            if [.glb, .gltf, .obj, .fbx].contains(format) {
                let f = back.material.baseColorFactor
                #expect(abs(f.x - 0.8) < 1e-5 && abs(f.y - 0.6) < 1e-5 && abs(f.z - 0.4) < 1e-5, "base colour \(f)")
                #expect(back.material.name == "cube_material")
            }
            if [.glb, .gltf].contains(format) {
                #expect(abs(back.material.metallicFactor - 0.25) < 1e-6 && abs(back.material.roughnessFactor - 0.75) < 1e-6)
            }
        }
    }

    @Test("Import applies node transforms and keeps the first UV set")
    func nodeTransforms() throws {
        // A glTF whose single triangle sits under a translated, scaled and rotated node.
        let positions: [Float] = [0, 0, 0, 1, 0, 0, 0, 1, 0]
        let indices: [UInt16] = [0, 1, 2, 0]
        var buffer = positions.withUnsafeBytes { Array($0) }
        buffer += indices.withUnsafeBytes { Array($0) }
        let gltf = """
        {"asset":{"version":"2.0"},"scene":0,"scenes":[{"nodes":[0]}],
         "nodes":[{"children":[1],"translation":[1,2,3]},{"mesh":0,"scale":[2,2,2],"rotation":[0,0,0.70710678,0.70710678]}],
         "meshes":[{"primitives":[{"attributes":{"POSITION":0},"indices":1}]}],
         "buffers":[{"byteLength":\(buffer.count),"uri":"data:application/octet-stream;base64,\(Data(buffer).base64EncodedString())"}],
         "bufferViews":[{"buffer":0,"byteOffset":0,"byteLength":36},{"buffer":0,"byteOffset":36,"byteLength":6}],
         "accessors":[{"bufferView":0,"componentType":5126,"count":3,"type":"VEC3","min":[0,0,0],"max":[1,1,0]},
                      {"bufferView":1,"componentType":5123,"count":3,"type":"SCALAR"}]}
        """
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("node.gltf")
            try Data(gltf.utf8).write(to: url)
            let imported = try MeshImport.read(url)
            let mesh = imported.mesh
            #expect(imported.info.nodeCount >= 2)
            // Rotation of 90° about +z maps x → y, y → −x; then scale 2; then translate (1, 2, 3).
            let expected: [SIMD3<Float>] = [[1, 2, 3], [1, 4, 3], [-1, 2, 3]]
            for e in expected {
                let d = mesh.positions[nearest(e, in: mesh)] - e
                #expect((d * d).sum() < 1e-8, "expected a vertex at \(e)")
            }
            // Normals were generated (the file has none) and follow the rotated face: +z.
            for n in mesh.normals { #expect(abs(n.z - 1) < 1e-5, "normal \(n)") }
        }
    }

    @Test("Several meshes with different materials merge with their colours kept")
    func multiMaterialOBJ() throws {
        let obj = """
        mtllib two.mtl
        v 0 0 0
        v 1 0 0
        v 0 1 0
        v 5 0 0
        v 6 0 0
        v 5 1 0
        o red
        usemtl red
        f 1 2 3
        o blue
        usemtl blue
        f 4 5 6
        """
        let mtl = "newmtl red\nKd 1 0 0\nnewmtl blue\nKd 0 0 1\n"
        try withTemporaryFolder { folder in
            try Data(obj.utf8).write(to: folder.appendingPathComponent("two.obj"))
            try Data(mtl.utf8).write(to: folder.appendingPathComponent("two.mtl"))
            let imported = try MeshImport.read(folder.appendingPathComponent("two.obj"))
            #expect(imported.info.sourceMeshCount == 2)
            let mesh = imported.mesh
            #expect(mesh.triangleCount == 2 && mesh.colors.count == mesh.vertexCount)
            for (p, c) in zip(mesh.positions, mesh.colors) {
                #expect(c == (p.x < 2 ? SIMD4<Float>(1, 0, 0, 1) : SIMD4<Float>(0, 0, 1, 1)), "colour \(c) at \(p)")
            }
        }
    }

    @Test("Bad mesh files give clear errors and never take Kiln down")
    func badFiles() throws {
        try withTemporaryFolder { folder in
            var rng = TestRandom(seed: 99)
            let noise = (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            let glb = folder.appendingPathComponent("noise.glb")
            try Data(noise).write(to: glb)
            let error = try #require(throws: MeshIOError.self) { try MeshImport.read(glb) }
            #expect(error.path == glb.path && !error.reason.isEmpty)

            #expect(throws: FileIOError.self) { try MeshImport.read(folder.appendingPathComponent("missing.obj")) }
            let empty = folder.appendingPathComponent("empty.obj")
            try Data().write(to: empty)
            let emptyError = try #require(throws: MeshIOError.self) { try MeshImport.read(empty) }
            #expect(emptyError.reason.contains("empty"))

            // Truncations of valid exports: each either imports to a valid mesh or fails cleanly.
            let cube = folder.appendingPathComponent("cube.glb")
            try MeshExport.write(sampleCube(), to: cube)
            let bytes = try FileIO.read(cube)
            for cut in stride(from: 12, to: bytes.count, by: max(1, bytes.count / 6)) {
                let url = folder.appendingPathComponent("cut\(cut).glb")
                try Data(bytes.prefix(cut)).write(to: url)
                do {
                    let m = try MeshImport.read(url).mesh
                    #expect(m.validationFailure() == nil)
                } catch is MeshIOError {
                }
            }
        }
    }

    @Test("A failed export leaves no file behind")
    func failedExport() throws {
        try withTemporaryFolder { folder in
            let missing = folder.appendingPathComponent("nope/out.glb")
            #expect(throws: FileIOError.self) { try MeshExport.write(sampleCube(), to: missing) }
            try Data("x".utf8).write(to: folder.appendingPathComponent("file"))
            #expect(throws: FileIOError.self) { try MeshExport.write(sampleCube(), to: folder.appendingPathComponent("file/out.obj")) }
            var broken = sampleCube()
            broken.triangles.append(SIMD3(0, 1, 99))
            let error = try #require(throws: MeshIOError.self) { try MeshExport.write(broken, to: folder.appendingPathComponent("b.glb")) }
            #expect(error.reason.contains("99"))
            #expect(throws: MeshIOError.self) { try MeshExport.write(sampleCube(), to: folder.appendingPathComponent("c.xyz")) }
            #expect(allFiles(folder) == ["file"])
        }
    }
}

extension MeshIOTests {
    /// A stand-in for the import child that dies or hangs the way Assimp can on hostile data.
    func fakeWorker(_ script: String, in folder: URL) throws -> URL {
        let url = folder.appendingPathComponent("worker.sh")
        try Data("#!/bin/sh\n\(script)\n".utf8).write(to: url)
        chmod(url.path, 0o755)
        return url
    }

    @Test("An import child that aborts, crashes, hangs or lies becomes a clear error")
    func isolatedFailures() throws {
        try withTemporaryFolder { folder in
            let input = folder.appendingPathComponent("hostile.glb")
            try Data("glTF".utf8).write(to: input)

            let abort = try #require(throws: MeshIOError.self) {
                try MeshImport.read(input, worker: fakeWorker("kill -ABRT $$", in: folder))
            }
            #expect(abort.reason.contains("aborted") && abort.reason.contains("Kiln stayed up"))

            let segv = try #require(throws: MeshIOError.self) {
                try MeshImport.read(input, worker: fakeWorker("kill -SEGV $$", in: folder))
            }
            #expect(segv.reason.contains("crashed"))

            var limits = MeshImport.Limits()
            limits.wallSeconds = 0.5
            let start = Date()
            let hang = try #require(throws: MeshIOError.self) {
                try MeshImport.read(input, limits: limits, worker: fakeWorker("exec sleep 30", in: folder))
            }
            #expect(hang.reason.contains("longer than"))
            #expect(Date().timeIntervalSince(start) < 10)

            // The child claims success but writes garbage: the parent validates and refuses it.
            let liar = try #require(throws: MeshIOError.self) {
                try MeshImport.read(input, worker: fakeWorker("printf 'KILNMSH1junk' > \"$3\"", in: folder))
            }
            #expect(liar.reason.contains("invalid result"))

            let message = try #require(throws: MeshIOError.self) {
                try MeshImport.read(input, worker: fakeWorker("echo 'it is broken' >&2; exit 2", in: folder))
            }
            #expect(message.reason == "it is broken")
        }
    }

    @Test("The plain serialisation between child and parent round-trips and rejects bad lengths")
    func wire() throws {
        let imported = ImportedMesh(mesh: sampleCube(), info: ImportedMesh.Info(sourceMeshCount: 1, warnings: ["w"]))
        let bytes = try MeshWire.encode(imported)
        let back = try MeshWire.decode(bytes)
        #expect(back.mesh.positions == imported.mesh.positions && back.mesh.triangles == imported.mesh.triangles)
        #expect(back.mesh.material.baseColorTexture == imported.mesh.material.baseColorTexture)
        #expect(back.info == imported.info)
        for cut in [0, 10, 20, bytes.count / 2, bytes.count - 1] {
            #expect(throws: (any Error).self) { try MeshWire.decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: (any Error).self) { try MeshWire.decode(bytes + [0]) }
    }
}
