import Testing
import KilnCore

@Test func parallelSumMatchesSerial() {
    let n = 1_000_000
    let values: [Double] = (0..<n).map { i in
        let wiggle = Double((i * 7919) % 1000) * 0.001
        return wiggle + 1e-7 * Double(i)
    }
    let serial: Double = values.reduce(0, +)
    for threads in [1, 2, 3, 8] {
        let partials = parallelMapChunks(n, threads: threads) { range in
            var s = 0.0
            for i in range { s += values[i] }
            return s
        }
        #expect(partials.count == threads)
        let total: Double = partials.reduce(0, +)
        #expect(abs(total - serial) < 1e-6 * serial, "threads \(threads): \(total) vs \(serial)")
        // Same chunking → bit-identical result on every run.
        let again = parallelMapChunks(n, threads: threads) { range in
            var s = 0.0
            for i in range { s += values[i] }
            return s
        }
        #expect(again == partials)
        // The serial reduction over the same chunks is exactly what the parallel one computes.
        let serialChunks = Parallel.chunks(count: n, threads: threads).map { r in r.reduce(0.0) { $0 + values[$1] } }
        #expect(serialChunks == partials)
    }
}

@Test func parallelForVisitsEveryIndexOnce() {
    let n = 1_000_003
    let counts = UnsafeMutableBufferPointer<Int32>.allocate(capacity: n)
    counts.initialize(repeating: 0)
    defer { counts.deallocate() }
    nonisolated(unsafe) let p = counts
    parallelFor(n, threads: 4) { range in
        for i in range { p[i] &+= Int32(truncatingIfNeeded: i % 5) + 1 }
    }
    var ok = true
    for i in 0..<n where counts[i] != Int32(i % 5) + 1 { ok = false; break }
    #expect(ok)
    // Chunk indices are 0..<k and each is seen once.
    let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: 3)
    seen.initialize(repeating: 0)
    defer { seen.deallocate() }
    nonisolated(unsafe) let s = seen
    parallelForChunks(10, threads: 3) { chunk, range in s[chunk] = range.count }
    #expect(Array(seen) == [3, 3, 4])
}

@Test func chunkingIsDeterministicAndCovering() {
    #expect(Parallel.chunks(count: 10, threads: 3) == [0..<3, 3..<6, 6..<10])
    #expect(Parallel.chunks(count: 2, threads: 8) == [0..<1, 1..<2])
    #expect(Parallel.chunks(count: 0, threads: 4).isEmpty)
    #expect(Parallel.chunks(count: 5, threads: 0) == [0..<5])
    for (count, threads) in [(1, 1), (17, 4), (1000, 7), (999_999, 16)] {
        let chunks = Parallel.chunks(count: count, threads: threads)
        #expect(chunks.first?.lowerBound == 0 && chunks.last?.upperBound == count)
        #expect(zip(chunks, chunks.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound })
        let sizes = chunks.map(\.count)
        #expect(sizes.max()! - sizes.min()! <= 1)
    }
    parallelFor(0) { _ in Issue.record("body called for an empty loop") }
    parallelFor(5, threads: 1) { range in #expect(range == 0..<5) }
}

@Test func threadCountFromEnvironment() {
    #expect(Parallel.threadCount(environment: ["KILN_THREADS": "3"], activeProcessors: 16) == 3)
    #expect(Parallel.threadCount(environment: ["KILN_THREADS": " 2 "], activeProcessors: 16) == 2)
    #expect(Parallel.threadCount(environment: ["KILN_THREADS": "0"], activeProcessors: 16) == 16)
    #expect(Parallel.threadCount(environment: ["KILN_THREADS": "many"], activeProcessors: 16) == 16)
    #expect(Parallel.threadCount(environment: [:], activeProcessors: 6) == 6)
    #expect(Parallel.threadCount(environment: [:], activeProcessors: 0) == 1)
    #expect(Parallel.defaultThreadCount >= 1)
}
