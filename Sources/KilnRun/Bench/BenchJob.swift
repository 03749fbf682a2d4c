import Foundation
import KilnAsset
import KilnCore
import KilnDistill
import KilnEval

/// `kiln bench`: every prompt of a suite × methods × seeds generated (each a `kiln generate` child
/// process into DIR/runs/<prompt>-<method>-s<seed>/, its time and peak memory measured), scored,
/// evaluated (`kiln eval` into RUNDIR/eval/) and summarised (DIR/summary.md, DIR/summary.csv).
/// A job whose bench.json exists is skipped; a shard i/n runs the jobs whose index is i modulo n.
public struct BenchJob {
    public var suite: URL
    public var folder: URL
    public var methods: [DistillationMethod]
    public var seeds: [UInt64]
    public var shard: (index: Int, count: Int)
    public var priorFolder: URL
    public var rewardsFolder: URL
    /// Steps per run (nil: kiln generate's default).
    public var steps: Int? = nil
    /// Extra settings for every run (a kiln generate --config file).
    public var config: String? = nil

    public init(suite: URL, folder: URL, methods: [DistillationMethod], seeds: [UInt64], shard: (index: Int, count: Int),
                priorFolder: URL, rewardsFolder: URL) {
        (self.suite, self.folder, self.methods, self.seeds, self.shard) = (suite, folder, methods, seeds, shard)
        (self.priorFolder, self.rewardsFolder) = (priorFolder, rewardsFolder)
    }

    struct Job {
        var prompt: String, method: DistillationMethod, seed: UInt64
        var name: String {
            "\(promptSlug(prompt))-\(method.rawValue)-s\(seed)"
        }
    }

    /// Runs this shard's jobs not yet benched; a single shard then writes the summary.
    public func run() throws {
        let runs = folder.appendingPathComponent("runs")
        try FileManager.default.createDirectory(at: runs, withIntermediateDirectories: true)
        let prompts = try Prompt.lines(of: suite, name: suite.path, kind: "a prompt suite file")
        let jobs = prompts.flatMap { p in methods.flatMap { m in seeds.map { Job(prompt: p, method: m, seed: $0) } } }
        let (index, count) = shard
        let mine = jobs.enumerated().filter { $0.offset % count == index }.map(\.element)
        say("bench: \(jobs.count) jobs, \(mine.count) in shard \(index)/\(count)")
        var failed: [String] = []
        for (n, job) in mine.enumerated() {
            let runFolder = runs.appendingPathComponent(job.name)
            let scoreURL = RunFolder(runFolder).bench
            if FileManager.default.fileExists(atPath: scoreURL.path) {
                // A run benched before `kiln eval` joined the bench gets its evaluation now.
                try evaluate(runFolder, name: job.name, log: folder)
                say("  [\(n + 1)/\(mine.count)] \(job.name): done before")
                continue
            }
            var arguments = ["generate", job.prompt, "--out", runFolder.path, "--prior", priorFolder.path,
                             "--rewards", rewardsFolder.path, "--preview-every", "0"]
            if let steps { arguments += ["--steps", "\(steps)"] }
            // A run interrupted earlier resumes from its checkpoint (with its own config.json); a
            // fresh one replaces a partial folder.
            let resumable = FileManager.default.fileExists(atPath: RunFolder(runFolder).checkpointState(.distil).path)
            if resumable {
                arguments += ["--resume"]
            } else {
                arguments += ["--method", job.method.rawValue, "--seed", "\(job.seed)", "--force"]
                if let config { arguments += ["--config", config] }
            }
            let child = try ChildProcess.run(executable: ChildProcess.selfPath, arguments: arguments,
                                             log: folder.appendingPathComponent("runs/\(job.name).log"))
            // A failed run is recorded (runs/<job>.failed, read by the summary) and the bench goes on;
            // the next bench retries it.
            let marker = runs.appendingPathComponent(job.name + ".failed")
            guard child.status == 0 else {
                let reason = "kiln generate exited \(child.status); see \(folder.path)/runs/\(job.name).log"
                try FileIO.writeAtomically(Data(reason.utf8), to: marker)
                say("  [\(n + 1)/\(mine.count)] \(job.name): FAILED, \(reason)")
                failed.append(job.name)
                continue
            }
            try? FileManager.default.removeItem(at: marker)
            guard let scoreData = FileManager.default.contents(atPath: RunFolder(runFolder).score.path),
                  let score = try? JSONDecoder().decode(AssetScore.self, from: scoreData) else {
                throw RunError("\(job.name): the run wrote no score.json; are the reward models in \(rewardsFolder.path)?")
            }
            let record = BenchRecord(prompt: job.prompt, method: job.method.rawValue, seed: job.seed, score: score,
                                     seconds: child.seconds, peakMemoryMiB: child.peakMemoryMiB, resumed: resumable)
            try evaluate(runFolder, name: job.name, log: folder)
            try writeJSON(record, to: scoreURL)
            say(String(format: "  [%d/%d] %@: alignment %.2f (min %.2f), kind %.2f, Janus %@, %.0f s, %.0f MiB", n + 1, mine.count, job.name,
                       score.meanAlignment, score.minAlignment, score.kindAccuracy ?? .nan, score.janus ? "yes" : "no", child.seconds, child.peakMemoryMiB))
        }
        if count == 1 { try writeSummary() }
        if !failed.isEmpty {
            throw RunError("\(failed.count) of \(mine.count) runs failed (\(failed.joined(separator: ", "))): their logs are in \(runs.path); run the bench again to retry them")
        }
    }

