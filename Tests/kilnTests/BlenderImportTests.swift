import Foundation
import Testing

/// Blender is on this machine (`tools/setup.sh --blender` installs Debian's).
private let blender: String? = ["/usr/bin/blender", "/usr/local/bin/blender"].first { FileManager.default.isExecutableFile(atPath: $0) }

@Suite("Exports open right in Blender", .enabled(if: blender != nil, "Blender is not installed (tools/setup.sh --blender)"))
struct BlenderImportTests {
    /// `tools/blender_check.py` of this checkout.
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("tools/blender_check.py")

    struct Row: Decodable {
        struct Colour: Decodable { var shown: [Double]?; var shown_by: String; var attribute: [Double]? }
        var file: String
        var imported: Bool
        var error: String?
        var faces: Int?
        var bounds: [[Double]]?
        var colours: [Colour]?
    }

    /// Imports `files` with tools/blender_check.py and returns its rows.
    static func check(_ files: [String], in folder: URL) throws -> [String: Row] {
        let json = folder.appendingPathComponent("blender.json")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: blender!)
        process.arguments = ["-b", "--factory-startup", "--python", script.path, "--"] + files + ["--json", json.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let rows = try JSONDecoder().decode([Row].self, from: Data(contentsOf: json))
        return Dictionary(uniqueKeysWithValues: rows.map { ($0.file, $0) })
    }

    @Test("all seven formats import with the right faces, size, orientation (Z up) and colours")
    func sevenFormats() throws {
        try withScratchFolder { folder in
            let demo = try KilnRun("demo", "--out", folder.path, "--splats", "200", "--size", "32")
            #expect(demo.status == 0, "\(demo.stderr)")
            let formats = ["glb", "gltf", "obj", "fbx", "ply", "stl", "dae"]
            let rows = try Self.check(formats.map { folder.appendingPathComponent("snowman.\($0)").path }, in: folder)
            // glTF is the reference: Y up by its specification, linear COLOR_0 that Blender's importer wires itself.
            let reference = try #require(rows["snowman.glb"])
            let referenceBounds = try #require(reference.bounds)
            let referenceColour = try #require(reference.colours?.first?.shown)
            // The snowman is 1.5 tall along Kiln's +Y: Blender, Z up, must see it standing.
            #expect(abs(referenceBounds[0][2] - 0) < 1e-3 && abs(referenceBounds[1][2] - 1.5) < 1e-3, "glb bounds \(referenceBounds)")
            for format in formats {
                let row = try #require(rows["snowman.\(format)"], "no row for \(format)")
                #expect(row.imported, "\(format): \(row.error ?? "no mesh")")
                guard row.imported, let bounds = row.bounds, let colour = row.colours?.first else { continue }
                #expect(row.faces == 3160, "\(format): \(row.faces ?? 0) faces")
                for k in 0..<3 {
                    #expect(abs(bounds[0][k] - referenceBounds[0][k]) < 2e-3 && abs(bounds[1][k] - referenceBounds[1][k]) < 2e-3,
                            "\(format): bounds \(bounds), glb \(referenceBounds)")
                }
                switch format {
                case "stl":
                    break  // STL holds no colour
                case "ply":
                    // Blender's PLY importer makes no material: the colour attribute is what shows.
                    let attribute = try #require(colour.attribute, "ply: no colour attribute")
                    #expect(zip(attribute, referenceColour).allSatisfy { abs($0 - $1) < 0.01 }, "ply: colours \(attribute), glb \(referenceColour)")
                default:
                    // The material shows the colours (texture or attribute), not a flat default.
                    let shown = try #require(colour.shown, "\(format): the material shows no colour (\(colour.shown_by))")
                    #expect(colour.shown_by != "base colour value", "\(format): the material does not use the colours")
                    #expect(zip(shown, referenceColour).allSatisfy { abs($0 - $1) < 0.02 }, "\(format): shows \(shown), glb \(referenceColour)")
                }
            }
        }
    }
}
