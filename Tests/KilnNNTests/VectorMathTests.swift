import Foundation
import Testing
@testable import KilnNN

@Suite("Vectorised exp, erf, tanh, sigmoid")
struct VectorMathTests {
    /// The worst error of `f` over `inputs`, relative to max(|exact|, floor).
    func worst(_ inputs: [Float], floor: Double, _ f: (SIMD16<Float>) -> SIMD16<Float>, _ exact: (Double) -> Double) -> (Double, Float) {
        var result = (0.0, Float(0))
        for start in stride(from: 0, to: inputs.count, by: 16) {
            var v = SIMD16<Float>()
            for i in 0..<16 { v[i] = inputs[min(inputs.count - 1, start + i)] }
            let y = f(v)
            for i in 0..<16 {
                let x = Double(v[i]), e = exact(x)
                let error = abs(Double(y[i]) - e) / max(abs(e), floor)
                if !(error <= result.0) { result = (error, v[i]) }
            }
        }
        return result
    }

    let grid: [Float] = (0...4000).map { -20 + Float($0) * 0.01 }

    @Test("exp: relative error below 3e-7 on [-87, 88], 0 below the normal range, finite above")
    func exp() {
        let wide: [Float] = (0...17_500).map { -87 + Float($0) * 0.01 }
        let (error, at) = worst(wide, floor: 0, VectorMath.exp) { Foundation.exp($0) }
        #expect(error < 3e-7, "worst at \(at): \(error)")
        #expect(VectorMath.exp(SIMD16<Float>(repeating: -1000))[0] == 0)
        #expect(VectorMath.exp(SIMD16<Float>(repeating: -87.3))[0] > 0)
        #expect(VectorMath.exp(SIMD16<Float>(repeating: 1000))[0].isFinite)
        #expect(VectorMath.exp(SIMD16<Float>(repeating: 0))[0] == 1)
    }

    @Test("erf, tanh, sigmoid: absolute error below 4e-7")
    func others() {
        let e = worst(grid, floor: 1, VectorMath.erf) { Foundation.erf($0) }
        #expect(e.0 < 4e-7, "erf worst at \(e.1): \(e.0)")
        let t = worst(grid, floor: 1, VectorMath.tanh) { Foundation.tanh($0) }
        #expect(t.0 < 4e-7, "tanh worst at \(t.1): \(t.0)")
        let s = worst(grid, floor: 1, VectorMath.sigmoid) { 1 / (1 + Foundation.exp(-$0)) }
        #expect(s.0 < 4e-7, "sigmoid worst at \(s.1): \(s.0)")
    }
}