    /// `kiln eval RUNDIR --out RUNDIR/eval` (reward models and geometric consistency from 16
    /// views), unless the run has its report already.
    func evaluate(_ runFolder: URL, name: String, log folder: URL) throws {
        let report = RunFolder(runFolder).evaluationReport
        guard !FileManager.default.fileExists(atPath: report.path) else { return }
        let child = try ChildProcess.run(executable: ChildProcess.selfPath,
                                         arguments: ["eval", runFolder.path, "--rewards", rewardsFolder.path, "--out", RunFolder(runFolder).evaluation.path, "--force"],
                                         log: folder.appendingPathComponent("runs/\(name)-eval.log"))
        guard child.status == 0 else { throw RunError("\(name): kiln eval exited \(child.status); see \(folder.path)/runs/\(name)-eval.log") }
    }

    /// One run in the summary: its bench.json, with what its folder adds (the representation and
    /// refinement from config.json, the mesh scores from score_mesh.json).
    struct SummaryRow {
        var record: BenchRecord
        var variant: String
        var mesh: MeshScores?
        var geometry: GeometricConsistency?
        var temporal: TemporalReport?
        var speckle: SpeckleMeasure?
        /// The run's profile.json (nil from a build that wrote none).
        var profile: RunProfile?
    }

    /// summary.md and summary.csv from every bench.json under DIR/runs.
    public func writeSummary() throws {
        let runs = folder.appendingPathComponent("runs")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: runs.path)) ?? []
        let rows = names.sorted().compactMap { name -> SummaryRow? in
            let run = runs.appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: RunFolder(run).bench.path),
                  let record = try? JSONDecoder().decode(BenchRecord.self, from: data) else { return nil }
            var variant = record.method
            if let settings = try? GenerateSettings.load(run: RunFolder(run)) {
                variant = "\(settings.representation.rawValue) \(record.method)" + (settings.refine.stage == .mesh ? " + refine" : "")
            }
            let mesh = FileManager.default.contents(atPath: RunFolder(run).meshScore.path)
                .flatMap { try? JSONDecoder().decode(MeshScores.self, from: $0) }
            let evaluation = FileManager.default.contents(atPath: RunFolder(run).evaluationReport.path)
                .flatMap { try? JSONDecoder().decode(EvalReport.self, from: $0) }
            return SummaryRow(record: record, variant: variant, mesh: mesh, geometry: evaluation?.geometry, temporal: evaluation?.temporal,
                              speckle: evaluation?.speckle, profile: try? RunProfile.read(RunFolder(run).profile))
        }
        let failures = names.sorted().filter { $0.hasSuffix(".failed") }.compactMap { name -> (job: String, reason: String)? in
            let job = String(name.dropLast(".failed".count))
            guard !FileManager.default.fileExists(atPath: runs.appendingPathComponent(job + "/bench.json").path),
                  let reason = try? String(contentsOf: runs.appendingPathComponent(name), encoding: .utf8) else { return nil }
            return (job, reason)
        }
        guard !rows.isEmpty || !failures.isEmpty else { throw RunError("\(runs.path) holds no bench.json yet: run the bench first") }
        func number(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
        var csv = "prompt,variant,method,seed,mean_alignment,min_alignment,kind_accuracy,main_color_accuracy,azimuth_accuracy,back_seen_as_front,janus,"
            + "mesh_mean_alignment,mesh_kind_accuracy,refined_mesh_mean_alignment,refined_mesh_kind_accuracy,min_silhouette_coverage,depth_agreement,"
            + "reprojection_color_error,speckle,frame_alignment,flicker,motion_shown,motion_matches,motion_judged,motion_judged_matches,seconds,peak_memory_mib\n"
        for row in rows {
            let r = row.record, s = r.score
            csv += "\"\(r.prompt)\",\(row.variant),\(r.method),\(r.seed),\(s.meanAlignment),\(s.minAlignment),\(number(s.kindAccuracy)),"
                + "\(number(s.mainColorAccuracy)),\(s.azimuthAccuracy),\(s.backSeenAsFront),\(s.janus ? 1 : 0),"
                + "\(number(row.mesh?.coarse?.meanAlignment)),\(number(row.mesh?.coarse?.kindAccuracy ?? nil)),"
                + "\(number(row.mesh?.refined?.meanAlignment)),\(number(row.mesh?.refined?.kindAccuracy ?? nil)),\(number(row.geometry?.minSilhouetteCoverage)),"
                + "\(number(row.geometry?.meanDepthAgreement)),\(number(row.geometry?.meanReprojectionColorError)),\(number(row.speckle?.mean)),"
                + "\(number(row.temporal?.meanAlignment)),\(number(row.temporal?.stability.flicker)),\(row.temporal?.motion.dominant ?? ""),"
                + "\(row.temporal.map { $0.motionMatches ? "1" : "0" } ?? ""),\(row.temporal?.judged?.dominant ?? ""),"
                + "\(row.temporal?.judgedMatches.map { $0 ? "1" : "0" } ?? ""),\(r.seconds),\(r.peakMemoryMiB)\n"
        }
        var md = "# Bench summary\n\n\(rows.count) runs. Scores from 16 views at elevation 15° (AssetScore) of the representation and of the "
            + "exported mesh (before and after refinement, when the run refined it); time and peak memory of each `kiln generate`.\n\n"
        md += "| variant | runs | mean alignment | min alignment | kind | main colour | azimuth | Janus rate | mesh alignment | mesh kind | "
            + "refined mesh alignment | refined mesh kind | hull coverage (worst view) | depth agreement | reprojection colour error | speckle | "
            + "mean time (s) | max time (s) | peak memory (MiB) |\n"
        md += "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        var variants: [String] = []
        for row in rows where !variants.contains(row.variant) { variants.append(row.variant) }
        let methodOrder = DistillationMethod.allCases.map(\.rawValue)
        variants.sort { a, b in
            let ra = rows.first { $0.variant == a }!, rb = rows.first { $0.variant == b }!
            let ma = methodOrder.firstIndex(of: ra.record.method) ?? 99, mb = methodOrder.firstIndex(of: rb.record.method) ?? 99
            return ma != mb ? ma < mb : a < b
        }
        for v in variants {
            let rs = rows.filter { $0.variant == v }
            func mean(_ f: (SummaryRow) -> Double?) -> String {
                let values = rs.compactMap(f)
                return values.isEmpty ? "–" : String(format: "%.3f", values.reduce(0, +) / Double(values.count))
            }
            md += "| \(v) | \(rs.count) | \(mean { $0.record.score.meanAlignment }) | \(mean { $0.record.score.minAlignment }) | "
                + "\(mean { $0.record.score.kindAccuracy }) | \(mean { $0.record.score.mainColorAccuracy }) | \(mean { $0.record.score.azimuthAccuracy }) | "
                + "\(mean { $0.record.score.janus ? 1 : 0 }) | \(mean { $0.mesh?.coarse?.meanAlignment }) | \(mean { $0.mesh?.coarse?.kindAccuracy ?? nil }) | "
                + "\(mean { $0.mesh?.refined?.meanAlignment }) | \(mean { $0.mesh?.refined?.kindAccuracy ?? nil }) | "
                + "\(mean { $0.geometry?.minSilhouetteCoverage }) | \(mean { $0.geometry?.meanDepthAgreement }) | \(mean { $0.geometry?.meanReprojectionColorError }) | \(mean { $0.speckle?.mean }) | "
                + "\(mean { $0.record.resumed ? nil : $0.record.seconds }) | "
                + "\(rs.filter { !$0.record.resumed }.map(\.record.seconds).max().map { String(format: "%.1f", $0) } ?? "–") | "
                + "\(String(format: "%.0f", rs.map(\.record.peakMemoryMiB).max() ?? 0)) |\n"
        }
        let moving = rows.filter { $0.temporal != nil }
        if !moving.isEmpty {
            md += "\n## 4D runs\n\nMotion shown: from the Gaussians' positions (the asked motion's share of the toy world's amplitude); "
                + "the asked motion's share: how much of the toy world's amplitude of the caption's motion the Gaussians reach; motion seen: the motion-pair model's verdict on the renders at 4 fixed views (its mean probability), which names the kind "
                + "of change, not its size.\n\n"
                + "| prompt | variant | frame alignment (mean) | worst frame | frame change | flicker | asked | motion shown | asked motion's share | matches | "
                + "motion seen (p) | matches |\n| --- | --- | ---: | ---: | ---: | ---: | --- | --- | ---: | --- | --- | --- |\n"
            for row in moving {
                let t = row.temporal!
                let share = t.captionMotion.flatMap { t.motion.fractions[$0] }.map { String(format: "%.2f", $0) } ?? "–"
                let seen = t.judged.map { String(format: "%@ (%.2f)", $0.dominant, $0.probabilities[$0.dominant] ?? 0) } ?? "–"
                md += String(format: "| %@ | %@ | %.3f | %.3f | %.4f | %.4f | %@ | %@ | %@ | %@ | %@ | %@ |\n", row.record.prompt, row.variant, t.meanAlignment,
                             t.minFrameAlignment, t.stability.frameChange, t.stability.flicker, t.captionMotion ?? "none", t.motion.dominant, share,
                             t.motionMatches ? "yes" : "no", seen, t.judgedMatches.map { $0 ? "yes" : "no" } ?? "–")
            }
            md += String(format: "\nMotion matches the caption in %d of %d 4D runs from the Gaussians, in %d by the motion-pair model.\n",
                         moving.filter { $0.temporal!.motionMatches }.count, moving.count, moving.filter { $0.temporal!.judgedMatches == true }.count)
        }
        // Where the time went: every run's profile.json summed, per variant and over the suite.
        let profiled = rows.filter { $0.profile != nil }
        if !profiled.isEmpty {
            md += "\n## Where the time went\n\nEach variant's runs' `profile.json` summed (\(profiled.count) of \(rows.count) runs have one): "
                + "seconds per stage with its share of the runs, and inside each stage the kinds of work with their share of the stage.\n"
            for v in variants {
                let profiles = profiled.filter { $0.variant == v }.compactMap(\.profile)
                guard !profiles.isEmpty else { continue }
                md += "\n### \(v) (\(profiles.count) runs)\n\n```\n\(RunProfile.sum(profiles).table)\n```\n"
            }
            try writeJSON(RunProfile.sum(profiled.compactMap(\.profile)), to: folder.appendingPathComponent("profile.json"))
        }
        if !failures.isEmpty {
            md += "\n## Failed runs\n\n\(failures.count) run(s) failed and are not in the tables above:\n\n"
                + failures.map { "- `\($0.job)`: \($0.reason)\n" }.joined()
        }
        md += "\n## Runs\n\n| prompt | variant | seed | mean alignment | kind | Janus | mesh alignment | time (s) | memory (MiB) |\n"
            + "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |\n"
        for row in rows {
            let r = row.record
            let meshAlignment = (row.mesh?.refined ?? row.mesh?.coarse).map { String(format: "%.3f", $0.meanAlignment) } ?? "–"
            md += "| \(r.prompt) | \(row.variant) | \(r.seed) | \(String(format: "%.3f", r.score.meanAlignment)) | "
                + "\(r.score.kindAccuracy.map { String(format: "%.2f", $0) } ?? "–") | \(r.score.janus ? "yes" : "no") | \(meshAlignment) | "
                + "\(String(format: "%.1f", r.seconds))\(r.resumed ? " (resumed)" : "") | \(String(format: "%.0f", r.peakMemoryMiB)) |\n"
        }
        if rows.contains(where: \.record.resumed) {
            md += "\nA resumed run's time is that of its last part only; the mean and max times above leave resumed runs out.\n"
        }
        try FileIO.writeAtomically(Data(csv.utf8), to: folder.appendingPathComponent("summary.csv"))
        try FileIO.writeAtomically(Data(md.utf8), to: folder.appendingPathComponent("summary.md"))
        say("wrote \(folder.path)/summary.md and summary.csv (\(rows.count) runs" + (failures.isEmpty ? ")" : ", \(failures.count) failed)"))
    }
}

