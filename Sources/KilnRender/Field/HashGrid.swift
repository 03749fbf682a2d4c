import KilnCore
import RealModule

/// Multiresolution hash encoding (Müller et al. 2022, Instant-NGP): L levels of trilinearly
/// interpolated feature grids, resolution growing geometrically from `baseResolution` to
/// `maxResolution`; a level whose (N+1)³ corners fit in the table is indexed densely, the others
/// through the spatial hash (x·1) ⊕ (y·2654435761) ⊕ (z·805459861) mod T.
///
/// Points are in the unit cube [0, 1]³ (callers map their bounding box onto it); outside points
/// are clamped. Features: `[N, L·F]`, level-major. The table: `[L, T, F]`.
public struct HashGrid: Sendable, Equatable {
    public var levels: Int
    public var featuresPerLevel: Int
    public var log2TableSize: Int
    public var baseResolution: Int
    public var maxResolution: Int

    public init(levels: Int = 16, featuresPerLevel: Int = 2, log2TableSize: Int = 15, baseResolution: Int = 16, maxResolution: Int = 512) {
        precondition(levels >= 1 && featuresPerLevel >= 1 && (4...24).contains(log2TableSize) && baseResolution >= 2 && maxResolution >= baseResolution,
                     "HashGrid: invalid configuration")
        self.levels = levels
        self.featuresPerLevel = featuresPerLevel
        self.log2TableSize = log2TableSize
        self.baseResolution = baseResolution
        self.maxResolution = maxResolution
    }

    public var tableSize: Int { 1 << log2TableSize }
    public var parameterCount: Int { levels * tableSize * featuresPerLevel }
    public var outputWidth: Int { levels * featuresPerLevel }

    /// N_l = ⌊N_min · b^l⌋ with b = exp((ln N_max − ln N_min)/(L − 1)).
    public func resolution(level l: Int) -> Int {
        guard levels > 1 else { return baseResolution }
        let b = Double.exp((Double.log(Double(maxResolution)) - Double.log(Double(baseResolution))) / Double(levels - 1))
        return Int((Double(baseResolution) * Double.pow(b, Double(l)) + 1e-6).rounded(.down))  // + ε: the last level is N_max exactly
    }

    /// The table slot of grid corner (x, y, z) at a level of resolution n.
    @inlinable
    public func slot(_ x: Int, _ y: Int, _ z: Int, resolution n: Int) -> Int {
        let side = n + 1
        if side * side * side <= tableSize { return x + side * (y + side * z) }
        let h = UInt32(truncatingIfNeeded: x) ^ (UInt32(truncatingIfNeeded: y) &* 2_654_435_761) ^ (UInt32(truncatingIfNeeded: z) &* 805_459_861)
        return Int(h & UInt32(tableSize - 1))
    }

    /// Initial table values: uniform in ±1e-4 (Instant-NGP).
    public func initialTable(rng: inout RNG) -> [Float] { rng.uniforms(count: parameterCount, in: -1e-4...1e-4) }

    /// The 8 corners of point `p` at level `l`: table offsets (into the whole table) and weights.
    @inline(__always)
    func corners(_ p: SIMD3<Float>, level l: Int, resolution n: Int) -> (slots: SIMD8<Int32>, weights: SIMD8<Float>) {
        // Scalar per-axis floors: SIMD3 rounding and Int conversions go through slow generic paths (measured
        // 8% of a NeRF render).
        let scale = Float(n)
        let x = min(1, max(0, p.x)) * scale, y = min(1, max(0, p.y)) * scale, z = min(1, max(0, p.z)) * scale
        let ix = min(Int(x), n - 1), iy = min(Int(y), n - 1), iz = min(Int(z), n - 1)  // x ≥ 0: truncation is the floor
        let fx = x - Float(ix), fy = y - Float(iy), fz = z - Float(iz)
        var slots = SIMD8<Int32>(), weights = SIMD8<Float>()
        let base = l * tableSize
        let side = n + 1
        let dense = side * side * side <= tableSize
        for c in 0..<8 {
            let dx = c & 1, dy = (c >> 1) & 1, dz = (c >> 2) & 1
            let cx = ix + dx, cy = iy + dy, cz = iz + dz
            let slot: Int
            if dense {
                slot = cx + side * (cy + side * cz)
            } else {
                let h = UInt32(truncatingIfNeeded: cx) ^ (UInt32(truncatingIfNeeded: cy) &* 2_654_435_761) ^ (UInt32(truncatingIfNeeded: cz) &* 805_459_861)
                slot = Int(h & UInt32(tableSize - 1))
            }
            slots[c] = Int32(truncatingIfNeeded: base + slot)
            weights[c] = (dx == 1 ? fx : 1 - fx) * (dy == 1 ? fy : 1 - fy) * (dz == 1 ? fz : 1 - fz)
        }
        return (slots, weights)
    }

