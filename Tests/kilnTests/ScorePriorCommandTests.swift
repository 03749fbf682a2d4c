import Foundation
import Testing

@Suite("kiln score-prior", .serialized)
struct ScorePriorCommandTests {
    @Test("writes scores.json and puts the numbers in the prior's model card, replacing them on a second run")
    func scoresAndCard() throws {
        try withScratchFolder { folder in
            let data = folder.appendingPathComponent("data").path, rewards = folder.appendingPathComponent("rewards").path
            #expect(try KilnRun("dataset", "--count", "30", "--size", "16", "--out", data).status == 0)
            #expect(try KilnRun("train-rewards", "--data", data, "--out", rewards, "--steps", "2", "--batch-size", "4", "--holdout", "10").status == 0)
            let prior = folder.appendingPathComponent("prior")
            try FileManager.default.copyItem(atPath: SampleCommandTests.tiny, toPath: prior.path)
            try Data("# Kiln prior\n\nSome text.\n\n## Loss and samples\nA plot.\n".utf8).write(to: prior.appendingPathComponent("README.md"))
            for _ in 0..<2 {
                let run = try KilnRun("score-prior", "--prior", prior.path, "--rewards", rewards, "--count", "3", "--steps", "2")
                #expect(run.status == 0, "\(run.stderr)")
            }
            let scores = try String(contentsOf: prior.appendingPathComponent("scores.json"), encoding: .utf8)
            #expect(scores.contains("\"samples\" : 3"))
            let card = try String(contentsOf: prior.appendingPathComponent("README.md"), encoding: .utf8)
            #expect(card.components(separatedBy: "## Measured with the reward models").count == 2, "\(card)")
            #expect(!card.contains("\n\n\n"), "rewriting the section leaves one blank line before it: \(card)")
            #expect(card.contains("## Loss and samples") && card.contains("| kind |") && card.contains("--count 3"))
            // A report written elsewhere leaves the card as it is.
            #expect(try KilnRun("score-prior", "--prior", prior.path, "--rewards", rewards, "--count", "2", "--steps", "2",
                                "--out", folder.appendingPathComponent("other.json").path).status == 0)
            #expect(try String(contentsOf: prior.appendingPathComponent("README.md"), encoding: .utf8) == card)
        }
    }

    @Test("--ground-truth scores the toy world's own renders with the shipped reward models: the ceiling, near their held-out accuracy, with the azimuth per kind")
    func groundTruth() throws {
        try withScratchFolder { folder in
            let out = folder.appendingPathComponent("truth.json")
            let run = try KilnRun("score-prior", "--ground-truth", "--count", "60", "--out", out.path)
            #expect(run.status == 0 && run.stdout.contains("azimuth by kind:"), "\(run.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out)) as! [String: Any]
            #expect(json["groundTruth"] as? Bool == true)
            // The shipped models' held-out accuracies are kind 0.98 and main colour 0.95.
            #expect((json["kind"] as! Double) >= 0.85 && (json["mainColor"] as! Double) >= 0.8, "\(json)")
            let byKind = json["azimuthByKind"] as! [String: Double]
            #expect(!byKind.isEmpty && byKind.values.allSatisfy { (0...1).contains($0) } && byKind.keys.contains("duck"), "\(byKind)")
            let refused = try KilnRun("score-prior", "--ground-truth", "--prior", folder.path)
            #expect(refused.status != 0 && refused.status < 128 && refused.stderr.contains("--ground-truth"), "\(refused.stderr)")
        }
    }
}
