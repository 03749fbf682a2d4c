import Foundation

/// Where a run's wall time went: stages (distil, refine, export, report) and, inside each, the
/// kinds of work measured (render forward, prior forward, optimiser, …) by exclusive time, so a
/// stage's parts and its unmeasured rest ("other") add up to the stage.
///
/// Code anywhere below a run reports with `Profiler.measure("part") { … }`; the measurement goes
/// to the profiler active on the calling thread (`Profiler.activate`), and costs one thread-local
/// read when none is. Nested measures are exclusive: an "optimiser" around a "densification"
/// counts only its own time. Only the thread that activated a profiler records into it, so the
/// workers of a parallel loop (and runs on other threads, such as tests) never mix in.
public final class Profiler {
    /// Inclusive wall time of each stage (the outermost measures).
    public private(set) var stages = StageTimes()
    /// Exclusive wall time of each part measured inside a stage, by stage.
    public private(set) var parts: [String: StageTimes] = [:]
    private var stack: [(name: String, start: ContinuousClock.Instant, children: Double)] = []

    public init() {}

    /// Makes this profiler the calling thread's for the duration of `body`, restoring the one before.
    public func activate<T>(_ body: () throws -> T) rethrows -> T {
        let previous = ThreadProfiler.current
        ThreadProfiler.current = self
        defer { ThreadProfiler.current = previous }
        return try body()
    }

    /// Runs `body`, adding its time to `name` in the calling thread's active profiler (if any).
    @inline(__always)
    public static func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        guard let profiler = ThreadProfiler.current else { return try body() }
        return try profiler.measure(name, body)
    }

    /// Runs `body`, adding its time to `name`: a stage when no measure is open, else a part of the
    /// open stage (exclusive of the parts measured inside it).
    public func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
        stack.append((name, ContinuousClock.now, 0))
        defer {
            let frame = stack.removeLast()
            let elapsed = (ContinuousClock.now - frame.start).seconds
            if let stage = stack.first?.name {
                stack[stack.count - 1].children += elapsed
                // Parts of a stage, at any depth, are listed flat under it.
                parts[stage, default: StageTimes()].add(name, elapsed - frame.children)
            } else {
                stages.add(name, elapsed)
            }
        }
        return try body()
    }

    /// Adds `seconds` to the stage `name`, measured by the caller (a stage that is not one block).
    public func record(_ name: String, seconds: Double) { stages.add(name, seconds) }

    /// The profile so far: each stage with its parts and their shares, on this machine.
    public var profile: RunProfile {
        RunProfile(stages: stages.stages.map { RunProfile.Stage(stage: $0, seconds: stages.seconds[$0] ?? 0, parts: parts[$0] ?? StageTimes()) },
                   machine: .current)
    }
}

/// The per-thread active profiler (a pthread key: Swift has no thread-local storage of its own).
enum ThreadProfiler {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    static var current: Profiler? {
        get { pthread_getspecific(key).map { Unmanaged<Profiler>.fromOpaque($0).takeUnretainedValue() } }
        set {
            if let old = pthread_getspecific(key) { Unmanaged<Profiler>.fromOpaque(old).release() }
            pthread_setspecific(key, newValue.map { Unmanaged.passRetained($0).toOpaque() })
        }
    }
}

/// A run's profile as `profile.json` stores it: wall seconds per stage, each stage's parts with
/// their seconds and share of the stage ("other": what no part measured), and the machine that
/// ran it (the same run takes three times as long on some 2-core machines as on others, so a
/// profile is only comparable with one from the same kind of machine).
public struct RunProfile: Codable, Sendable, Equatable {
    /// What ran a profile: the processor, its vector instructions, and the threads Kiln used.
    public struct Machine: Codable, Sendable, Equatable, CustomStringConvertible {
        /// The processor's name (`CPU.modelName`).
        public var cpu: String
        /// `CPU.vectorExtensions`: "AVX-512", "AVX2", …
        public var vector: String
        /// Processors the system offered the run.
        public var processors: Int
        /// Kiln's thread count (`KILN_THREADS`, else the processors).
        public var threads: Int

        public init(cpu: String, vector: String, processors: Int, threads: Int) {
            (self.cpu, self.vector, self.processors, self.threads) = (cpu, vector, processors, threads)
        }

