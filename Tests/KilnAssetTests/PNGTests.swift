import Foundation
import KilnCore
import Testing
@testable import KilnAsset

@Suite("PNG through libpng")
struct PNGTests {
    func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> Image {
        var rng = TestRandom(seed: seed)
        var image = Image(width: width, height: height, channels: channels)
        // Exact 8-bit levels so that the round trip can be compared exactly.
        for i in image.pixels.indices { image.pixels[i] = Float(rng.next() % 256) / 255 }
        return image
    }

    @Test("8-bit gray, RGB and RGBA round trip exactly", arguments: [1, 2, 3, 4])
    func roundTrip8(channels: Int) throws {
        let image = randomImage(width: 17, height: 5, channels: channels, seed: UInt64(channels))
        let png = try PNG.decode(PNG.encode(image))
        #expect(png.width == 17 && png.height == 5 && png.bitDepth == 8)
        #expect(png.colorType == [.gray, .grayAlpha, .rgb, .rgba][channels - 1])
        let back = png.image(channels: 4)
        for p in 0..<(17 * 5) {
            for c in 0..<4 {
                let source: Float
                switch (channels, c) {
                case (1, 3), (3, 3): source = 1
                case (1, _): source = image.pixels[p]
                case (2, 3): source = image.pixels[2 * p + 1]
                case (2, _): source = image.pixels[2 * p]
                default: source = image.pixels[p * channels + c]
                }
                #expect(back.pixels[p * 4 + c] == source, "pixel \(p) channel \(c)")
            }
        }
        #expect(png.rgba8[0] == UInt8((image.pixels[0] * 255).rounded()))
    }

    @Test("16-bit grayscale keeps every sample value")
    func gray16() throws {
        var rng = TestRandom(seed: 7)
        let samples = (0..<(33 * 9)).map { _ in UInt16(truncatingIfNeeded: rng.next()) } + []
        let png = try PNG.decode(PNG.encodeGray16(samples, width: 33, height: 9))
        #expect(png.bitDepth == 16 && png.colorType == .gray)
        for i in samples.indices {
            #expect(png.rgba16[4 * i] == samples[i] && png.rgba16[4 * i + 1] == samples[i] && png.rgba16[4 * i + 3] == 65535)
        }
    }

    @Test("UTF-8 iTXt metadata is written and read back")
    func metadata() throws {
        struct Settings: Codable { var guidance = 7.5; var steps = 500; var method = "sds" }
        let settings = Settings()
        let meta = KilnMetadata(command: "sample", prompt: "a red snowman ☃ — «ünïcödé»", seed: 42, settings: settings)
        let png = try PNG.decode(PNG.encode(Image(width: 2, height: 2, channels: 3), text: meta.textEntries))
        #expect(png.text(for: "prompt") == "a red snowman ☃ — «ünïcödé»")
        #expect(png.text(for: "seed") == "42")
        #expect(png.text(for: "Software") == KilnMetadata.softwareName)
        let back = try #require(KilnMetadata(png: png))
        #expect(back == meta)
        #expect(back.settings == .object(["guidance": .number(7.5), "steps": .number(500), "method": .string("sds")]))
        #expect(png.text(for: "kiln")?.contains(#""settings":{"guidance":7.5,"method":"sds","steps":500}"#) == true)
    }

    @Test("The text is an iTXt chunk placed before the image data")
    func chunkLayout() throws {
        let bytes = try PNG.encode(Image(width: 1, height: 1, channels: 3), text: [PNGTextEntry("prompt", "ü")])
        var offset = 8, types: [String] = []
        while offset + 8 <= bytes.count {
            let length = Int(bytes[offset]) << 24 | Int(bytes[offset + 1]) << 16 | Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            types.append(String(decoding: bytes[(offset + 4)..<(offset + 8)], as: UTF8.self))
            offset += 12 + length
        }
        #expect(types.first == "IHDR" && types.last == "IEND")
        let itxt = try #require(types.firstIndex(of: "iTXt"))
        #expect(itxt < types.firstIndex(of: "IDAT")!)
    }

    @Test("Invalid keywords and NaN pixels are refused")
    func badInputs() throws {
        #expect(throws: PNGError.self) { try PNG.encode(Image(width: 1, height: 1, channels: 3), text: [PNGTextEntry("", "x")]) }
        #expect(throws: PNGError.self) { try PNG.encode(Image(width: 1, height: 1, channels: 3), text: [PNGTextEntry(String(repeating: "k", count: 80), "x")]) }
        var image = Image(width: 3, height: 2, channels: 3)
        image[2, 1, 1] = .nan
        let error = try #require(throws: PNGError.self) { try PNG.encode(image) }
        #expect(error.reason.contains("(2, 1)"))
    }

