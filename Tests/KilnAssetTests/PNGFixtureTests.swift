import Foundation
import Testing
@testable import KilnAsset

/// PNG layouts Kiln does not write itself (palette, 1–4-bit gray, tRNS, 16-bit RGB(A), Adam7
/// interlacing, tEXt/zTXt/iTXt), made by `tools/make_png_fixtures.py` with pypng and Pillow; the
/// expected samples come from pypng's independent decoder.
@Suite("PNG fixtures from other writers")
struct PNGFixtureTests {
    struct Expected: Decodable {
        var width: Int
        var height: Int
        var rgba16: [UInt16]
        var text: [String: String]
    }

    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/png")

    static let expected: [String: Expected] = {
        guard let data = try? Data(contentsOf: folder.appendingPathComponent("expected.json")),
              let table = try? JSONDecoder().decode([String: Expected].self, from: data) else { return [:] }
        return table
    }()

    @Test("The fixture table is present")
    func present() {
        #expect(Self.expected.count == 9, "run tools/make_png_fixtures.py")
    }

    @Test("Every layout decodes to the same RGBA samples as pypng", arguments: expected.keys.sorted())
    func decode(name: String) throws {
        let want = try #require(Self.expected[name])
        let png = try PNG.read(Self.folder.appendingPathComponent(name))
        #expect(png.width == want.width && png.height == want.height)
        var mismatches = 0, first = ""
        for i in want.rgba16.indices where png.rgba16[i] != want.rgba16[i] {
            if mismatches == 0 { first = "sample \(i) (pixel \(i / 4), channel \(i % 4)): \(png.rgba16[i]) vs \(want.rgba16[i])" }
            mismatches += 1
        }
        #expect(mismatches == 0, "\(mismatches) samples differ; first: \(first)")
        for (key, value) in want.text { #expect(png.text(for: key) == value, "text chunk \(key)") }
        #expect(png.text.count == want.text.count)
    }

    @Test("Interlaced and low-bit files report their layout")
    func layout() throws {
        let interlaced = try PNG.read(Self.folder.appendingPathComponent("gray4_interlaced.png"))
        #expect(interlaced.interlaced && interlaced.bitDepth == 4 && interlaced.colorType == .gray)
        let palette = try PNG.read(Self.folder.appendingPathComponent("palette4_alpha.png"))
        #expect(palette.colorType == .palette && !palette.interlaced)
        let deep = try PNG.read(Self.folder.appendingPathComponent("rgba16.png"))
        #expect(deep.bitDepth == 16 && deep.colorType == .rgba)
        // 16-bit samples map to [0, 1] by 65535, 8-bit ones by 255.
        #expect(deep.image().pixels[0] == Float(deep.rgba16[0]) / 65535)
    }
}