    /// Per-level constants of the encoding.
    struct Level {
        var resolution: Int32, side: Int32, base: Int32, dense: Bool, scale: Float
    }

    var levelTable: [Level] {
        (0..<levels).map { l in
            let n = resolution(level: l), side = n + 1
            return Level(resolution: Int32(n), side: Int32(side), base: Int32(l * tableSize), dense: side * side * side <= tableSize, scale: Float(n))
        }
    }

    /// The 8 corner slots (into the whole table) and trilinear weights of point `p` at one level;
    /// the same arithmetic as `corners`, written out for the two-feature kernels.
    @inline(__always)
    static func cornerSlots(_ p: SIMD3<Float>, _ level: Level, mask: UInt32) -> (SIMD8<Int32>, SIMD8<Float>) {
        let n = Int(level.resolution)
        let x = min(1, max(0, p.x)) * level.scale, y = min(1, max(0, p.y)) * level.scale, z = min(1, max(0, p.z)) * level.scale
        let ix = min(Int(x), n - 1), iy = min(Int(y), n - 1), iz = min(Int(z), n - 1)
        let fx = x - Float(ix), fy = y - Float(iy), fz = z - Float(iz)
        let gx = 1 - fx, gy = 1 - fy, gz = 1 - fz
        let weights = SIMD8<Float>(gx * gy * gz, fx * gy * gz, gx * fy * gz, fx * fy * gz, gx * gy * fz, fx * gy * fz, gx * fy * fz, fx * fy * fz)
        let slots: SIMD8<Int32>
        if level.dense {
            let side = Int32(level.side), s0 = Int32(ix) + side * (Int32(iy) + side * Int32(iz)) + level.base, plane = side * side
            slots = SIMD8(s0, s0 + 1, s0 + side, s0 + side + 1, s0 + plane, s0 + plane + 1, s0 + plane + side, s0 + plane + side + 1)
        } else {
            let x0 = UInt32(truncatingIfNeeded: ix), x1 = x0 &+ 1
            let y0 = UInt32(truncatingIfNeeded: iy) &* 2_654_435_761, y1 = UInt32(truncatingIfNeeded: iy + 1) &* 2_654_435_761
            let z0 = UInt32(truncatingIfNeeded: iz) &* 805_459_861, z1 = UInt32(truncatingIfNeeded: iz + 1) &* 805_459_861
            let h = SIMD8<UInt32>(x0 ^ y0 ^ z0, x1 ^ y0 ^ z0, x0 ^ y1 ^ z0, x1 ^ y1 ^ z0, x0 ^ y0 ^ z1, x1 ^ y0 ^ z1, x0 ^ y1 ^ z1, x1 ^ y1 ^ z1) & mask
            slots = SIMD8<Int32>(truncatingIfNeeded: h) &+ level.base
        }
        return (slots, weights)
    }

