import Foundation
import KilnAsset
import KilnNN
import KilnPrior
import Testing
@testable import KilnRun

/// `kiln sample --latents` on Stable-Diffusion-layout folders: the PNG it writes against diffusers'
/// images from the same latents (goldens: tools/make_sd_pipeline_goldens.py).
@Suite("kiln sample --latents against diffusers")
struct LatentSamplingTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnPriorTests/Fixtures/sd")

    /// Samples the first of the folder's latents to a PNG (count 1: the image itself) and compares
    /// it with diffusers' image, in 8-bit steps.
    func maxDifference(_ name: String) throws -> Int {
        let folder = Self.fixtures.appendingPathComponent(name)
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-latents-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }
        let (shape, values) = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("latents.safetensors")).tensor("latents")
        let one = shape.dropFirst().reduce(1, *)
        var writer = SafeTensorsWriter()
        try writer.add("latents", shape: [1] + shape.dropFirst(), values: Array(values[0..<one]))
        let latents = temp.appendingPathComponent("latents.safetensors")
        try writer.write(to: latents)
        var job = PriorSampling(prior: folder, prompt: "a red snowman", output: temp.appendingPathComponent("image.png"))
        (job.steps, job.guidanceScale, job.latents, job.count) = (10, 7.5, latents, 4)  // the file's count wins unless asked for
        try job.run()
        let png = try PNG.read(temp.appendingPathComponent("image.png"))
        #expect(png.width == 64 && png.height == 64)
        let (_, expected) = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors")).tensor("images")
        var worst = 0
        for i in 0..<(64 * 64) {
            for c in 0..<3 {
                let ours = Int(png.rgba16[i * 4 + c] >> 8)  // 8-bit samples widened to 16 bits
                let theirs = Int((expected[i * 3 + c] * 255).rounded())
                worst = max(worst, abs(ours - theirs))
            }
        }
        return worst
    }

    @Test("SD 1.5-like: the PNG is diffusers' image within 2/255")
    func sd15() throws { #expect(try maxDifference("sd15-tiny") <= 2) }

    @Test("SD 2.1-like (v-prediction): the PNG is diffusers' image within 2/255")
    func sd21() throws { #expect(try maxDifference("sd21-tiny") <= 2) }

    @Test("a latents file without the tensor, of the wrong shape, or against --count is refused by name")
    func badLatents() throws {
        let folder = Self.fixtures.appendingPathComponent("sd15-tiny")
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-latents-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: temp, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: temp) }
        func attempt(_ name: String, shape: [Int], count: Int? = nil) throws -> String {
            var writer = SafeTensorsWriter()
            try writer.add(name, shape: shape, values: Array(repeating: 0.5, count: shape.reduce(1, *)))
            let url = temp.appendingPathComponent("l.safetensors")
            try writer.write(to: url)
            var job = PriorSampling(prior: folder, prompt: "a red snowman", output: temp.appendingPathComponent("x.png"))
            (job.steps, job.latents) = (1, url)
            if let count { (job.count, job.countGiven) = (count, true) }
            do { try job.run() } catch { return "\(error)" }
            return "no error"
        }
        #expect(try attempt("noise", shape: [1, 4, 8, 8]).contains("no tensor named \"latents\""))
        #expect(try attempt("latents", shape: [1, 3, 8, 8]).contains("not [1, 4, h, w]"))
        #expect(try attempt("latents", shape: [4, 8, 8]).contains("[count, 4, h, w]"))
        #expect(try attempt("latents", shape: [2, 4, 8, 8], count: 3).contains("holds 2 samples"))
        #expect(!FileManager.default.fileExists(atPath: temp.appendingPathComponent("x.png").path))
    }
}
