import KilnCore
import Testing
@testable import KilnNN

@Suite("Tensor")
struct TensorTests {
    @Test("Construction, element access and reshape without copying")
    func basics() {
        var t = Tensor(shape: [2, 3], storage: [0, 1, 2, 3, 4, 5])
        #expect(t.count == 6 && t.rank == 2)
        #expect(t[1, 2] == 5)
        t[0, 1] = 9
        #expect(t.storage == [0, 9, 2, 3, 4, 5])
        let r = t.reshaped([3, -1])
        #expect(r.shape == [3, 2] && r.storage == t.storage)
        #expect(t.reshaped([6]).shape == [6])
        #expect(Tensor.zeros([0, 4]).count == 0)
        #expect(Tensor(repeating: 2, shape: []).count == 1)
    }

    @Test("Random tensors follow the seed")
    func random() {
        var a = RNG(seed: 3), b = RNG(seed: 3)
        let x = Tensor.random([4, 5], rng: &a), y = Tensor.random([4, 5], rng: &b)
        #expect(x == y)
        var c = RNG(seed: 4)
        #expect(Tensor.random([4, 5], rng: &c) != x)
        var d = RNG(seed: 5)
        let u = Tensor.uniform([1000], in: -2...3, rng: &d)
        #expect(u.storage.allSatisfy { (-2...3).contains($0) })
    }

    @Test("Elementwise arithmetic, small and above the parallel threshold", arguments: [37, VectorMath.parallelThreshold + 5])
    func elementwise(count: Int) {
        let a = tensor(randomValues(count, seed: 1), [count]), b = tensor(randomValues(count, seed: 2), [count])
        #expect((a + b).storage == zip(a.storage, b.storage).map { $0 + $1 })
        #expect((a - b).storage == zip(a.storage, b.storage).map { $0 - $1 })
        #expect((a * b).storage == zip(a.storage, b.storage).map { $0 * $1 })
        #expect((2.5 * a).storage == a.storage.map { 2.5 * $0 })
        #expect((-a).storage == a.storage.map { -$0 })
        var c = a
        c.add(b, scaledBy: -0.5)
        #expect(c.storage == zip(a.storage, b.storage).map { $0 + $1 * -0.5 })
        c = a
        c += b
        #expect(c == a + b)
        c *= 3
        #expect(c.storage == (a + b).storage.map { $0 * 3 })
        let sum = a.storage.reduce(0.0) { $0 + Double($1) }, magnitude = a.storage.reduce(0.0) { $0 + Double(abs($1)) }
        #expect(abs(a.sum() - sum) < 1e-7 * magnitude)
        let squares = a.storage.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(a.squaredNorm() - squares) < 1e-7 * squares)
        #expect(a.maxAbsolute() == a.storage.map(abs).max())
    }

    @Test("permuted matches index arithmetic (batched transposes and the general walk)")
    func permute() {
        let shape = [2, 3, 4, 5]
        let x = Tensor(shape: shape, storage: (0..<120).map(Float.init))
        for axes in [[0, 2, 3, 1], [0, 3, 1, 2], [1, 0, 2, 3], [3, 2, 1, 0], [0, 1, 3, 2], [2, 0, 3, 1], [0, 1, 2, 3]] {
            let y = x.permuted(axes)
            #expect(y.shape == axes.map { shape[$0] })
            var ok = true
            for a in 0..<2 { for b in 0..<3 { for c in 0..<4 { for d in 0..<5 {
                let index = [a, b, c, d]
                if y.storage[y.offset(axes.map { index[$0] })] != x[a, b, c, d] { ok = false }
            } } } }
            #expect(ok, "permuted(\(axes))")
        }
        let m = Tensor(shape: [37, 41], storage: (0..<(37 * 41)).map(Float.init))
        let mt = m.permuted([1, 0])
        #expect(mt[40, 36] == m[36, 40] && mt[3, 5] == m[5, 3])
    }

    @Test("concatenated and split are inverse (skip connections along channels)")
    func concatenateSplit() {
        let a = tensor(randomValues(2 * 3 * 4, seed: 7), [2, 3, 4]), b = tensor(randomValues(2 * 5 * 4, seed: 8), [2, 5, 4])
        let c = Tensor.concatenated([a, b], axis: 1)
        #expect(c.shape == [2, 8, 4])
        #expect(c[1, 4, 2] == b[1, 1, 2] && c[1, 2, 3] == a[1, 2, 3])
        let parts = c.split(axis: 1, sizes: [3, 5])
        #expect(parts[0] == a && parts[1] == b)
        let halves = c.chunked(2, axis: 2)
        #expect(halves[0].shape == [2, 8, 2] && halves[1][1, 7, 1] == c[1, 7, 3])
        #expect(Tensor.concatenated(halves, axis: 2) == c)
    }

    @Test("Shape descriptions name the free extents")
    func describeShape() {
        #expect(Tensor.describe([2, nil, 4]) == "[2, *, 4]")
    }
}
