import ArgumentParser
import Foundation
import KilnRun
import KilnAsset
import KilnCore
import KilnNN
import KilnPrior
import KilnToyWorld

struct ScorePrior: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "score-prior",
        abstract: "Judge a prior with the reward models: does it draw the kind, colours and view it is asked for?",
        discussion: """
        Draws one sample for each of --count toy-world captions and cameras (seed --seed, the \
        data set's grammar) and reports the share whose kind, main colour, named second colour, \
        azimuth bin (45°) and elevation bin the reward models recognise, and the mean log p(real) \
        of the quality model. For captions with a motion it also draws the motion's two most \
        different times from the same noise and compares the change with the ground truth's: \
        response (size of the change, 0 = τ ignored, 1 = as much as the world) and agreement \
        (cosine, 1 = the world's motion). Writes the report as JSON (default PRIOR/scores.json; then, when \
        PRIOR has a model card (README.md), the numbers also go in its "Measured" section).
        """
    )

    @Option(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: ArgumentHelp(ShippedAssets.help(.rewards) + " kiln train-rewards makes one."), completion: .directory)
    var rewards: String?

    @Option(help: "Number of samples (at least 200 for a model card).")
    var count: Int = 200

    @Option(help: "Seed of the captions, cameras and noise.")
    var seed: UInt64 = 7

    @Option(help: "DDIM steps per sample.")
    var steps: Int = 30

    @Option(help: "Classifier-free guidance scale (default: the prior's own, guidance_scale in its kiln_prior.json, else 7.5).")
    var guidanceScale: Double?

    @Option(help: "Report file (JSON; default PRIOR/scores.json, which also updates PRIOR's model card; with a shipped prior, the default or one named as --prior prior-tuned, scores.json here).")
    var out: String?

    @Flag(help: "Score the toy world's own renders of the same captions and cameras instead of a prior's samples: the most a prior can score with these reward models (default --out: ground-truth-scores.json).")
    var groundTruth = false

    func validate() throws {
        if groundTruth && prior != nil { throw ValidationError("--ground-truth scores the toy world's renders, not a prior; drop --prior or --ground-truth") }
        guard (1...100_000).contains(count) else { throw ValidationError("--count must be 1…100000, got \(count)") }
        guard (1...1000).contains(steps) else { throw ValidationError("--steps must be 1…1000, got \(steps)") }
        if let guidanceScale { guard guidanceScale.isFinite && guidanceScale >= 0 else { throw ValidationError("--guidance-scale must be a number ≥ 0") } }
    }

    func run() throws {
        _ = Memory.retainFreedMemory()
        let rewards = try ShippedAssets.resolve(self.rewards, .rewards).path
        var nets: [RewardTerm: RewardNet] = [:]
        for kind in RewardTerm.allCases {
            let (loaded, net) = try RewardNet.load(URL(fileURLWithPath: rewards).appendingPathComponent("\(kind.rawValue).safetensors"))
            guard loaded == kind else { throw CLIError("\(rewards)/\(kind.rawValue).safetensors holds the \(loaded) model; retrain with kiln train-rewards") }
            nets[kind] = net
        }
        if groundTruth {
            let score = try PriorScore.measureGroundTruth(rewards: nets, count: count, seed: seed) { done, total in
                if done % 50 == 0 || done == total { say("  \(done)/\(total)") }
            }
            let outURL = URL(fileURLWithPath: out ?? "ground-truth-scores.json")
            try writeJSON(score, to: outURL)
            report(score)
            say("wrote \(outURL.path) (the toy world's own renders: the ceiling of each share with these reward models)")
            return
        }
        let priorURL = try ShippedAssets.resolve(self.prior, .prior), prior = priorURL.path
        let pipeline = try PriorPipeline(folder: priorURL)
        let guidanceScale = self.guidanceScale ?? pipeline.settings.samplingGuidanceScale
        // The shipped prior is not this command's to change: its report goes to the working folder.
        let out = self.out ?? (ShippedAssets.isShippedPrior(self.prior) ? "scores.json" : nil)
        let score = try PriorScore.measure(prior: pipeline, rewards: nets, count: count, seed: seed, steps: steps, guidanceScale: guidanceScale) { done, total in
            if done % 20 == 0 || done == total { say("  \(done)/\(total)") }
        }
        let outURL = URL(fileURLWithPath: out ?? (prior + "/scores.json"))
        try writeJSON(score, to: outURL)
        report(score)
        say("wrote \(outURL.path)")
        // The card reports PRIOR/scores.json: a report written elsewhere (--out) leaves it alone.
        let card = URL(fileURLWithPath: prior).appendingPathComponent("README.md")
        if out == nil, let text = try? String(contentsOf: card, encoding: .utf8) {
            try FileIO.writeAtomically(Data(Self.cardWithScores(text, score: score, rewards: self.rewards).utf8), to: card)
            say("updated \(card.path)")
        }
    }

    /// The shares on the terminal, the azimuth per kind among them.
    func report(_ score: PriorScore) {
        say(String(format: "kind %.3f  main colour %.3f  second colour %@  azimuth %.3f  elevation %.3f  mean log p(real) %.3f  (%d samples)",
                   score.kind, score.mainColor, score.secondColor.map { String(format: "%.3f", $0) } ?? "–", score.azimuth, score.elevation,
                   score.meanQualityLogLikelihood, score.samples))
        if let byKind = score.azimuthByKind {
            say("azimuth by kind: " + byKind.sorted { $0.key < $1.key }.map { String(format: "%@ %.2f", $0.key, $0.value) }.joined(separator: "  "))
        }
        if let m = score.motion {
            say(String(format: "motion (%d moving captions): recognised %.3f  response %.3f  agreement %.3f", m.samples, m.recognised, m.response, m.agreement))
        }
    }

    static let sectionTitle = "## Measured with the reward models"

    /// The card with its measured section replaced (or appended): what a prior draws, judged by the
    /// reward models, with the command that measured it.
    /// `rewards` is the folder as the command was given it (nil: the shipped reward models), so the
    /// card's command reads the same on every machine.
    static func cardWithScores(_ card: String, score: PriorScore, rewards: String?) -> String {
        var head = card
        if let range = card.range(of: sectionTitle) {
            head = String(card[..<range.lowerBound])
            // Keep whatever follows the section (a later section starts with "## ").
            let rest = card[range.upperBound...]
            if let next = rest.range(of: "\n## ") { head += String(rest[next.lowerBound...]).dropFirst() + "\n" }
        }
        while head.hasSuffix("\n") { head.removeLast() }  // one blank line before the section, however often it is rewritten
        head += "\n"
        func percent(_ v: Double) -> String { String(format: "%.1f%%", 100 * v) }
        return head + """

        \(sectionTitle)
        `kiln score-prior --prior THIS_FOLDER\(rewards.map { " --rewards \($0)" } ?? "") --count \(score.samples) --seed \(score.seed) --steps \(score.steps) --guidance-scale \(score.guidanceScale)`: one sample for each of \(score.samples) held-in captions and cameras drawn by the data set's grammar (DDIM, \(score.steps) steps, guidance \(score.guidanceScale)); the share the reward models recognise.

        | attribute | recognised | chance |
        | --- | ---: | ---: |
        | kind | \(percent(score.kind)) | 8.3% |
        | main colour | \(percent(score.mainColor)) | 9.1% |
        | second colour (when named) | \(score.secondColor.map(percent) ?? "–") | 10% |
        | azimuth bin (45°) | \(percent(score.azimuth)) | 12.5% |
        | elevation bin | \(percent(score.elevation)) | 25% |

        Mean log p(real) of the quality model: \(String(format: "%.2f", score.meanQualityLogLikelihood)) (0 is certain).
        \(score.motion.map { m in String(format: """

        Time conditioning, on the %d captions that name a motion: the alignment model recognises the motion in %.1f%% of them (chance 16.7%%). \
        Drawn from the same noise at the motion's two most different times, the samples change by %.2f times as much as the ground truth does \
        (response; 0 means τ is ignored), in a direction whose cosine with the ground truth's change is %.2f (agreement; 1 is the world's motion).

        """, m.samples, 100 * m.recognised, m.response, m.agreement) } ?? "")
        """
    }
}