    /// Encodes `points [N, 3]` (unit cube) with `table [L, T, F]`.
    /// - Returns: `[N, L·F]`.
    public func forward(points: [Float], table: [Float], threads: Int = Parallel.defaultThreadCount) -> [Float] {
        let count = points.count / 3, f = featuresPerLevel, width = outputWidth
        precondition(points.count == 3 * count && table.count == parameterCount, "HashGrid.forward: sizes")
        var out = [Float](repeating: 0, count: count * width)
        if f == 2 {
            // Two features per level (Instant-NGP's choice): one 8-byte load per corner.
            let levelInfo = levelTable, mask = UInt32(tableSize - 1), levels = levels
            out.withUnsafeMutableBufferPointer { buffer in
                let o = UnsafeMutableSendableBuffer(buffer)
                table.withUnsafeBufferPointer { tb in
                    points.withUnsafeBufferPointer { pb in
                        let t = UnsafeSendableBuffer(tb), pts = UnsafeSendableBuffer(pb)
                        levelInfo.withUnsafeBufferPointer { lb in
                            let info = UnsafeSendableBuffer(lb)
                            parallelFor(count, threads: threads) { range in
                                let pairs = UnsafeRawPointer(t.buffer.baseAddress!).assumingMemoryBound(to: SIMD2<Float>.self)
                                for i in range {
                                    let p = SIMD3(pts[3 * i], pts[3 * i + 1], pts[3 * i + 2])
                                    for l in 0..<levels {
                                        let (slots, weights) = Self.cornerSlots(p, info[l], mask: mask)
                                        var v = SIMD2<Float>()
                                        for c in 0..<8 { v += weights[c] * pairs[Int(slots[c])] }
                                        o[i * width + 2 * l] = v.x
                                        o[i * width + 2 * l + 1] = v.y
                                    }
                                }
                            }
                        }
                    }
                }
            }
            return out
        }
        let resolutions = (0..<levels).map { resolution(level: $0) }
        out.withUnsafeMutableBufferPointer { buffer in
            let o = UnsafeMutableSendableBuffer(buffer)
            table.withUnsafeBufferPointer { tb in
                let t = UnsafeSendableBuffer(tb)
                parallelFor(count, threads: threads) { range in
                    for i in range {
                        let p = SIMD3(points[3 * i], points[3 * i + 1], points[3 * i + 2])
                        for l in 0..<levels {
                            let (slots, weights) = corners(p, level: l, resolution: resolutions[l])
                            for j in 0..<f {
                                var v: Float = 0
                                for c in 0..<8 { v += weights[c] * t[Int(slots[c]) * f + j] }
                                o[i * width + l * f + j] = v
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// ∂L/∂table from ∂L/∂features `[N, L·F]`. Each thread sums a contiguous block of points into its
    /// own table, and the tables are added in thread order: the result depends on the thread count
    /// only through float rounding order, and not at all for one thread.
    public func backward(points: [Float], featureGradient: [Float], threads: Int = Parallel.defaultThreadCount) -> [Float] {
        let count = points.count / 3, f = featuresPerLevel, width = outputWidth
        precondition(featureGradient.count == count * width, "HashGrid.backward: sizes")
        let resolutions = (0..<levels).map { resolution(level: $0) }
        let levelInfo = levelTable, mask = UInt32(tableSize - 1), levels = levels, parameterCount = parameterCount
        let partials = parallelMapChunks(count, threads: threads) { range -> [Float] in
            var g = [Float](repeating: 0, count: parameterCount)
            if f == 2 {
                g.withUnsafeMutableBufferPointer { gb in
                    let pairs = UnsafeMutableRawPointer(gb.baseAddress!).assumingMemoryBound(to: SIMD2<Float>.self)
                    points.withUnsafeBufferPointer { pts in
                        featureGradient.withUnsafeBufferPointer { fg in
                            for i in range {
                                let p = SIMD3(pts[3 * i], pts[3 * i + 1], pts[3 * i + 2])
                                for l in 0..<levels {
                                    let d = SIMD2(fg[i * width + 2 * l], fg[i * width + 2 * l + 1])
                                    guard d != .zero else { continue }
                                    let (slots, weights) = Self.cornerSlots(p, levelInfo[l], mask: mask)
                                    for c in 0..<8 { pairs[Int(slots[c])] += weights[c] * d }
                                }
                            }
                        }
                    }
                }
                return g
            }
            for i in range {
                let p = SIMD3(points[3 * i], points[3 * i + 1], points[3 * i + 2])
                for l in 0..<levels {
                    let (slots, weights) = corners(p, level: l, resolution: resolutions[l])
                    for j in 0..<f {
                        let d = featureGradient[i * width + l * f + j]
                        guard d != 0 else { continue }
                        for c in 0..<8 { g[Int(slots[c]) * f + j] += weights[c] * d }
                    }
                }
            }
            return g
        }
        guard var total = partials.first else { return [Float](repeating: 0, count: parameterCount) }
        for part in partials.dropFirst() { for i in 0..<total.count { total[i] += part[i] } }
        return total
    }
}
