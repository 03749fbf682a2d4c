import Foundation
import Testing
@testable import KilnCore

@Suite("Stage times")
struct StageTimesTests {
    @Test("stages keep their first-measured order, sums add up, and the unmeasured rest shows as other")
    func sums() throws {
        var times = StageTimes()
        times.add("rewards", 2)
        times.add("sampling", 5)
        times.add("rewards", 1)
        var more = StageTimes()
        more.add("optimizer", 0.5)
        more.add("sampling", 1.5)
        times.add(more)
        #expect(times.stages == ["rewards", "sampling", "optimizer"])
        #expect(times.seconds == ["rewards": 3, "sampling": 6.5, "optimizer": 0.5] && times.total == 10)
        let rows = times.shares(of: 20)
        #expect(rows.map(\.stage) == ["rewards", "sampling", "optimizer", "other"])
        #expect(rows.map(\.share) == [0.15, 0.325, 0.025, 0.5])
        // A whole smaller than the measured sum counts as the sum: shares never exceed 1.
        #expect(abs(times.shares(of: 5).map(\.share).reduce(0, +) - 1) < 1e-12 && times.shares(of: 5).count == 3)
        #expect(times.table(of: 20).contains("| sampling | 6.5 | 32.5% |") && times.table().contains("| optimizer | 0.5 | 5.0% |"))
    }

    @Test("measure returns the body's value, adds its wall time, and counts a throwing body too")
    func measures() throws {
        struct Failure: Error {}
        var times = StageTimes()
        let value = times.measure("sleep") { () -> Int in
            Thread.sleep(forTimeInterval: 0.02)
            return 7
        }
        #expect(value == 7 && times.seconds["sleep"]! >= 0.02)
        #expect(throws: Failure.self) { try times.measure("fails") { throw Failure() } }
        #expect(times.stages == ["sleep", "fails"])
    }
}
