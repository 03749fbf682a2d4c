import Foundation
import Testing
@testable import KilnCore

@Suite("Run profiles")
struct ProfilerTests {
    /// Busy for about `seconds` (a sleep would do; spinning keeps the test independent of timers).
    static func spin(_ seconds: Double) {
        let end = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < end {}
    }

    @Test("nested measures are exclusive: a stage's parts and its other add up to the stage, and a part's inner part is not counted twice")
    func exclusiveNesting() throws {
        let profiler = Profiler()
        profiler.activate {
            Profiler.measure("distil") {
                Profiler.measure("optimiser") {
                    Self.spin(0.01)
                    Profiler.measure("densification") { Self.spin(0.02) }
                }
                Profiler.measure("render forward") { Self.spin(0.01) }
                Profiler.measure("optimiser") { Self.spin(0.01) }
                Self.spin(0.005)
            }
            Profiler.measure("export") { Self.spin(0.005) }
        }
        let profile = profiler.profile
        #expect(profile.stages.map(\.stage) == ["distil", "export"])
        let distil = profile.stages[0]
        #expect(distil.parts.map(\.part) == ["densification", "optimiser", "render forward", "other"])
        let seconds = Dictionary(uniqueKeysWithValues: distil.parts.map { ($0.part, $0.seconds) })
        // The parts and the rest sum to the stage, and the shares to 1.
        #expect(abs(distil.parts.map(\.seconds).reduce(0, +) - distil.seconds) < 1e-9)
        #expect(abs(distil.parts.map(\.share).reduce(0, +) - 1) < 1e-9)
        // Exclusive: the optimiser's two blocks spun 20 ms of their own; densification's 20 ms is not in them.
        #expect(seconds["densification"]! >= 0.02 && seconds["optimiser"]! >= 0.02 && seconds["optimiser"]! < 0.02 + seconds["densification"]!)
        #expect(seconds["other"]! >= 0.005)
        #expect(profile.stages[1].parts.map(\.part) == ["other"] || profile.stages[1].parts.isEmpty)
        #expect(profile.stages[1].seconds >= 0.005 && profile.stages[1].seconds < distil.seconds)
    }

    @Test("without an active profiler a measure only runs its body; another thread's measures stay out; activation nests and restores")
    func activation() throws {
        #expect(Profiler.measure("stage") { 42 } == 42)
        let profiler = Profiler(), inner = Profiler()
        profiler.activate {
            Profiler.measure("a") {
                // Another thread has no active profiler: nothing of it lands here.
                let other = Thread { _ = Profiler.measure("elsewhere") { Self.spin(0.005) } }
                other.start()
                while !other.isFinished { usleep(1000) }
            }
            inner.activate { Profiler.measure("b") {} }
            Profiler.measure("c") {}
        }
        #expect(profiler.profile.stages.map(\.stage) == ["a", "c"])
        #expect(!(profiler.profile.stages[0].parts.map(\.part)).contains("elsewhere"))
        #expect(inner.profile.stages.map(\.stage) == ["b"])
        #expect(Profiler.measure("after") { 1 } == 1)
        #expect(profiler.profile.stages.count == 2)
    }

    @Test("sums add stages and parts and recompute other; profile.json round-trips; the table lists every stage and the parts of at least 1%")
    func sumsAndTable() throws {
        let a = RunProfile(stages: [
            .init(stage: "distil", seconds: 10, parts: [.init(part: "prior forward", seconds: 6, share: 0.6), .init(part: "other", seconds: 4, share: 0.4)]),
            .init(stage: "report", seconds: 2, parts: [])])
        let b = RunProfile(stages: [
            .init(stage: "setup", seconds: 1, parts: []),
            .init(stage: "distil", seconds: 30, parts: [.init(part: "render forward", seconds: 3, share: 0.1), .init(part: "prior forward", seconds: 24, share: 0.8),
                                                        .init(part: "other", seconds: 3, share: 0.1)])])
        let sum = RunProfile.sum([a, b])
        #expect(sum.stages.map(\.stage) == ["distil", "report", "setup"])
        #expect(sum.seconds == 43)
        let distil = sum.stages[0]
        #expect(distil.seconds == 40)
        #expect(distil.parts.map(\.part) == ["prior forward", "render forward", "other"])
        #expect(distil.parts.map(\.seconds) == [30, 3, 7])
        #expect(distil.parts.map(\.share) == [0.75, 0.075, 0.175])
        let data = try JSONEncoder().encode(sum)
        #expect(try JSONDecoder().decode(RunProfile.self, from: data) == sum)
        let table = sum.table
        for word in ["distil", "report", "setup", "prior forward", "render forward", "total"] { #expect(table.contains(word), "\(table)") }
        let tiny = RunProfile(stages: [.init(stage: "distil", seconds: 100, parts: [.init(part: "previews", seconds: 0.5, share: 0.005),
                                                                                   .init(part: "other", seconds: 99.5, share: 0.995)])])
        #expect(!tiny.table.contains("previews"))
        #expect(RunProfile.sum([]) == RunProfile())
    }

    @Test("a profile names its machine; a sum keeps it only when every profile ran on it; profiles without one still decode")
    func machine() throws {
        let profiler = Profiler()
        profiler.activate { Profiler.measure("distil") {} }
        let here = try #require(profiler.profile.machine)
        #expect(here == .current)
        #expect(!here.cpu.isEmpty && ["AVX-512", "AVX2", "SSE2", "NEON", "scalar"].contains(here.vector))
        #expect(here.processors == ProcessInfo.processInfo.activeProcessorCount && here.threads == Parallel.defaultThreadCount)
        #expect(profiler.profile.table.hasSuffix("on \(here)"))
        let other = RunProfile.Machine(cpu: "Other CPU", vector: "AVX2", processors: 2, threads: 2)
        let a = RunProfile(stages: [.init(stage: "distil", seconds: 1, parts: [])], machine: here)
        let b = RunProfile(stages: [.init(stage: "distil", seconds: 2, parts: [])], machine: here)
        let c = RunProfile(stages: [.init(stage: "distil", seconds: 3, parts: [])], machine: other)
        #expect(RunProfile.sum([a, b]).machine == here)
        #expect(RunProfile.sum([a, c]).machine == nil)
        #expect(RunProfile.sum([a, RunProfile(stages: [])]).machine == nil)
        #expect(!RunProfile.sum([a, c]).table.contains(" on "))
        // profile.json from before machines were recorded.
        let old = try JSONDecoder().decode(RunProfile.self, from: Data(#"{"stages": [{"stage": "distil", "seconds": 2, "parts": []}]}"#.utf8))
        #expect(old.machine == nil && old.seconds == 2)
        #expect(other.description == "Other CPU (AVX2), 2 threads on 2 processors")
    }
}
