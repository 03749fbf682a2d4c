import Testing
@testable import KilnCore

@Suite("Surface level")
struct SurfaceLevelTests {
    @Test("candidates are log-spaced between the bounds")
    func candidates() {
        let c = SurfaceLevel.candidates(from: 0.01, to: 100, count: 5)
        let expected: [Float] = [0.01, 0.1, 1, 10, 100]
        #expect(zip(c, expected).allSatisfy { abs($0 - $1) <= 1e-5 * $1 }, "\(c)")
    }

    @Test("the chosen level reproduces the opaque pixels; IoU is pooled over all rays")
    func best() {
        // Four opaque rays, one of them faint (peak 0.5); one dense ray (peak 3) is not opaque.
        let peaks: [Float] = [5, 2, 1.5, 0.5, 3, 0.2, 0.1, 0.05]
        let opaque = [true, true, true, true, false, false, false, false]
        let chosen = SurfaceLevel.best(peaks: peaks, opaque: opaque, candidates: [0.01, 0.3, 1, 4])
        // 0.01: inside = all 8, both 4 → 0.5; 0.3: inside 5 (5,2,1.5,0.5,3), both 4, either 5 → 0.8;
        // 1: inside 4 (5,2,1.5,3), both 3, either 5 → 0.6; 4: inside 1, both 1, either 4 → 0.25.
        #expect(chosen.level == 0.3 && abs(chosen.iou - 0.8) < 1e-12)
        #expect(chosen.tried.map(\.iou).enumerated().allSatisfy { abs($0.element - [0.5, 0.8, 0.6, 0.25][$0.offset]) < 1e-12 })
    }
}
