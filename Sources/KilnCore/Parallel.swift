import Dispatch
import Foundation

/// Data-parallel loops over index ranges.
///
/// Work is cut into contiguous chunks that depend only on `count` and `threads`, never on timing,
/// so a kernel that writes one partial result per chunk and reduces them in chunk order gives
/// bit-identical results run after run (for a fixed thread count). The chunks run on
/// `DispatchQueue.concurrentPerform`, which uses at most one worker per core.
public enum Parallel {
    /// The thread count used when none is given: the `KILN_THREADS` environment variable when it
    /// holds a positive integer, else the number of active processors. Read once per process.
    public static let defaultThreadCount: Int = threadCount(
        environment: ProcessInfo.processInfo.environment,
        activeProcessors: ProcessInfo.processInfo.activeProcessorCount)

    /// The thread count that `defaultThreadCount` would pick for an environment: `KILN_THREADS`
    /// if it parses as a positive integer (surrounding spaces allowed), else `activeProcessors`
    /// (at least 1).
    public static func threadCount(environment: [String: String], activeProcessors: Int) -> Int {
        if let text = environment["KILN_THREADS"],
           let n = Int(text.trimmingCharacters(in: .whitespaces)), n > 0 {
            return n
        }
        return Swift.max(1, activeProcessors)
    }

    /// The chunks `parallelFor` uses: `min(threads, count)` contiguous ranges covering
    /// `0..<count`, chunk `i` = `i·count/k ..< (i+1)·count/k` (sizes differ by at most one).
    /// Empty when `count == 0`.
    public static func chunks(count: Int, threads: Int) -> [Range<Int>] {
        let k = chunkCount(count: count, threads: threads)
        return (0..<k).map { chunk(i: $0, of: k, count: count) }
    }

    @usableFromInline
    static func chunkCount(count: Int, threads: Int) -> Int {
        precondition(count >= 0, "parallel loop count must be non-negative, got \(count)")
        return Swift.min(Swift.max(1, threads), count)
    }

    @usableFromInline
    static func chunk(i: Int, of k: Int, count: Int) -> Range<Int> {
        (i * count / k) ..< ((i + 1) * count / k)
    }
}

// MARK: - Loops

/// Runs `body` over contiguous chunks that together cover `0..<count`, in parallel.
///
/// Chunking is deterministic (see `Parallel.chunks(count:threads:)`); the order in which chunks
/// run is not. With one chunk the body runs on the calling thread.
/// - Parameters:
///   - count: number of items, ≥ 0.
///   - threads: number of chunks to cut the work into (capped at `count`).
///   - body: called once per chunk with its index range; must be safe to run concurrently.
public func parallelFor(_ count: Int, threads: Int = Parallel.defaultThreadCount,
                        _ body: @Sendable (Range<Int>) -> Void) {
    parallelForChunks(count, threads: threads) { _, range in body(range) }
}

/// Like `parallelFor`, also passing the chunk index (`0..<min(threads, count)`), for kernels that
/// keep one scratch or partial-result buffer per chunk.
public func parallelForChunks(_ count: Int, threads: Int = Parallel.defaultThreadCount,
                              _ body: @Sendable (_ chunk: Int, _ range: Range<Int>) -> Void) {
    let k = Parallel.chunkCount(count: count, threads: threads)
    if k == 0 { return }
    if k == 1 { body(0, 0..<count); return }
    DispatchQueue.concurrentPerform(iterations: k) { i in
        body(i, Parallel.chunk(i: i, of: k, count: count))
    }
}

/// Runs `body` on each chunk in parallel and returns the per-chunk results in chunk order, for a
/// deterministic reduction by the caller (for example summing partial gradients serially).
public func parallelMapChunks<T: Sendable>(_ count: Int, threads: Int = Parallel.defaultThreadCount,
                                           _ body: @Sendable (Range<Int>) -> T) -> [T] {
    let k = Parallel.chunkCount(count: count, threads: threads)
    if k == 0 { return [] }
    if k == 1 { return [body(0..<count)] }
    return Array(unsafeUninitializedCapacity: k) { buffer, initializedCount in
        // Each chunk initialises only its own slot, so the concurrent writes never overlap.
        nonisolated(unsafe) let slots = buffer.baseAddress!
        DispatchQueue.concurrentPerform(iterations: k) { i in
            (slots + i).initialize(to: body(Parallel.chunk(i: i, of: k, count: count)))
        }
        initializedCount = k
    }
}

/// A mutable buffer shared by parallel workers that write disjoint elements (the caller keeps
/// the buffer alive and the writes disjoint).
public struct UnsafeMutableSendableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeMutableBufferPointer<T>
    public init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
    @inlinable public subscript(i: Int) -> T {
        get { buffer[i] }
        nonmutating set { buffer[i] = newValue }
    }
}

/// A read-only buffer shared by parallel workers (the caller keeps the buffer alive).
public struct UnsafeSendableBuffer<T>: @unchecked Sendable {
    public let buffer: UnsafeBufferPointer<T>
    public init(_ buffer: UnsafeBufferPointer<T>) { self.buffer = buffer }
    @inlinable public subscript(i: Int) -> T { buffer[i] }
}

extension Duration {
    /// The duration in seconds, with its fraction.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
