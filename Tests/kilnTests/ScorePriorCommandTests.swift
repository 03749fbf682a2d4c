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
}