    @Test("Truncated, corrupt and non-PNG data give errors, never crashes")
    func corrupt() throws {
        let good = try PNG.encode(randomImage(width: 40, height: 30, channels: 4, seed: 3), text: [PNGTextEntry("k", "v")])
        for cut in [0, 7, 8, 20, 33, 50, good.count / 2, good.count - 13] {
            #expect(throws: PNGError.self, "cut at \(cut)") { try PNG.decode(Array(good.prefix(cut))) }
        }
        var flipped = good
        flipped[good.count / 2] ^= 0xFF  // inside IDAT: CRC or zlib failure
        #expect(throws: PNGError.self) { try PNG.decode(flipped) }
        let error = try #require(throws: PNGError.self) { try PNG.decode(Array("GIF89a not a png".utf8)) }
        #expect(error.reason.contains("not a PNG"))
        // A header claiming a 1,000,000 × 1,000,000 image must be refused before allocating.
        var huge = good
        huge.replaceSubrange(16..<24, with: [0x00, 0x0F, 0x42, 0x40, 0x00, 0x0F, 0x42, 0x40])
        #expect(throws: PNGError.self) { try PNG.decode(huge) }
    }

    @Test("Files are written atomically and bad destinations leave nothing behind")
    func files() throws {
        try withTemporaryFolder { folder in
            let url = folder.appendingPathComponent("a.png")
            try PNG.write(Image(width: 3, height: 3, channels: 4, fill: 0.5), to: url, metadata: KilnMetadata(prompt: "p"))
            #expect(try PNG.read(url).text(for: "prompt") == "p")
            #expect(allFiles(folder) == ["a.png"])

            let missing = folder.appendingPathComponent("no/such/folder/b.png")
            let error = try #require(throws: FileIOError.self) { try PNG.write(Image(width: 1, height: 1, channels: 3), to: missing, metadata: KilnMetadata()) }
            #expect(error.reason.contains("does not exist"))

            let locked = folder.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
            chmod(locked.path, 0o500)
            defer { chmod(locked.path, 0o700) }
            if getuid() != 0 {  // root ignores permission bits
                #expect(throws: FileIOError.self) { try PNG.write(Image(width: 1, height: 1, channels: 3), to: locked.appendingPathComponent("c.png"), metadata: KilnMetadata()) }
                #expect(allFiles(locked).isEmpty)
            }
            // A NaN image fails before anything is created.
            var bad = Image(width: 2, height: 2, channels: 3)
            bad.pixels[0] = .infinity
            #expect(throws: PNGError.self) { try PNG.write(bad, to: folder.appendingPathComponent("bad.png"), metadata: KilnMetadata()) }
            #expect(allFiles(folder) == ["a.png", "locked"])
            #expect(throws: FileIOError.self) { try PNG.read(folder.appendingPathComponent("locked")) }
            // A path whose "folder" is a file cannot be written, even by root.
            let notFolder = folder.appendingPathComponent("a.png/c.png")
            let notFolderError = try #require(throws: FileIOError.self) { try PNG.write(Image(width: 1, height: 1, channels: 3), to: notFolder, metadata: KilnMetadata()) }
            #expect(notFolderError.description.contains("a.png"))
            #expect(allFiles(folder) == ["a.png", "locked"])
        }
    }
}

extension PNGTests {
    @Test("A header promising more pixels than the data can hold is refused before allocating")
    func inflatedHeader() throws {
        // 8×8 RGBA, then the IHDR edited to 12000×12000 (under the pixel limit) with a valid CRC.
        var bytes = try PNG.encode(Image(width: 8, height: 8, channels: 4))
        bytes.replaceSubrange(16..<24, with: [0, 0, 0x2E, 0xE0, 0, 0, 0x2E, 0xE0])
        let crc = crc32(Array(bytes[12..<29]))
        bytes.replaceSubrange(29..<33, with: [UInt8(crc >> 24), UInt8(crc >> 16 & 0xFF), UInt8(crc >> 8 & 0xFF), UInt8(crc & 0xFF)])
        let error = try #require(throws: PNGError.self) { try PNG.decode(bytes) }
        #expect(error.reason.contains("more pixels than"))
    }

    func crc32(_ data: [UInt8]) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in data {
            c ^= UInt32(b)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        }
        return c ^ 0xFFFF_FFFF
    }
}

extension PNGTests {
    /// Inputs the fuzzer found (tools/fuzz.sh); each once made a reader misbehave.
    @Test("Fuzzer findings stay fixed")
    func fuzzFindings() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/fuzz")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted()
        #expect(names.contains("png-huge-text-chunk.png"))
        for name in names {
            let bytes = try FileIO.read(folder.appendingPathComponent(name))
            // Text chunks whose length fields claim 637 MB and 1.7 GB: refused without allocating.
            #expect(throws: PNGError.self, "\(name)") { try PNG.decode(bytes, source: name) }
            _ = try? SplatPLY.decode(bytes, source: name)
            _ = try? SplatFile.decode(bytes, source: name)
        }
    }
}
