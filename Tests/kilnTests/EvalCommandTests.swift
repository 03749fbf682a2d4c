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
                // A mesh is one surface: its hull covers every silhouette and neighbours agree in depth.
                let geometry = report["geometry"] as! [String: Any]
                #expect((geometry["minSilhouetteCoverage"] as! Double) > 0.95 && (geometry["meanDepthAgreement"] as! Double) > 0.8, "\(geometry)")
                // A clean toy mesh is not speckled (per view too), and the markdown says so.
                let speckle = report["speckle"] as! [String: Any]
                #expect((speckle["mean"] as! Double) < 0.03 && (speckle["perView"] as! [Any]).count == 16, "\(speckle)")
                #expect(try String(contentsOfFile: out + "/report.md", encoding: .utf8).contains("speckle"))
                // Where the evaluation's time went.
                let profile = try GenerateCommandTests.profile(out)
                #expect(Set(profile.keys) == ["load", "render and score", "geometric consistency", "speckle"], "\(profile.keys)")
                #expect(profile["render and score"]!.parts["render"] != nil)
                if i == 0 {
                    // The same asset gives the same report, but for the time taken.
                    let again = folder.appendingPathComponent("again").path
                    #expect(try KilnRun("eval", data + "/meshes/sample_0000000.glb", "--prompt", caption["caption"] as! String, "--out", again).status == 0)
                    func withoutTime(_ path: String) throws -> NSDictionary {
                        var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/report.json"))) as! [String: Any]
                        object["seconds"] = nil
                        object["asset"] = nil
                        return object as NSDictionary
                    }
                    #expect(try withoutTime(out) == withoutTime(again))
                }
            }
        }
    }

    /// Eight flat views of a toy mesh as `kiln render` writes them (transforms.json and PNGs).
    static func renderViews(_ folder: URL) throws -> String {
        let data = folder.appendingPathComponent("data").path
        #expect(try KilnRun("dataset", "--count", "1", "--size", "16", "--meshes", "--out", data).status == 0)
        let views = folder.appendingPathComponent("views").path
        let render = try KilnRun("render", data + "/meshes/sample_0000000.glb", "--views", "8", "--size", "24", "--elevation", "20", "--out", views)
        #expect(render.status == 0, "\(render.stderr)")
        return views
    }

    @Test("eval-views: a report per view with the held-out fits, deterministic for a seed; bad folders are refused with the fix")
    func evalViews() throws {
        try withScratchFolder { folder in
            let views = try Self.renderViews(folder)
            let first = folder.appendingPathComponent("first").path, second = folder.appendingPathComponent("second").path
            for out in [first, second] {
                let run = try KilnRun("eval-views", views, "--steps", "10", "--initial", "200", "--out", out)
                #expect(run.status == 0, "\(run.stderr)")
            }
            let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: first + "/report.json"))) as! [String: Any]
            let perView = report["views"] as! [[String: Any]]
            #expect(perView.count == 8 && perView[0]["name"] as? String == "view_000" && (report["pairwise"] as! [Any]).count == 8)
            #expect(FileManager.default.fileExists(atPath: first + "/report.md") && FileManager.default.fileExists(atPath: first + "/sheet.png"))
            // Where the time went: the fits' render passes and optimiser inside the evaluation.
            let profile = try GenerateCommandTests.profile(first)
            #expect(Set(profile.keys) == ["load", "evaluate"], "\(profile.keys)")
            #expect(Set(profile["evaluate"]!.parts.keys).isSuperset(of: ["render forward", "render backward", "optimiser"]), "\(profile["evaluate"]!.parts.keys)")
            func withoutTime(_ path: String) throws -> NSDictionary {
                var object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/report.json"))) as! [String: Any]
                object["seconds"] = nil
                return object as NSDictionary
            }
            #expect(try withoutTime(first) == withoutTime(second))
            // Errors: no transforms.json, too few views, a missing image.
            let bad = folder.appendingPathComponent("bad").path
            #expect(try KilnRun("eval-views", folder.path, "--out", bad).stderr.contains("transforms.json"))
            let transforms = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: views + "/transforms.json"))) as! [String: Any]
            var few = transforms
            few["frames"] = Array((transforms["frames"] as! [Any]).prefix(3))
            try JSONSerialization.data(withJSONObject: few).write(to: URL(fileURLWithPath: views + "/transforms.json"))
            let tooFew = try KilnRun("eval-views", views, "--out", bad)
            #expect(tooFew.status == 1 && tooFew.stderr.contains("at least 4 views"), "\(tooFew.stderr)")
            try FileManager.default.removeItem(atPath: views + "/view_001.png")
            #expect(try KilnRun("eval-views", views, "--out", bad).stderr.contains("view_001"))
            #expect(!FileManager.default.fileExists(atPath: bad + "/report.json"))
        }
    }

    @Test("bad input gives a message and a non-zero exit")
    func errors() throws {
        try withScratchFolder { folder throws in
            let out = folder.appendingPathComponent("e").path
            #expect(try KilnRun("eval", folder.appendingPathComponent("missing.glb").path, "--out", out).status != 0)
            #expect(try KilnRun("eval", folder.path, "--out", out).stderr.contains("neither splats.ply, field.safetensors nor asset.glb"))
            #expect(try KilnRun("eval", folder.path, "--size", "50", "--out", out).stderr.contains("--size"))
            #expect(!FileManager.default.fileExists(atPath: out + "/report.json"))
        }
    }

    @Test("eval-prior: views sampled around each prompt, judged per prompt, summarised; bad arguments are refused")
    func evalPrior() throws {
        try withScratchFolder { folder in
            let prompts = folder.appendingPathComponent("prompts.txt")
            try Data("# two\na red snowman\na yellow duck\n".utf8).write(to: prompts)
            let out = folder.appendingPathComponent("prior").path
            let run = try KilnRun("eval-prior", SampleCommandTests.tiny, "--prompts", prompts.path, "--views", "4", "--sampling-steps", "2", "--steps", "10",
                                  "--out", out)
            #expect(run.status == 0, "\(run.stderr)")
            for name in ["summary.md", "summary.json", "a-red-snowman/report.json", "a-red-snowman/sheet.png", "a-yellow-duck/views/transforms.json",
                         "a-yellow-duck/views/view_003.png"] {
                #expect(FileManager.default.fileExists(atPath: out + "/" + name), "missing \(name)")
            }
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as! [String: Any]
            #expect((summary["prompts"] as! [Any]).count == 2 && summary["meanHeldOutPSNR"] is Double)
            // The sampled views are a set eval-views reads.
            #expect(try KilnRun("eval-views", out + "/a-yellow-duck/views", "--steps", "10", "--initial", "100", "--out", folder.appendingPathComponent("again").path).status == 0)
            let few = try KilnRun("eval-prior", SampleCommandTests.tiny, "--prompts", prompts.path, "--views", "2", "--out", folder.appendingPathComponent("few").path)
            #expect(few.status != 0 && few.stderr.contains("--views"), "\(few.stderr)")
            let empty = folder.appendingPathComponent("empty.txt")
            try Data("# nothing\n".utf8).write(to: empty)
            let none = try KilnRun("eval-prior", SampleCommandTests.tiny, "--prompts", empty.path, "--out", folder.appendingPathComponent("none").path)
            #expect(none.status == 1 && none.stderr.contains("no prompts"), "\(none.stderr)")
        }
    }
}
