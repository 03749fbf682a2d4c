import Foundation

/// Wall time accumulated per named stage of a run (sampling, rewards, backward, …), for the
/// profiles runs report. Stages keep the order they were first measured in.
public struct StageTimes: Sendable, Equatable, Codable {
    public private(set) var stages: [String] = []
    public private(set) var seconds: [String: Double] = [:]

    public init() {}

    /// Runs `body`, adding its wall time to `stage`.
    public mutating func measure<T>(_ stage: String, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        defer { add(stage, (ContinuousClock.now - start).seconds) }
        return try body()
    }

    public mutating func add(_ stage: String, _ value: Double) {
        if seconds[stage] == nil { stages.append(stage) }
        seconds[stage, default: 0] += value
    }

    /// Adds every stage of `other`.
    public mutating func add(_ other: StageTimes) {
        for stage in other.stages { add(stage, other.seconds[stage] ?? 0) }
    }

    public var total: Double { stages.reduce(0) { $0 + (seconds[$1] ?? 0) } }

    /// Each stage's seconds and share of `total` (or of `whole` when given: the run's wall time,
    /// whose unmeasured rest shows as "other").
    public func shares(of whole: Double? = nil) -> [(stage: String, seconds: Double, share: Double)] {
        let measured = total, all = max(whole ?? measured, measured)
        var rows = stages.map { ($0, seconds[$0] ?? 0, all > 0 ? (seconds[$0] ?? 0) / all : 0) }
        if let whole, whole - measured > 1e-3 * whole { rows.append(("other", whole - measured, (whole - measured) / all)) }
        return rows
    }

    /// A Markdown table: stage, seconds, share.
    public func table(of whole: Double? = nil) -> String {
        var out = "| stage | seconds | share |\n| --- | ---: | ---: |\n"
        for row in shares(of: whole) { out += String(format: "| %@ | %.1f | %.1f%% |\n", row.stage, row.seconds, 100 * row.share) }
        return out
    }
}
