import Foundation
import Testing

@Suite("kiln finds its shipped weights from any folder")
struct ShippedAssetsTests {
    /// Runs `kiln` in `folder`, with `KILN_ASSETS` set to `assets` (unset when nil).
    static func run(_ arguments: [String], in folder: URL, assets: String? = nil) throws -> KilnRun {
        try KilnRun(arguments, in: folder, environment: ["KILN_ASSETS": assets])
    }

    @Test("sample and score-prior work from a folder without assets/, with the card's guidance")
    func fromAnotherFolder() throws {
        try withScratchFolder { folder in
            let sample = try Self.run(["sample", "a red snowman", "--out", "grid.png", "--count", "1", "--steps", "2"], in: folder)
            #expect(sample.status == 0, "\(sample.stderr)")
            let inspect = try Self.run(["inspect", "grid.png", "--json"], in: folder)
            let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
            let settings = (json?["kiln"] as? [String: Any])?["settings"] as? [String: Any]
            #expect(settings?["guidanceScale"] as? Double == 3, "the shipped prior's card samples at guidance 3: \(String(describing: settings))")
            // The shipped prior is not score-prior's to change: its report lands in the working folder.
            let score = try Self.run(["score-prior", "--count", "2", "--steps", "2"], in: folder)
            #expect(score.status == 0, "\(score.stderr)")
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("scores.json").path))
        }
    }

    @Test("--prior takes a shipped prior by name (prior-tuned: after kiln tune-prior); a folder of that name here wins")
    func priorByName() throws {
        try withScratchFolder { folder in
            func sampledPrior() throws -> String? {
                let inspect = try Self.run(["inspect", "grid.png", "--json"], in: folder)
                let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: Any]
                return ((json?["kiln"] as? [String: Any])?["settings"] as? [String: Any])?["prior"] as? String
            }
            let named = try Self.run(["sample", "a red snowman", "--prior", "prior-tuned", "--out", "grid.png", "--count", "1", "--steps", "2", "--force"], in: folder)
            #expect(named.status == 0, "\(named.stderr)")
            #expect(try sampledPrior() == "prior-tuned")
            // A shipped prior named is still not score-prior's to change: the report lands here.
            let score = try Self.run(["score-prior", "--prior", "prior-tuned", "--count", "2", "--steps", "2"], in: folder)
            #expect(score.status == 0 && FileManager.default.fileExists(atPath: folder.appendingPathComponent("scores.json").path), "\(score.stderr)")
            // A folder called prior-tuned in the working folder is taken as the path it is.
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("prior-tuned"), withIntermediateDirectories: true)
            let local = try Self.run(["sample", "a red snowman", "--prior", "prior-tuned", "--out", "grid.png", "--count", "1", "--steps", "2", "--force"], in: folder)
            #expect(local.status != 0 && local.status < 128 && local.stderr.contains(folder.lastPathComponent + "/prior-tuned/"), "\(local.stderr)")
        }
    }

    @Test("KILN_ASSETS names the only place looked at; a wrong one is an error that says so")
    func environmentVariable() throws {
        try withScratchFolder { folder in
            let empty = folder.appendingPathComponent("empty")
            try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
            let wrong = try Self.run(["sample", "a red snowman", "--out", "grid.png", "--count", "1", "--steps", "2"], in: folder, assets: empty.path)
            #expect(wrong.status != 0 && wrong.status < 128)
            #expect(wrong.stderr.contains("KILN_ASSETS") && wrong.stderr.contains(empty.path) && wrong.stderr.contains("--prior"), "\(wrong.stderr)")
            #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("grid.png").path))

            // A folder laid out as the installer lays it out works.
            let installed = folder.appendingPathComponent("share/kiln/assets")
            try FileManager.default.createDirectory(at: installed, withIntermediateDirectories: true)
            let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            for part in ["prior", "rewards"] {
                try FileManager.default.createSymbolicLink(at: installed.appendingPathComponent(part), withDestinationURL: checkout.appendingPathComponent("assets/\(part)"))
            }
            let right = try Self.run(["sample", "a red snowman", "--out", "grid.png", "--count", "1", "--steps", "2"], in: folder, assets: installed.path)
            #expect(right.status == 0, "\(right.stderr)")
        }
    }
}

@Suite("Shipped prompt lists")
struct PromptListTests {
    static let prompts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../assets/prompts").standardizedFileURL

    static func lines(_ name: String) throws -> [String] {
        try String(contentsOf: prompts.appendingPathComponent(name), encoding: .utf8).split(separator: "\n")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    @Test("the held-out prompts share none with the suite, and every word of both is in the built-in prior's vocabulary")
    func heldOutIsHeldOut() throws {
        let suite = try Self.lines("suite.txt"), heldOut = try Self.lines("heldout.txt")
        #expect(suite.count == 22 && heldOut.count >= 10)
        #expect(Set(suite).isDisjoint(with: heldOut), "\(Set(suite).intersection(heldOut))")
        let settings = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.prompts.appendingPathComponent("../prior/kiln_prior.json"))) as! [String: Any]
        let vocabulary = Set(settings["vocabulary"] as! [String])
        for prompt in suite + heldOut {
            for word in prompt.split(separator: " ") { #expect(vocabulary.contains(String(word)), "\(prompt): \(word)") }
        }
    }
}
