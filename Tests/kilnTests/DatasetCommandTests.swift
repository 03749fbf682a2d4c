import Foundation
import Testing

@Suite("kiln dataset", .serialized)
struct DatasetCommandTests {
    @Test("writes shards, captions, a preview and the manifest; the same seed gives the same bytes; --resume finishes a run")
    func writesAndResumes() throws {
        try withScratchFolder { folder in
            let a = folder.appendingPathComponent("a").path, b = folder.appendingPathComponent("b").path
            let run = try KilnRun("dataset", "--count", "10", "--out", a, "--seed", "5", "--size", "24", "--shard-size", "4", "--meshes")
            #expect(run.status == 0, "\(run.stderr)")
            let files = try FileManager.default.contentsOfDirectory(atPath: a).sorted()
            #expect(files == ["dataset.json", "meshes", "preview.png", "shard_00000.jsonl", "shard_00000.safetensors", "shard_00001.jsonl",
                              "shard_00001.safetensors", "shard_00002.jsonl", "shard_00002.safetensors"], "\(files)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: a + "/meshes").count == 10)
            let lines = try String(contentsOfFile: a + "/shard_00002.jsonl", encoding: .utf8).split(separator: "\n")
            #expect(lines.count == 2 && lines[0].contains("\"index\":8") && lines[0].contains("\"caption\":"))
            #expect(try KilnRun("dataset", "--count", "10", "--out", b, "--seed", "5", "--size", "24", "--shard-size", "4").status == 0)
            for name in ["shard_00000.safetensors", "shard_00001.jsonl", "shard_00002.safetensors", "dataset.json"] {
                #expect(FileManager.default.contents(atPath: a + "/" + name) == FileManager.default.contents(atPath: b + "/" + name), "\(name) differs")
            }
            // An interrupted run: the manifest not yet written, the last shard missing.
            try FileManager.default.removeItem(atPath: b + "/dataset.json")
            try FileManager.default.removeItem(atPath: b + "/shard_00002.jsonl")
            try FileManager.default.copyItem(atPath: a + "/dataset.json", toPath: b + "/dataset.partial.json")
            let resumed = try KilnRun("dataset", "--count", "10", "--out", b, "--seed", "5", "--size", "24", "--shard-size", "4", "--resume")
            #expect(resumed.status == 0, "\(resumed.stderr)")
            #expect(resumed.stdout.contains("shard_00002") && !resumed.stdout.contains("shard_00000:"), "\(resumed.stdout)")
            #expect(FileManager.default.contents(atPath: a + "/shard_00002.jsonl") == FileManager.default.contents(atPath: b + "/shard_00002.jsonl"))
            #expect(!FileManager.default.fileExists(atPath: b + "/dataset.partial.json"))
        }
    }

    @Test("bad flags, a resume with other settings, and a non-empty folder are refused with a message")
    func errors() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("d").path
            #expect(try KilnRun("dataset", "--count", "3", "--out", out, "--size", "16").status == 0)
            let cases: [([String], String)] = [
                (["dataset", "--count", "0", "--out", folder.appendingPathComponent("x").path], "--count"),
                (["dataset", "--count", "5", "--size", "4", "--out", folder.appendingPathComponent("x").path], "--size"),
                (["dataset", "--count", "5", "--motion-probability", "2", "--out", folder.appendingPathComponent("x").path], "--motion-probability"),
                (["dataset", "--count", "3", "--out", out, "--size", "16"], "not empty"),
                (["dataset", "--count", "3", "--out", out, "--size", "16", "--resume"], "dataset.partial.json"),
                (["dataset", "--count", "3", "--out", out, "--resume", "--force"], "contradict"),
            ]
            for (arguments, needle) in cases {
                let run = try KilnRun(arguments)
                #expect(run.status != 0 && (run.stderr + run.stdout).contains(needle), "\(arguments): \(run.stderr)")
            }
            // A partial run with other settings.
            let other = folder.appendingPathComponent("o").path
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: out + "/dataset.json", toPath: other + "/dataset.partial.json")
            let run = try KilnRun("dataset", "--count", "3", "--out", other, "--size", "32", "--resume")
            #expect(run.status != 0 && run.stderr.contains("other settings"), "\(run.stderr)")
        }
    }
}