/// A prompt as a folder name: lower case, every character but letters and digits a hyphen.
public func promptSlug(_ prompt: String) -> String {
    prompt.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }.reduce(into: "") { $0.append($1) }
}

/// One bench job's result (DIR/runs/<job>/bench.json).
public struct BenchRecord: Codable {
    var prompt: String
    var method: String
    var seed: UInt64
    var score: AssetScore
    var seconds: Double
    var peakMemoryMiB: Double
    var resumed: Bool
}

/// A child process with its wall time and peak resident memory (from the kernel's rusage).
enum ChildProcess {
    /// This executable.
    /// An executable replaced on disk while it runs (a rebuild, an upgrade) reads as
    /// "PATH (deleted)"; the children then start the new file at the same path.
    static var selfPath: String {
        guard var path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return CommandLine.arguments[0] }
        let suffix = " (deleted)"
        if path.hasSuffix(suffix), !FileManager.default.fileExists(atPath: path) { path.removeLast(suffix.count) }
        return path
    }

    static func run(executable: String, arguments: [String], log: URL) throws -> (status: Int32, seconds: Double, peakMemoryMiB: Double) {
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let fd = open(log.path, O_WRONLY | O_TRUNC)
        guard fd >= 0 else { throw RunError("\(log.path) cannot be written") }
        defer { close(fd) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 1)
        posix_spawn_file_actions_adddup2(&actions, fd, 2)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var pid: pid_t = 0
        let clock = ContinuousClock(), start = clock.now
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        guard spawned == 0 else { throw RunError("cannot start \(executable): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let seconds = (clock.now - start).seconds
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, seconds, Double(usage.ru_maxrss) / 1024)  // Linux reports kilobytes
    }
}
