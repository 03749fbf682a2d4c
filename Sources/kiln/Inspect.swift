import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a PNG, mesh or splat file holds.",
        discussion: """
        PNG: size, bit depth, colour type and every text chunk (Kiln's prompt, seed and settings). \
        Mesh (any format Assimp reads; imported in an isolated process): vertex and triangle counts, \
        bounds, attributes, material and texture. Splat (3DGS .ply or .splat): count, SH degree, \
        bounds, opacity and scale statistics.
        """
    )

    @Argument(help: "The file to inspect.", completion: .file())
    var file: String

    @Flag(help: "Print a JSON object instead of text.")
    var json = false

    @OptionGroup var paths: InputPathOptions

    func run() throws {
        let report = try InspectReport(URL(fileURLWithPath: file), allowOutsidePaths: paths.allowOutsidePaths)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("\(file)")
            print(report.text)
        }
    }
}
