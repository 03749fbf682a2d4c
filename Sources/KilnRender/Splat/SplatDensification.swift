import KilnCore
import RealModule

/// Arrays with one row per Gaussian (parameters, their Adam moments, motion coefficients), which
/// density control renumbers through `SplatDensification`.
public protocol SplatRows {
    /// The rows at `indices`, in that order (an index may repeat).
    func gathered(_ indices: [Int]) -> Self
    /// Sets the rows in `rows` to zero.
    mutating func zeroRows(_ rows: Range<Int>)
}

/// One density-control step's renumbering of the Gaussians (3DGS's clone, split and prune): which
/// Gaussians stay, in order, and where each new one comes from. Every per-Gaussian array follows
/// the Gaussians through it, parameters and optimiser state together, as gsplat's strategies do in
/// `_update_param_with_optimizer`: a Gaussian's parameters are copied from its source; the Adam
/// moments of a kept Gaussian stay with it, a new one's (clone or split child) start at zero.
public struct SplatDensification: Sendable, Equatable {
    /// For every Gaussian after the step, the index it had before: the `kept` ones first, in
    /// order, then the clones and split children, each with its source's index.
    public let sources: [Int]
    /// How many of `sources` are kept Gaussians (the rest are new).
    public let kept: Int

    public init(sources: [Int], kept: Int) {
        precondition((0...sources.count).contains(kept), "SplatDensification: \(kept) kept of \(sources.count)")
        self.sources = sources
        self.kept = kept
    }

    /// The new Gaussians' positions in the renumbered arrays.
    public var added: Range<Int> { kept..<sources.count }

    /// Parameters: every row copied from its source.
    public func carried<Rows: SplatRows>(_ parameters: Rows) -> Rows { parameters.gathered(sources) }

    /// Optimiser state: a kept Gaussian's row copied, a new Gaussian's zero.
    public func carriedState<Rows: SplatRows>(_ state: Rows) -> Rows {
        var out = state.gathered(sources)
        out.zeroRows(added)
        return out
    }

    /// Parameters and their Adam moments, renumbered together.
    public func carry<Rows: SplatRows>(_ parameters: inout Rows, moments first: inout Rows, _ second: inout Rows) {
        parameters = carried(parameters)
        first = carriedState(first)
        second = carriedState(second)
    }

    /// `[N, width]` rows of `values` at `indices`, in that order.
    static func gather<R>(_ values: [R], width: Int, _ indices: [Int]) -> [R] {
        var out: [R] = []
        out.reserveCapacity(width * indices.count)
        for i in indices { out += values[(width * i)..<(width * i + width)] }
        return out
    }

    /// Zeroes the `[N, width]` rows of `values` in `rows`.
    static func zero<R: BinaryFloatingPoint>(_ values: inout [R], width: Int, _ rows: Range<Int>) {
        for e in (width * rows.lowerBound)..<(width * rows.upperBound) { values[e] = 0 }
    }
}

extension SplatParameters: SplatRows {
    public func gathered(_ indices: [Int]) -> SplatParameters<R> {
        let k3 = 3 * coefficientsPerChannel
        return SplatParameters(means: SplatDensification.gather(means, width: 3, indices),
                               logScales: SplatDensification.gather(logScales, width: 3, indices),
                               rotations: SplatDensification.gather(rotations, width: 4, indices),
                               opacityLogits: SplatDensification.gather(opacityLogits, width: 1, indices),
                               sh: SplatDensification.gather(sh, width: k3, indices), shDegree: shDegree)
    }

    public mutating func zeroRows(_ rows: Range<Int>) {
        SplatDensification.zero(&means, width: 3, rows)
        SplatDensification.zero(&logScales, width: 3, rows)
        SplatDensification.zero(&rotations, width: 4, rows)
        SplatDensification.zero(&opacityLogits, width: 1, rows)
        SplatDensification.zero(&sh, width: 3 * coefficientsPerChannel, rows)
    }
}

extension SplatMotion: SplatRows {
    /// The coefficients of the Gaussians at `indices`, in that order (a clone or split child
    /// moves as its parent).
    public func gathered(_ indices: [Int]) -> SplatMotion<R> {
        let k = Self.basisCount
        return SplatMotion(position: SplatDensification.gather(position, width: 3 * k, indices),
                           rotation: SplatDensification.gather(rotation, width: 4 * k, indices),
                           logScale: SplatDensification.gather(logScale, width: 3 * k, indices))
    }

    public mutating func zeroRows(_ rows: Range<Int>) {
        let k = Self.basisCount
        SplatDensification.zero(&position, width: 3 * k, rows)
        SplatDensification.zero(&rotation, width: 4 * k, rows)
        SplatDensification.zero(&logScale, width: 3 * k, rows)
    }
}
