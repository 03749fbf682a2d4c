import Foundation
import KilnCore
import Testing
@testable import KilnNN

/// Weights kept in 16 bits: the C widening kernel against the scalar reference on every bit
/// pattern, and `Parameter`'s half-precision storage.
@Suite("Half-precision storage")
struct HalfStorageTests {
    @Test("Widening (C kernel, threaded) equals the reference on all 65 536 patterns of both formats", arguments: [HalfPrecision.Format.binary16, .bfloat16])
    func widenExhaustive(_ format: HalfPrecision.Format) {
        // Repeated so the threaded path (several 1 Mi-value chunks) runs too.
        let patterns = (0..<(1 << 21)).map { UInt16(truncatingIfNeeded: $0 &* 40_503) }
        var fast = [Float](repeating: -1, count: patterns.count)
        patterns.withUnsafeBufferPointer { src in
            fast.withUnsafeMutableBufferPointer { dst in
                HalfPrecision.widen(src.baseAddress!, format: format, count: patterns.count, into: dst.baseAddress!, threads: 2)
            }
        }
        var mismatches = 0
        for (bits, value) in zip(patterns, fast) {
            let reference = HalfPrecision.float(bits: bits, format: format)
            if reference.isNaN {
                if !value.isNaN || value.sign != reference.sign { mismatches += 1 }
            } else if value.bitPattern != reference.bitPattern {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
        // An odd count exercises the scalar tail.
        var tail = [Float](repeating: 0, count: 13)
        patterns.withUnsafeBufferPointer { src in
            tail.withUnsafeMutableBufferPointer { HalfPrecision.widen(src.baseAddress! + 3, format: format, count: 13, into: $0.baseAddress!) }
        }
        #expect(tail.map(\.bitPattern) == patterns[3..<16].map { HalfPrecision.float(bits: $0, format: format).bitPattern })
    }

    @Test("A half-precision parameter reads as its exact widening, widens for good on the first edit, and has lazy gradients")
    func parameterStorage() {
        var rng = RNG(seed: 3)
        let values = Tensor.uniform([3, 5], in: -4...4, rng: &rng)
        for format in [HalfPrecision.Format.binary16, .bfloat16] {
            let half = HalfTensor(values, format: format)
            let p = Parameter(Tensor.zeros([3, 5]))
            #expect(!p.hasGradient)
            #expect(p.gradient.storage == [Float](repeating: 0, count: 15))
            #expect(!p.hasGradient, "reading the gradient allocates nothing")
            p.loadHalf(half)
            #expect(p.halfPrecisionFormat == format)
            let widened = half.bits.map { HalfPrecision.float(bits: $0, format: format) }
            #expect(p.value.storage == widened)
            #expect(p.value.storage != values.storage, "rounded to 16 bits")
            p.withUnsafeMutableValue { $0[0] += 1 }
            #expect(p.halfPrecisionFormat == nil)
            #expect(p.value.storage == [widened[0] + 1] + widened.dropFirst())
            p.withUnsafeMutableGradient { $0[1] = 2 }
            #expect(p.hasGradient && p.gradient.storage[1] == 2)
            p.zeroGradient()
            #expect(p.gradient.maxAbsolute() == 0)
        }
    }

    @Test("Layers give the same outputs from 16-bit storage as from its widening")
    func layersReadHalfStorage() {
        var rng = RNG(seed: 4)
        let conv = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, rng: &rng)
        let reference = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, rng: &rng)
        for (p, r) in zip(conv.parameters, reference.parameters) {
            let half = HalfTensor(p.value, format: .binary16)
            p.loadHalf(half)
            r.load(half.widened())
        }
        let x = Tensor.uniform([2, 3, 40, 40], in: -1...1, rng: &rng)
        #expect(conv.forward(x).storage == reference.forward(x).storage)
        let dy = Tensor.uniform([2, 4, 40, 40], in: -1...1, rng: &rng)
        #expect(conv.backward(input: x, outputGradient: dy).storage == reference.backward(input: x, outputGradient: dy).storage)
        #expect(conv.weight.gradient.storage == reference.weight.gradient.storage)
    }
}