        /// This process's machine.
        public static var current: Machine {
            Machine(cpu: CPU.modelName, vector: CPU.vectorExtensions, processors: ProcessInfo.processInfo.activeProcessorCount,
                    threads: Parallel.defaultThreadCount)
        }

        public var description: String {
            "\(cpu) (\(vector)), \(threads) thread\(threads == 1 ? "" : "s") on \(processors) processor\(processors == 1 ? "" : "s")"
        }
    }

    public struct Part: Codable, Sendable, Equatable {
        public var part: String
        public var seconds: Double
        public var share: Double
        public init(part: String, seconds: Double, share: Double) { (self.part, self.seconds, self.share) = (part, seconds, share) }
    }
    public struct Stage: Codable, Sendable, Equatable {
        public var stage: String
        public var seconds: Double
        public var parts: [Part]

        public init(stage: String, seconds: Double, parts: [Part]) { (self.stage, self.seconds, self.parts) = (stage, seconds, parts) }

        /// A stage of `seconds` with the parts measured inside it, and the rest as "other" (when
        /// there is any), so that the parts add up to the stage.
        public init(stage: String, seconds: Double, parts measured: StageTimes) {
            var parts = measured.stages.map { Part(part: $0, seconds: measured.seconds[$0] ?? 0, share: 0) }
            let rest = seconds - measured.total
            if rest > 0 { parts.append(Part(part: "other", seconds: rest, share: 0)) }
            let whole = max(seconds, measured.total)
            for i in parts.indices { parts[i].share = whole > 0 ? parts[i].seconds / whole : 0 }
            self.init(stage: stage, seconds: seconds, parts: parts)
        }
    }
    public var stages: [Stage]
    /// The machine that ran it; nil in profiles written before machines were recorded, and in a
    /// sum of profiles from different machines.
    public var machine: Machine?

    public init(stages: [Stage] = [], machine: Machine? = nil) { (self.stages, self.machine) = (stages, machine) }

    public var seconds: Double { stages.reduce(0) { $0 + $1.seconds } }

    /// Reads a `profile.json`.
    /// - Throws: the file's read error, or a decoding error naming what is wrong in it.
    public static func read(_ url: URL) throws -> RunProfile { try JSONDecoder().decode(RunProfile.self, from: Data(contentsOf: url)) }

    /// Stage by stage and part by part sums (a resumed run's sittings, or a suite's runs), the
    /// shares recomputed; stages and parts keep the order they first appear in. The sum keeps the
    /// machine when every profile names the same one.
    public static func sum(_ profiles: [RunProfile]) -> RunProfile {
        var order: [String] = [], seconds: [String: Double] = [:], parts: [String: StageTimes] = [:]
        for profile in profiles {
            for stage in profile.stages {
                if seconds[stage.stage] == nil { order.append(stage.stage) }
                seconds[stage.stage, default: 0] += stage.seconds
                // "other" is recomputed from the sums.
                for part in stage.parts where part.part != "other" { parts[stage.stage, default: StageTimes()].add(part.part, part.seconds) }
            }
        }
        let machines = profiles.map(\.machine)
        let machine = machines.first.flatMap { first in machines.allSatisfy { $0 == first } ? first : nil }
        return RunProfile(stages: order.map { Stage(stage: $0, seconds: seconds[$0] ?? 0, parts: parts[$0] ?? StageTimes()) }, machine: machine)
    }

    /// A short table for the console: each stage with its share of the run, then its parts
    /// (largest first, those under 1% of the stage left out) with their share of the stage, and
    /// the machine last.
    public var table: String {
        let total = seconds
        var rows: [(String, Double, Double)] = []
        for stage in stages {
            rows.append((stage.stage, stage.seconds, total > 0 ? stage.seconds / total : 0))
            // A stage with nothing measured inside it has only its "other": not worth a row.
            guard stage.parts.contains(where: { $0.part != "other" }) else { continue }
            for part in stage.parts.sorted(by: { $0.seconds > $1.seconds }) where part.share >= 0.01 { rows.append(("  " + part.part, part.seconds, part.share)) }
        }
        rows.append(("total", total, 1))
        let width = max(24, rows.map(\.0.count).max() ?? 0)
        func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        let lines = rows.map { pad($0.0) + String(format: " %8.1f s  %5.1f%%", $0.1, 100 * $0.2) }
        return (lines + (machine.map { ["on \($0)"] } ?? [])).joined(separator: "\n")
    }
}
