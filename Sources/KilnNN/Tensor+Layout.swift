import KilnCore

// MARK: - Permute, concatenate, split

extension Tensor {
    /// The axes reordered: `result.shape[i] == shape[axes[i]]` (`permute` in PyTorch), copied into a
    /// new contiguous tensor. `[N, C, H·W] → [N, H·W, C]` is `permuted([0, 2, 1])`.
    ///
    /// Axes that stay adjacent and in order are merged first. When what remains is a batched 2D
    /// transpose (NCHW ↔ NHWC is `[N, C, H·W] ↔ [N, H·W, C]`) the copy runs in cache-sized tiles;
    /// otherwise it walks the output, copying runs of the innermost output axis.
    public func permuted(_ axes: [Int]) -> Tensor {
        precondition(axes.sorted() == Array(0..<rank), "permuted(\(axes)): not a permutation of the \(rank) axes of \(shape)")
        let outShape = axes.map { shape[$0] }
        if axes == Array(0..<rank) || count == 0 { return reshaped(outShape) }
        var out = Tensor(uninitializedShape: outShape)
        // Merge runs of axes that stay adjacent and in order: the permutation on the merged shape is
        // what the copy loops over.
        var groups: [[Int]] = []
        for a in axes {
            if let last = groups.last?.last, last + 1 == a { groups[groups.count - 1].append(a) } else { groups.append([a]) }
        }
        let groupOrder = groups.map { $0[0] }.enumerated().sorted { $0.element < $1.element }.map(\.offset)
        // groupOrder[j]: which output group holds the j-th input group.
        let inExtents = groupOrder.map { groups[$0].reduce(1) { $0 * shape[$1] } }
        // perm[i]: which merged input axis output group i is.
        let perm = groups.indices.map { i in groupOrder.firstIndex(of: i)! }
        withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                nonisolated(unsafe) let (s, d) = (src.baseAddress!, dst.baseAddress!)
                if perm.count == 3 && perm == [0, 2, 1] || perm == [1, 0] {
                    // Batched transpose: input [B, R, C] → output [B, C, R].
                    let (b, r, c) = perm.count == 2 ? (1, inExtents[0], inExtents[1]) : (inExtents[0], inExtents[1], inExtents[2])
                    Tensor.batchedTranspose(s, d, batches: b, rows: r, columns: c)
                } else {
                    Tensor.genericPermute(s, d, inExtents: inExtents, perm: perm)
                }
            }
        }
        return out
    }

    /// `[B, R, C] → [B, C, R]` in 32 × 32 tiles, batches × row tiles in parallel.
    static func batchedTranspose(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, batches: Int, rows: Int, columns: Int) {
        let tile = 32
        let rowTiles = (rows + tile - 1) / tile
        nonisolated(unsafe) let (s, d) = (s, d)
        VectorMath.forChunks(batches * rowTiles, threshold: rows * columns * batches >= VectorMath.parallelThreshold ? 1 : Int.max) { range in
            for job in range {
                let b = job / rowTiles, r0 = (job % rowTiles) * tile
                let src = s + b * rows * columns, dst = d + b * rows * columns
                let r1 = Swift.min(rows, r0 + tile)
                var c0 = 0
                while c0 < columns {
                    let c1 = Swift.min(columns, c0 + tile)
                    for r in r0..<r1 {
                        for c in c0..<c1 { dst[c * rows + r] = src[r * columns + c] }
                    }
                    c0 = c1
                }
            }
        }
    }

    /// Any permutation: walks the output in order with an odometer over the input strides.
    static func genericPermute(_ s: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, inExtents: [Int], perm: [Int]) {
        // perm[i]: input group placed at output position i.
        var inStrides = [Int](repeating: 1, count: inExtents.count)
        for i in stride(from: inExtents.count - 2, through: 0, by: -1) { inStrides[i] = inStrides[i + 1] * inExtents[i + 1] }
        let outExtents = perm.map { inExtents[$0] }
        let strides = perm.map { inStrides[$0] }
        let total = inExtents.reduce(1, *)
        let inner = outExtents.last!, innerStride = strides.last!
        var index = [Int](repeating: 0, count: outExtents.count)
        var o = 0
        while o < total {
            var base = 0
            for i in 0..<(index.count - 1) { base += index[i] * strides[i] }
            for j in 0..<inner { d[o + j] = s[base + j * innerStride] }
            o += inner
            var axis = index.count - 2
            while axis >= 0 {
                index[axis] += 1
                if index[axis] < outExtents[axis] { break }
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Tensors joined along `axis` (`torch.cat`). - Precondition: same rank, equal extents on every
    /// other axis, at least one tensor.
    public static func concatenated(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "Tensor.concatenated: no tensors")
        let first = tensors[0]
        precondition(axis >= 0 && axis < first.rank, "Tensor.concatenated: axis \(axis) out of range for shape \(first.shape)")
        for t in tensors {
            precondition(t.rank == first.rank && (0..<first.rank).allSatisfy { $0 == axis || t.shape[$0] == first.shape[$0] },
                         "Tensor.concatenated along axis \(axis): shape \(t.shape) does not match \(first.shape) off that axis")
        }
        var outShape = first.shape
        outShape[axis] = tensors.reduce(0) { $0 + $1.shape[axis] }
        let outer = first.shape[..<axis].reduce(1, *), inner = first.shape[(axis + 1)...].reduce(1, *)
        var out = [Float]()
        out.reserveCapacity(Tensor.elementCount(outShape))
        for o in 0..<outer {
            for t in tensors {
                let block = t.shape[axis] * inner
                out.append(contentsOf: t.storage[(o * block)..<((o + 1) * block)])
            }
        }
        return Tensor(shape: outShape, storage: out)
    }

    /// Consecutive pieces along `axis` with the given extents (`torch.split`).
    /// - Precondition: the sizes add up to `shape[axis]`.
    public func split(axis: Int, sizes: [Int]) -> [Tensor] {
        precondition(axis >= 0 && axis < rank, "Tensor.split: axis \(axis) out of range for shape \(shape)")
        precondition(sizes.reduce(0, +) == shape[axis] && sizes.allSatisfy { $0 >= 0 },
                     "Tensor.split: sizes \(sizes) do not add up to extent \(shape[axis]) of axis \(axis) in \(shape)")
        let outer = shape[..<axis].reduce(1, *), inner = shape[(axis + 1)...].reduce(1, *)
        var start = 0
        return sizes.map { size in
            var pieceShape = shape
            pieceShape[axis] = size
            var piece = [Float]()
            piece.reserveCapacity(outer * size * inner)
            for o in 0..<outer {
                let from = (o * shape[axis] + start) * inner
                piece.append(contentsOf: storage[from..<(from + size * inner)])
            }
            start += size
            return Tensor(shape: pieceShape, storage: piece)
        }
    }

    /// `parts` equal pieces along `axis` (`torch.chunk` when the extent divides evenly).
    public func chunked(_ parts: Int, axis: Int) -> [Tensor] {
        precondition(parts > 0 && axis >= 0 && axis < rank && shape[axis] % parts == 0,
                     "Tensor.chunked(\(parts), axis: \(axis)): extent of axis \(axis) in \(shape) is not a multiple of \(parts)")
        return split(axis: axis, sizes: [Int](repeating: shape[axis] / parts, count: parts))
    }
}
