import Foundation
import Testing

@Suite("kiln render with meshes", .serialized)
struct RenderMeshTests {
    /// An ASCII OBJ tetrahedron with vertex colours (the common `v x y z r g b` extension).
    static let tetrahedron = """
    v 0 1 0 1 0 0
    v -1 -1 1 0 1 0
    v 1 -1 1 0 0 1
    v 0 -1 -1 1 1 0
    f 1 2 3
    f 1 3 4
    f 1 4 2
    f 2 4 3

    """

    @Test("render shades any mesh Assimp reads, with depth and normals")
    func renderMesh() throws {
        try withScratchFolder { folder in
            let obj = folder.appendingPathComponent("tetra.obj")
            try Self.tetrahedron.write(to: obj, atomically: true, encoding: .utf8)
            let views = folder.appendingPathComponent("views").path
            let run = try KilnRun("render", obj.path, "--views", "3", "--size", "40", "--out", views, "--depth", "--normals", "--background", "black")
            #expect(run.status == 0, "\(run.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: views).sorted()
            #expect(files == ["depth_000.png", "depth_001.png", "depth_002.png", "normal_000.png", "normal_001.png", "normal_002.png",
                              "sheet.png", "transforms.json", "view_000.png", "view_001.png", "view_002.png"])
            let inspect = try KilnRun("inspect", "\(views)/view_000.png", "--json")
            #expect(inspect.status == 0 && inspect.stdout.contains("\"width\" : 40"))

            // The demo's glTF snowman (textured crate as OBJ + MTL + PNG) renders too.
            let demo = folder.appendingPathComponent("demo").path
            #expect(try KilnRun("demo", "--out", demo, "--splats", "500", "--size", "16").status == 0)
            for asset in ["snowman.glb", "crate.obj"] {
                let out = folder.appendingPathComponent("r-\(asset)").path
                let r = try KilnRun("render", "\(demo)/\(asset)", "--views", "2", "--size", "32", "--out", out)
                #expect(r.status == 0, "\(asset): \(r.stderr)")
            }
        }
    }

    @Test("render refuses empty meshes and --normals for splats, with a message")
    func badMeshInput() throws {
        try withScratchFolder { folder in
            let empty = folder.appendingPathComponent("points.obj")
            try "v 0 0 0\nv 1 0 0\n".write(to: empty, atomically: true, encoding: .utf8)
            let r = try KilnRun("render", empty.path, "--out", folder.appendingPathComponent("a").path)
            #expect(r.status == 1 && (r.stderr.contains("triangles") || r.stderr.contains("no faces")), "\(r.stderr)")
            let corrupt = folder.appendingPathComponent("broken.glb")
            try Data("glTF garbage".utf8).write(to: corrupt)
            let c = try KilnRun("render", corrupt.path, "--out", folder.appendingPathComponent("b").path)
            #expect(c.status == 1 && !c.stderr.isEmpty)
            let demo = folder.appendingPathComponent("demo").path
            #expect(try KilnRun("demo", "--out", demo, "--splats", "200", "--size", "16").status == 0)
            let n = try KilnRun("render", "\(demo)/splats.ply", "--normals", "--out", folder.appendingPathComponent("c").path)
            #expect(n.status == 1 && n.stderr.contains("--normals"), "\(n.stderr)")
        }
    }
}
