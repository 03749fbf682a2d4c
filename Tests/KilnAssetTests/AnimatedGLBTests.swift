import Foundation
import KilnCore
import Testing
@testable import KilnAsset

@Suite("Animated GLB: morph targets through Assimp, their weights animated by Kiln")
struct AnimatedGLBTests {
    /// The JSON and binary chunks of a GLB.
    static func chunks(_ data: Data) throws -> (json: [String: Any], binary: Data) {
        func word(_ at: Int) -> Int { Int(data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: at, as: UInt32.self)) }) }
        #expect(word(0) == 0x4654_6C67 && word(4) == 2 && word(8) == data.count)
        let jsonLength = word(12), binStart = 20 + jsonLength
        let json = try JSONSerialization.jsonObject(with: data.subdata(in: 20..<binStart)) as! [String: Any]
        #expect(word(binStart + 4) == 0x004E_4942 && binStart + 8 + word(binStart) == data.count)
        return (json, data.subdata(in: (binStart + 8)..<data.count))
    }

    static func floats(_ json: [String: Any], _ binary: Data, accessor: Int) -> [Float] {
        let a = (json["accessors"] as! [[String: Any]])[accessor]
        let view = (json["bufferViews"] as! [[String: Any]])[a["bufferView"] as! Int]
        let offset = (view["byteOffset"] as? Int ?? 0) + (a["byteOffset"] as? Int ?? 0)
        let width = ["SCALAR": 1, "VEC3": 3][a["type"] as! String]!
        return (0..<((a["count"] as! Int) * width)).map { i in
            binary.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4 * i, as: Float.self) }
        }
    }

    @Test("three frames: two targets holding the displacements, a weights channel keyed at the frames' times, readable by Assimp")
    func frames() throws {
        try withTemporaryFolder { folder in
            let mesh = TriangleMesh.box(size: SIMD3(1, 2, 1))
            let base = mesh.positions
            let frames = [base, base.map { $0 + SIMD3(0, 0.5, 0) }, base.map { $0 * 1.5 }]
            let url = folder.appendingPathComponent("moving.glb")
            try MeshExport.writeAnimatedGLB(mesh, frames: frames, times: [0, 0.5, 1], to: url)
            let (json, binary) = try Self.chunks(Data(contentsOf: url))
            let primitive = ((json["meshes"] as! [[String: Any]])[0]["primitives"] as! [[String: Any]])[0]
            let targets = primitive["targets"] as! [[String: Int]]
            #expect(targets.count == 2)
            // Target k holds frame k + 1 minus the base, vertex by vertex.
            let positions = Self.floats(json, binary, accessor: (primitive["attributes"] as! [String: Int])["POSITION"]!)
            for (k, target) in targets.enumerated() {
                let d = Self.floats(json, binary, accessor: target["POSITION"]!)
                for i in 0..<base.count {
                    for a in 0..<3 {
                        let expected = frames[k + 1][i][a] - base[i][a]
                        #expect(abs(d[3 * i + a] - expected) < 1e-5 && abs(positions[3 * i + a] - base[i][a]) < 1e-6)
                    }
                }
            }
            let animation = (json["animations"] as! [[String: Any]])[0]
            let channel = (animation["channels"] as! [[String: Any]])[0]
            #expect((channel["target"] as! [String: Any])["path"] as? String == "weights")
            let sampler = (animation["samplers"] as! [[String: Any]])[0]
            #expect(Self.floats(json, binary, accessor: sampler["input"] as! Int) == [0, 0.5, 1])
            #expect(Self.floats(json, binary, accessor: sampler["output"] as! Int) == [0, 0, 1, 0, 0, 1])
            #expect(((json["meshes"] as! [[String: Any]])[0]["weights"] as! [Double]) == [0, 0])
            // Assimp reads the file back: the same mesh.
            let imported = try MeshImport.read(url)
            #expect(imported.mesh.positions.count == base.count && imported.mesh.triangleCount == mesh.triangleCount)
        }
    }

    @Test("bad frames are refused with the reason, and nothing is written")
    func errors() throws {
        try withTemporaryFolder { folder in
            let mesh = TriangleMesh.box()
            let url = folder.appendingPathComponent("bad.glb")
            #expect(throws: MeshIOError.self) { try MeshExport.writeAnimatedGLB(mesh, frames: [mesh.positions], times: [0], to: url) }
            #expect(throws: MeshIOError.self) { try MeshExport.writeAnimatedGLB(mesh, frames: [mesh.positions, [SIMD3(0, 0, 0)]], times: [0, 1], to: url) }
            #expect(throws: MeshIOError.self) { try MeshExport.writeAnimatedGLB(mesh, frames: [mesh.positions, mesh.positions], times: [1, 1], to: url) }
            #expect(visibleFiles(folder).isEmpty)
        }
    }
}
