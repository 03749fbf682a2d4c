import Foundation
import KilnCore
import KilnNN
import KilnToyWorld

/// The motion a 4D asset shows, as the learned motion-pair model (`MotionPairReward`) sees it in its
/// renders: a judge from pictures, beside `MotionAnalysis`'s judge from the Gaussians' positions.
///
/// Every pair of frames (τa < τb) whose gap lies in the model's training gaps (0.15…0.35) is shown to
/// the model at each fixed camera, earlier frame first. The verdict is the class with the highest
/// mean probability over all pairs and cameras. A still asset gives pairs of identical frames, which
/// the model calls still; a moving one gives pairs that differ the way its motion moves them. It
/// names the kind of change, not its size, and it was never shown "still" pairs that differ: frames
/// that change only non-rigidly (as SDS's Gaussians do) are named some motion too.
public struct MotionJudgement: Codable, Sendable, Equatable {
    /// Mean probability of each class (still and the toy motions) over the pairs.
    public var probabilities: [String: Float]
    /// The class with the highest mean probability.
    public var dominant: String
    /// Pairs judged (cameras × frame pairs).
    public var pairs: Int

    /// Nil when no two frames lie 0.15…0.35 apart (fewer than 4 frames over the loop, say).
    /// - Parameters:
    ///   - sequences: per camera, its frames' `[S, S, 3]` images at `times` (S: the model's image size).
    ///   - times: the frames' times in [0, 1], increasing.
    public static func judge(_ model: MotionPairReward, sequences: [[Image]], times: [Float]) -> MotionJudgement? {
        let size = model.imageSize
        precondition(!sequences.isEmpty && sequences.allSatisfy { $0.count == times.count }, "MotionJudgement: per camera, one image per time")
        precondition(sequences.joined().allSatisfy { $0.width == size && $0.height == size && $0.channels >= 3 },
                     "MotionJudgement: images of the model's size \(size)², RGB")
        let tolerance: Float = 1e-4
        var framePairs: [(Int, Int)] = []
        for a in times.indices {
            for b in times.indices where b > a {
                let gap = times[b] - times[a]
                if gap >= MotionPairReward.gaps.lowerBound - tolerance && gap <= MotionPairReward.gaps.upperBound + tolerance { framePairs.append((a, b)) }
            }
        }
        guard !framePairs.isEmpty else { return nil }
        let classes = MotionPairReward.classes
        var sums = [Double](repeating: 0, count: classes.count)
        var count = 0
        // One batch per camera: its pairs stacked as [n, 6, S, S].
        for frames in sequences {
            let values = framePairs.flatMap { a, b in MotionPairReward.stacked(frames[a], frames[b]) }
            for row in model.probabilities(Tensor(shape: [framePairs.count, 6, size, size], storage: values)) {
                for c in classes.indices { sums[c] += Double(row[c]) }
                count += 1
            }
        }
        let means = sums.map { Float($0 / Double(count)) }
        let best = means.indices.max { means[$0] < means[$1] }!
        return MotionJudgement(probabilities: Dictionary(uniqueKeysWithValues: zip(classes, means)), dominant: classes[best], pairs: count)
    }
}
