import Foundation
import Testing
import KilnCore

@Test func matchesPublishedXoshiroAndSplitMix() {
    // Golden values from the reference C algorithms (Vigna's xoshiro256starstar.c, splitmix64.c).
    var sm = SplitMix64(state: 0)
    #expect(sm.next() == 0xE220_A839_7B1D_CDAF)
    #expect(sm.next() == 0x6E78_9E6A_A1B9_65F4)
    var rng = RNG(seed: 0)
    #expect(rng.state == (0xE220_A839_7B1D_CDAF, 0x6E78_9E6A_A1B9_65F4, 0x06C4_5D18_8009_454F, 0xF88B_B8A8_724C_81EC))
    #expect(rng.next() == 0x99EC_5F36_CB75_F2B4)
    #expect(rng.next() == 0xBF6E_1F78_4956_452A)
    #expect(rng.next() == 0x1A5F_849D_4933_E6E0)
    var r42 = RNG(seed: 42)
    #expect(r42.next() == 0x1578_0B2E_0C2E_C716)
    #expect(r42.next() == 0x6104_D986_6D11_3A7E)
}

@Test func sameSeedSameSequence() {
    var a = RNG(seed: 1234), b = RNG(seed: 1234), c = RNG(seed: 1235)
    let sa = (0..<1000).map { _ in a.next() }
    let sb = (0..<1000).map { _ in b.next() }
    let sc = (0..<1000).map { _ in c.next() }
    #expect(sa == sb)
    #expect(zip(sa, sc).filter { $0 == $1 }.isEmpty)
    #expect(a == b)
    var n1 = RNG(seed: 9), n2 = RNG(seed: 9)
    #expect(n1.normals(count: 101) == n2.normals(count: 101))
}

@Test func encodedStateContinuesIdentically() throws {
    var rng = RNG(seed: 77)
    for _ in 0..<12_345 { _ = rng.next() }
    _ = rng.normal()
    let data = try JSONEncoder().encode(rng)
    let text = String(decoding: data, as: UTF8.self)
    #expect(text.contains("xoshiro256**"))
    var restored = try JSONDecoder().decode(RNG.self, from: data)
    #expect(restored == rng)
    for _ in 0..<1000 { #expect(restored.next() == rng.next()) }
    #expect(restored.normals(count: 33) == rng.normals(count: 33))
    // Corrupt states are refused.
    #expect(throws: DecodingError.self) {
        try JSONDecoder().decode(RNG.self, from: Data(#"{"algorithm":"xoshiro256**","state":["0","0","0","0"]}"#.utf8))
    }
    #expect(throws: DecodingError.self) {
        try JSONDecoder().decode(RNG.self, from: Data(#"{"algorithm":"pcg32","state":["1","2","3","4"]}"#.utf8))
    }
    // Full 64-bit words survive (a JSON-number encoding through Double would not).
    let big = RNG(state: (UInt64.max, UInt64.max - 1, 1 << 63 | 1, 3))
    #expect(try JSONDecoder().decode(RNG.self, from: try JSONEncoder().encode(big)) == big)
}

@Test func splitStreamsAreReproducibleAndIndependent() {
    let parent = RNG(seed: 5)
    var a1 = parent.split(1), b = parent.split(2)
    let a2 = parent.split(1)
    #expect(a1 == a2)
    #expect(a1 != b)
    #expect(parent == RNG(seed: 5))  // splitting does not advance the parent
    let n = 100_000
    let xs = (0..<n).map { _ in Double(a1.nextFloat()) }
    let ys = (0..<n).map { _ in Double(b.nextFloat()) }
    // Correlation between streams: standard error 1/√n ≈ 0.003, so 0.02 is > 6σ.
    let mx = xs.reduce(0, +) / Double(n), my = ys.reduce(0, +) / Double(n)
    var sxy = 0.0, sxx = 0.0, syy = 0.0
    for i in 0..<n {
        sxy += (xs[i] - mx) * (ys[i] - my); sxx += (xs[i] - mx) * (xs[i] - mx); syy += (ys[i] - my) * (ys[i] - my)
    }
    #expect(abs(sxy / (sxx * syy).squareRoot()) < 0.02)
    // Children of children and of advanced parents differ too.
    var advanced = parent
    _ = advanced.next()
    #expect(advanced.split(1) != parent.split(1))
    #expect(parent.split(1).split(1) != parent.split(1))
    #expect(parent.split(0) != parent)
}

@Test func uniformMomentsOver100kDraws() {
    var rng = RNG(seed: 21)
    let n = 100_000
    var sum = 0.0, sumSq = 0.0, lo: Float = 1, hi: Float = 0
    for _ in 0..<n {
        let u = rng.nextFloat()
        #expect(u >= 0 && u < 1)
        sum += Double(u); sumSq += Double(u) * Double(u)
        lo = min(lo, u); hi = max(hi, u)
    }
    let mean = sum / Double(n), variance = sumSq / Double(n) - mean * mean
    // Standard error of the mean: 0.289/√n ≈ 0.0009.
    #expect(abs(mean - 0.5) < 0.005, "mean \(mean)")
    #expect(abs(variance - 1.0 / 12) < 0.002, "variance \(variance)")
    #expect(lo < 1e-3 && hi > 0.999)
    let v = rng.uniforms(count: 1000, in: -3...(-2))
    #expect(v.allSatisfy { $0 >= -3 && $0 <= -2 })
    #expect(abs(rng.uniform(2...2) - 2) == 0)
    // Usable with the standard library's generic APIs.
    let k = Int.random(in: 0..<10, using: &rng)
    #expect((0..<10).contains(k))
}

@Test(arguments: [false, true])
func normalMomentsOver100kDraws(bulk: Bool) {
    var rng = RNG(seed: 22)
    let n = 100_000
    let xs: [Float] = bulk ? rng.normals(count: n) : (0..<n).map { _ in rng.normal() }
    let mean = xs.reduce(0.0) { $0 + Double($1) } / Double(n)
    let m2 = xs.reduce(0.0) { $0 + pow(Double($1) - mean, 2) } / Double(n)
    let m4 = xs.reduce(0.0) { $0 + pow(Double($1) - mean, 4) } / Double(n)
    // Standard errors: mean 0.0032, variance 0.0045, kurtosis ≈ 0.015.
    #expect(abs(mean) < 0.015, "mean \(mean)")
    #expect(abs(m2 - 1) < 0.02, "variance \(m2)")
    #expect(abs(m4 / (m2 * m2) - 3) < 0.1, "kurtosis \(m4 / (m2 * m2))")  // Gaussian shape, not just scale
    #expect(xs.allSatisfy { $0.isFinite })
    let tail = Double(xs.filter { abs($0) > 2 }.count) / Double(n)
    #expect(abs(tail - 0.0455) < 0.004, "P(|x| > 2) = \(tail)")
    let shifted = rng.normals(count: 20_000, mean: 3, std: 0.5)
    let sm = shifted.reduce(0.0) { $0 + Double($1) } / 20_000
    #expect(abs(sm - 3) < 0.02)
    #expect(abs(rng.normal(mean: 10, std: 0) - 10) == 0)
}

@Test func oddLengthFillUsesEveryElement() {
    var rng = RNG(seed: 23)
    var a = [Float](repeating: .nan, count: 7)
    rng.fill(normal: &a)
    #expect(a.allSatisfy { $0.isFinite })
    var u = [Float](repeating: .nan, count: 5)
    rng.fill(uniform: &u, in: 1...2)
    #expect(u.allSatisfy { $0 >= 1 && $0 <= 2 })
}
