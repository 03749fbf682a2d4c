import Foundation
import KilnDistill

/// An optimising stage's per-step log, `log.csv` (`log-refine.csv`).
public struct RunLog {
    static let header = "step,timestep,sds_loss,reward,reward_loss,size,non_finite,skipped,seconds\n"
    public private(set) var rows: [String] = []
    private var reports: [(step: Int, sds: Float, reward: Float?)] = []

    public init() {}

    /// The rows of an earlier run up to `step` (a resumed run continues after them).
    public init(csv: String, upTo step: Int) {
        for line in csv.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 9, let s = Int(fields[0]), s <= step, let sds = Float(fields[2]) else { continue }
            rows.append(String(line))
            reports.append((s, sds, Float(fields[3])))
        }
    }

    public mutating func append(_ r: StepReport) {
        rows.append("\(r.step),\(r.timestep),\(r.sdsLoss),\(r.reward.map { "\($0)" } ?? ""),\(r.rewardLoss.map { "\($0)" } ?? ""),\(r.size),\(r.nonFinite),\(r.skipped ? 1 : 0),\(r.seconds)")
        reports.append((r.step, r.sdsLoss, r.reward))
    }

    public var csv: String { Self.header + rows.map { $0 + "\n" }.joined() }

    /// The SDS loss and the reward, each averaged over windows of 1/100 of the run, for plots.
    public var lossPoints: [(x: Double, y: Double)] { smoothed(reports.map { (Double($0.step), Double($0.sds)) }) }

    public var rewardPoints: [(x: Double, y: Double)] { smoothed(reports.compactMap { r in r.reward.map { (Double(r.step), Double($0)) } }) }

    func smoothed(_ values: [(Double, Double)]) -> [(x: Double, y: Double)] {
        let window = max(1, values.count / 100)
        return stride(from: 0, to: values.count, by: window).map { i in
            let slice = values[i..<min(values.count, i + window)]
            return (slice.last!.0, slice.map(\.1).reduce(0, +) / Double(slice.count))
        }
    }
}
