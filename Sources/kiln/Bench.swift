import ArgumentParser
import Foundation
import KilnAsset
import KilnCore
import KilnRun
import KilnDistill
import KilnEval
import KilnPrior
import KilnRender

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate and score every prompt of a suite: resumable, idempotent per prompt, shardable across machines.",
        discussion: """
        Jobs are the suite's prompts × --methods × --seeds, in that order. Each runs `kiln generate` \
        as a child process into DIR/runs/<prompt>-<method>-s<seed>/ (wall time and peak memory \
        measured by the kernel); its score from 16 views by the reward models (the run's score.json) \
        and those measurements go to its bench.json; `kiln eval` then judges the run into RUNDIR/eval/ \
        (also for runs benched before it, when the bench is run again); the summary adds the exported mesh's scores (score_mesh.json, before and after --refine mesh) and names each run's variant (representation, method, refinement) from its config.json. A job whose bench.json exists is skipped, so an interrupted bench resumes \
        where it stopped. --shard i/n runs the jobs whose index is i modulo n: a Slurm array \
        (--shard $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT) or a Kubernetes indexed job \
        (--shard $JOB_COMPLETION_INDEX/N) runs one shard each on a shared DIR. --merge reads every \
        bench.json and writes DIR/summary.md and DIR/summary.csv.
        """
    )

    @Argument(help: "Prompt suite: one prompt per line, # comments.", completion: .file())
    var suite: String

    @Option(help: "Bench folder (created; shared by the shards).")
    var out: String

    @Option(help: "Comma-separated methods: sds, rw-sds, reward-feedback, dpo.")
    var methods: String = "sds"

    @Option(help: "Comma-separated seeds.")
    var seeds: String = "0"

    @Option(help: "Steps per run (default: kiln generate's).")
    var steps: Int?

    @Option(help: "This machine's shard, i/n (0 ≤ i < n).")
    var shard: String = "0/1"

    @Option(help: ArgumentHelp(ShippedAssets.help(.prior)), completion: .directory)
    var prior: String?

    @Option(help: ArgumentHelp(ShippedAssets.help(.rewards)), completion: .directory)
    var rewards: String?

    @Option(help: "Extra settings for every run (a kiln generate --config file).", completion: .file())
    var config: String?

    @Flag(help: "Only merge the scores already in --out into summary.md and summary.csv.")
    var merge = false

    func parsedShard() throws -> (Int, Int) {
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] > 0, (0..<parts[1]).contains(parts[0]) else {
            throw ValidationError("--shard must be i/n with 0 ≤ i < n, got \(shard)")
        }
        return (parts[0], parts[1])
    }

    func validate() throws {
        _ = try parsedShard()
        for m in methods.split(separator: ",") where DistillationMethod(rawValue: String(m)) == nil {
            throw ValidationError("--methods: '\(m)' is not a method; use " + DistillationMethod.allCases.map(\.rawValue).joined(separator: ", "))
        }
        for s in seeds.split(separator: ",") where UInt64(s) == nil { throw ValidationError("--seeds: '\(s)' is not a seed") }
        if let steps { guard (1...1_000_000).contains(steps) else { throw ValidationError("--steps must be 1…1000000") } }
    }

    func run() throws {
        let methodList = methods.split(separator: ",").compactMap { DistillationMethod(rawValue: String($0)) }
        let seedList = seeds.split(separator: ",").compactMap { UInt64($0) }
        let shard = try parsedShard()
        var bench = BenchJob(suite: URL(fileURLWithPath: suite), folder: URL(fileURLWithPath: out), methods: methodList, seeds: seedList,
                             shard: (index: shard.0, count: shard.1), priorFolder: try ShippedAssets.resolve(prior, .prior),
                             rewardsFolder: try ShippedAssets.resolve(rewards, .rewards))
        (bench.steps, bench.config) = (steps, config)
        try merge ? bench.writeSummary() : bench.run()
    }
}
