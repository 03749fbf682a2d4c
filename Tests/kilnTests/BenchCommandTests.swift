import Foundation
import Testing

@Suite("kiln bench", .serialized)
struct BenchCommandTests {
    @Test("runs every job of a suite once, shards by index, resumes, and merges a summary")
    func bench() throws {
        try withScratchFolder { folder in
            // Reward models at the tiny prior's 16², trained for a few steps on a tiny data set.
            let data = folder.appendingPathComponent("data").path, rewards = folder.appendingPathComponent("rewards").path
            #expect(try KilnRun("dataset", "--count", "40", "--size", "16", "--out", data).status == 0)
            let trained = try KilnRun("train-rewards", "--data", data, "--out", rewards, "--steps", "2", "--batch-size", "4", "--holdout", "10")
            #expect(trained.status == 0, "\(trained.stderr)")
            let suite = folder.appendingPathComponent("suite.txt")
            try Data("# two prompts, one of them 4D\na red snowman\n\na yellow duck bouncing\n".utf8).write(to: suite)
            let config = folder.appendingPathComponent("small.json")
            try Data(#"{"views": {"views_per_step": 1, "render_size": 32}, "gaussians": {"initial_gaussians": 200}, "motion": {"frames": 2}}"#.utf8).write(to: config)
            let out = folder.appendingPathComponent("bench").path
            func bench(_ extra: [String]) throws -> KilnRun {
                try KilnRun(["bench", suite.path, "--out", out, "--methods", "sds,dpo", "--steps", "2", "--prior", SampleCommandTests.tiny,
                             "--rewards", rewards, "--config", config.path] + extra)
            }
            // Shard 1/2 runs jobs 1 and 3 (the suite's sds and dpo jobs alternate).
            let second = try bench(["--shard", "1/2"])
            #expect(second.status == 0, "\(second.stderr)")
            var runs = try FileManager.default.contentsOfDirectory(atPath: out + "/runs").filter { !$0.hasSuffix(".log") }.sorted()
            #expect(runs == ["a-red-snowman-dpo-s0", "a-yellow-duck-bouncing-dpo-s0"])
            let first = try bench(["--shard", "0/2"])
            #expect(first.status == 0, "\(first.stderr)")
            runs = try FileManager.default.contentsOfDirectory(atPath: out + "/runs").filter { !$0.hasSuffix(".log") }
            #expect(runs.count == 4)
            // Everything is done: a second pass only skips.
            let again = try bench([])
            #expect(again.status == 0 && again.stdout.components(separatedBy: "done before").count == 5, "\(again.stdout)")
            let merged = try KilnRun("bench", suite.path, "--out", out, "--merge")
            #expect(merged.status == 0)
            let summary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
            #expect(summary.contains("| gaussians sds | 2 |") && summary.contains("| gaussians dpo | 2 |"), "\(summary)")
            let csv = try String(contentsOfFile: out + "/summary.csv", encoding: .utf8).split(separator: "\n")
            #expect(csv.count == 5 && csv[0].hasPrefix("prompt,variant,method,seed,mean_alignment"))
            // Each run's exported mesh was scored too (score_mesh.json), and the summary carries it.
            let header = csv[0].split(separator: ","), column = header.firstIndex(of: "mesh_mean_alignment")!
            #expect(csv.dropFirst().allSatisfy { Double($0.split(separator: ",", omittingEmptySubsequences: false)[column]) != nil }, "\(csv)")
            // Every run was judged by kiln eval too, and its geometric consistency is in the summary.
            #expect(FileManager.default.fileExists(atPath: out + "/runs/a-yellow-duck-bouncing-dpo-s0/eval/report.json"))
            let coverage = header.firstIndex(of: "min_silhouette_coverage")!
            #expect(csv.dropFirst().allSatisfy { (Double($0.split(separator: ",", omittingEmptySubsequences: false)[coverage]) ?? 0) > 0.5 }, "\(csv)")
            // The 4D prompt's runs are judged over time too.
            #expect(summary.contains("## 4D runs") && summary.contains("| a yellow duck bouncing | gaussians sds |") && summary.contains("motion seen (p)"), "\(summary)")
            #expect(header.contains("motion_judged") && header.contains("motion_judged_matches"))
            #expect(!summary.contains("(resumed)"))
            // Where the time went: the runs' profiles summed per variant, and over the suite in profile.json.
            #expect(summary.contains("## Where the time went") && summary.contains("### gaussians dpo (2 runs)") && summary.contains("prior forward"), "\(summary)")
            let suiteProfile = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/profile.json"))) as? [String: Any]
            let stageNames = (suiteProfile?["stages"] as? [[String: Any]])?.compactMap { $0["stage"] as? String } ?? []
            #expect(Set(stageNames).isSuperset(of: ["setup", "distil", "export", "report"]), "\(stageNames)")
            let distilSeconds = (suiteProfile?["stages"] as? [[String: Any]])?.first { $0["stage"] as? String == "distil" }?["seconds"] as? Double ?? 0
            let perRun = try runs.map { try GenerateCommandTests.profile(out + "/runs/" + $0)["distil"]!.seconds }.reduce(0, +)
            #expect(abs(distilSeconds - perRun) < 1e-9 * max(1, perRun), "\(distilSeconds) vs \(perRun)")
            // A resumed run's time is only its last part's: marked, and left out of the mean time.
            let recordURL = URL(fileURLWithPath: out + "/runs/a-red-snowman-dpo-s0/bench.json")
            let record = try String(contentsOf: recordURL, encoding: .utf8)
            #expect(record.contains("\"resumed\" : false"), "\(record)")
            try Data(record.replacingOccurrences(of: "\"resumed\" : false", with: "\"resumed\" : true").utf8).write(to: recordURL)
            #expect(try KilnRun("bench", suite.path, "--out", out, "--merge").status == 0)
            let resumedSummary = try String(contentsOfFile: out + "/summary.md", encoding: .utf8)
            #expect(resumedSummary.contains("(resumed)") && resumedSummary.contains("leave resumed runs out"), "\(resumedSummary)")
            // A run benched before the evaluation existed gets it when the bench runs again.
            try FileManager.default.removeItem(atPath: out + "/runs/a-red-snowman-sds-s0/eval")
            #expect(try bench([]).status == 0)
            #expect(FileManager.default.fileExists(atPath: out + "/runs/a-red-snowman-sds-s0/eval/report.json"))
            #expect(try KilnRun("bench", suite.path, "--out", out, "--shard", "2/2").stderr.contains("--shard"))
            // A run that fails does not stop the bench: the others still run, the summary lists it,
            // the exit status says so, and the next bench retries it.
            let failing = folder.appendingPathComponent("failing").path
            try FileManager.default.createDirectory(atPath: failing + "/runs", withIntermediateDirectories: true)
            try Data("not a folder".utf8).write(to: URL(fileURLWithPath: failing + "/runs/a-red-snowman-sds-s0"))  // generate cannot write there
            let partial = try KilnRun(["bench", suite.path, "--out", failing, "--methods", "sds", "--steps", "1", "--prior", SampleCommandTests.tiny,
                                       "--rewards", rewards, "--config", config.path])
            #expect(partial.status != 0 && partial.stderr.contains("1 of 2 runs failed (a-red-snowman-sds-s0)"), "\(partial.stderr)")
            #expect(FileManager.default.fileExists(atPath: failing + "/runs/a-yellow-duck-bouncing-sds-s0/bench.json"))
            let listed = try String(contentsOfFile: failing + "/summary.md", encoding: .utf8)
            #expect(listed.contains("## Failed runs") && listed.contains("`a-red-snowman-sds-s0`: kiln generate exited"), "\(listed)")
            try FileManager.default.removeItem(atPath: failing + "/runs/a-red-snowman-sds-s0")
            let retried = try KilnRun(["bench", suite.path, "--out", failing, "--methods", "sds", "--steps", "1", "--prior", SampleCommandTests.tiny,
                                       "--rewards", rewards, "--config", config.path])
            #expect(retried.status == 0, "\(retried.stderr)")
            #expect(!(try String(contentsOfFile: failing + "/summary.md", encoding: .utf8)).contains("Failed runs"))
        }
    }
}
