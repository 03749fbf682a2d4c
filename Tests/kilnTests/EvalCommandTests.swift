import Foundation
import Testing

@Suite("kiln eval", .serialized)
struct EvalCommandTests {
    @Test("toy-world meshes are recognised from every side with their captions; the report, its markdown and the sheet are written",
          .enabled(if: FileManager.default.fileExists(atPath: "assets/rewards/alignment.safetensors")))
    func toyMeshes() throws {
        try withScratchFolder { folder in
            let data = folder.appendingPathComponent("data").path
            #expect(try KilnRun("dataset", "--count", "3", "--size", "32", "--meshes", "--out", data).status == 0)
            let records = try String(contentsOfFile: data + "/shard_00000.jsonl", encoding: .utf8).split(separator: "\n")
            for (i, line) in records.enumerated() {
                let caption = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                let out = folder.appendingPathComponent("eval\(i)").path
                let run = try KilnRun("eval", data + String(format: "/meshes/sample_%07d.glb", i), "--prompt", caption["caption"] as! String, "--out", out)
                #expect(run.status == 0, "\(run.stderr)")
                let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/report.json"))) as! [String: Any]
                let score = report["score"] as! [String: Any]
                #expect((score["kindAccuracy"] as! Double) >= 0.75, "\(caption["caption"]!): \(score["kindAccuracy"]!)")
                #expect((score["perView"] as! [Any]).count == 16 && report["meshHealth"] != nil)
                #expect(FileManager.default.fileExists(atPath: out + "/report.md") && FileManager.default.fileExists(atPath: out + "/sheet.png"))
            }
        }
    }

    @Test("bad input gives a message and a non-zero exit")
    func errors() throws {
        try withScratchFolder { folder throws in
            let out = folder.appendingPathComponent("e").path
            #expect(try KilnRun("eval", folder.appendingPathComponent("missing.glb").path, "--out", out).status != 0)
            #expect(try KilnRun("eval", folder.path, "--out", out).stderr.contains("neither splats.ply nor asset.glb"))
            #expect(try KilnRun("eval", folder.path, "--size", "50", "--out", out).stderr.contains("--size"))
            #expect(!FileManager.default.fileExists(atPath: out + "/report.json"))
        }
    }
}
