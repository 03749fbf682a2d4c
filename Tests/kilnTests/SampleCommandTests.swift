import Foundation
import Testing

@Suite("kiln sample", .serialized)
struct SampleCommandTests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("KilnPriorTests/Fixtures/pipelines/tiny").path

    @Test("writes a grid PNG with the prompt, seed and settings in its metadata, the same for the same seed")
    func writesGrid() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("grid.png").path
            let run = try KilnRun("sample", "a red snowman", "--prior", Self.tiny, "--steps", "2", "--count", "2", "--seed", "9",
                                  "--azimuth", "90", "--out", out)
            #expect(run.status == 0, "\(run.stderr)")
            let bytes = try Data(contentsOf: URL(fileURLWithPath: out))
            #expect(bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]))
            let text = String(decoding: bytes, as: UTF8.self)
            for needle in ["a red snowman", "\"seed\":9", "azimuthDegrees", "\"steps\":2"] {
                #expect(text.contains(needle), "metadata lacks \(needle)")
            }
            let again = folder.appendingPathComponent("again.png").path
            #expect(try KilnRun("sample", "a red snowman", "--prior", Self.tiny, "--steps", "2", "--count", "2", "--seed", "9",
                                "--azimuth", "90", "--out", again).status == 0)
            #expect(try Data(contentsOf: URL(fileURLWithPath: again)) == bytes)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["again.png", "grid.png"])
        }
    }

    @Test("a closed vocabulary warns about unknown words and lists the known ones")
    func vocabularyWarning() throws {
        try withScratchFolder { folder in
            let prior = folder.appendingPathComponent("prior")
            try FileManager.default.copyItem(atPath: Self.tiny, toPath: prior.path)
            try Data(#"{"conditioning": "view-v1", "vocabulary": ["a", "red", "blue", "snowman"]}"#.utf8)
                .write(to: prior.appendingPathComponent("kiln_prior.json"))
            let run = try KilnRun("sample", "a purple snowman", "--prior", prior.path, "--steps", "1", "--count", "1",
                                  "--out", folder.appendingPathComponent("s.png").path)
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("\"purple\"") && run.stderr.contains("a, blue, red, snowman"), "\(run.stderr)")
        }
    }

    @Test("bad flags and bad priors give a message and a non-zero exit, and no file")
    func errors() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("x.png").path
            let cases: [([String], String)] = [
                (["sample", "a red snowman", "--prior", Self.tiny, "--steps", "0", "--out", out], "--steps"),
                (["sample", "a red snowman", "--prior", Self.tiny, "--count", "100", "--out", out], "--count"),
                (["sample", "a red snowman", "--prior", Self.tiny, "--elevation", "120", "--out", out], "--elevation"),
                (["sample", "a red snowman", "--prior", Self.tiny, "--out", folder.appendingPathComponent("x.jpg").path], ".png"),
                (["sample", " ", "--prior", Self.tiny, "--out", out], "prompt"),
                (["sample", "a red snowman", "--prior", folder.appendingPathComponent("missing").path, "--out", out], "not a folder"),
                (["sample", "a red snowman", "--prior", Self.tiny, "--sharpness", "2", "--out", out], "sharpness"),
            ]
            for (arguments, needle) in cases {
                let run = try KilnRun(arguments)
                #expect(run.status != 0 && (run.stderr + run.stdout).contains(needle), "\(arguments): \(run.stderr)")
            }
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }
}
