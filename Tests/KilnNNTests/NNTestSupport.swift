import Foundation
import KilnCore
import Testing
@testable import KilnNN

/// `count` normal samples (times `scale`) as float32-representable doubles, so a float32 fast path
/// and a float64 reference see identical inputs.
func randomValues(_ count: Int, seed: UInt64, scale: Float = 1) -> [Double] {
    var rng = RNG(seed: seed)
    return rng.normals(count: count, std: scale).map(Double.init)
}

func tensor(_ values: [Double], _ shape: [Int]) -> Tensor {
    Tensor(shape: shape, storage: values.map(Float.init))
}

func doubles(_ t: Tensor) -> [Double] { t.storage.map(Double.init) }

/// The worst disagreement between `actual` and `expected`, relative to the largest |expected|
/// (‖a − e‖∞ / max(‖e‖∞, floor)): robust to entries that are near zero only by cancellation; the
/// floor keeps an all-zero expectation (a gradient that vanishes exactly) from dividing noise by 0.
struct Comparison: CustomStringConvertible {
    var error: Double
    var index: Int
    var actual: Double
    var expected: Double
    var scale: Double

    init(_ actual: [Double], _ expected: [Double], floor: Double = 1e-30) {
        precondition(actual.count == expected.count, "comparing \(actual.count) values with \(expected.count)")
        scale = max(floor, expected.map(abs).max() ?? 0)
        (error, index, self.actual, self.expected) = (0, -1, 0, 0)
        for i in actual.indices {
            let e = abs(actual[i] - expected[i]) / scale
            if !(e <= error) { (error, index, self.actual, self.expected) = (e.isNaN ? .infinity : e, i, actual[i], expected[i]) }
        }
    }

    var description: String {
        "max error \(error) (relative to max |expected| \(scale)) at [\(index)]: got \(actual), expected \(expected)"
    }
}

/// Expects `actual` to match `expected` within `tolerance` (see `Comparison`).
func expectClose(_ actual: [Double], _ expected: [Double], tolerance: Double, _ what: String, floor: Double = 1e-30,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(what): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    let c = Comparison(actual, expected, floor: floor)
    #expect(c.error <= tolerance, "\(what): \(c)", sourceLocation: sourceLocation)
}

func expectClose(_ actual: Tensor, _ expected: [Double], tolerance: Double, _ what: String, floor: Double = 1e-30,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    expectClose(doubles(actual), expected, tolerance: tolerance, what, floor: floor, sourceLocation: sourceLocation)
}

// MARK: - Finite differences

/// Central differences of the scalar L(θ) = Σᵢ wᵢ·f(θ)ᵢ with respect to every entry of every
/// argument array: (L(θ + ε) − L(θ − ε)) / 2ε in float64.
func numericGradients(_ arguments: [[Double]], weights: [Double], eps: Double = 1e-6,
                      _ f: ([[Double]]) -> [Double]) -> [[Double]] {
    func loss(_ a: [[Double]]) -> Double {
        let y = f(a)
        precondition(y.count == weights.count, "the function gives \(y.count) values for \(weights.count) weights")
        var s = 0.0
        for i in y.indices { s += weights[i] * y[i] }
        return s
    }
    var args = arguments
    return arguments.indices.map { a in
        (0..<arguments[a].count).map { i in
            let saved = args[a][i]
            args[a][i] = saved + eps
            let up = loss(args)
            args[a][i] = saved - eps
            let down = loss(args)
            args[a][i] = saved
            return (up - down) / (2 * eps)
        }
    }
}

/// Checks analytic gradients (one array per argument) against central differences (errors relative
/// to the largest gradient entry, or to 10⁻³ for a gradient that vanishes).
func expectGradientsMatchFiniteDifferences(_ names: [String], analytic: [[Double]], arguments: [[Double]], weights: [Double],
                                           tolerance: Double = 1e-6, sourceLocation: SourceLocation = #_sourceLocation,
                                           _ f: ([[Double]]) -> [Double]) {
    let numeric = numericGradients(arguments, weights: weights, f)
    for i in names.indices {
        expectClose(analytic[i], numeric[i], tolerance: tolerance, "∂L/∂\(names[i]) vs finite differences", floor: 1e-3,
                    sourceLocation: sourceLocation)
    }
}

// MARK: - Goldens

/// `Fixtures/nn_goldens.json` from `tools/make_nn_goldens.py`.
struct Goldens: Decodable {
    struct Array: Decodable {
        var shape: [Int]
        var data: [Double]
        var tensor: Tensor { Tensor(shape: shape, storage: data.map(Float.init)) }
    }

    struct Case: Decodable {
        var name: String
        var layer: String
        var config: [String: Double]
        var tensors: [String: Array]

        func get(_ key: String) -> Array {
            guard let a = tensors[key] else { fatalError("golden \(name) has no tensor \(key); keys: \(tensors.keys.sorted())") }
            return a
        }
        func int(_ key: String) -> Int { Int(config[key] ?? .nan) }
        func flag(_ key: String) -> Bool { (config[key] ?? 0) != 0 }
    }

    var torch: String
    var cases: [Case]

    static let shared: Goldens = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/nn_goldens.json")
        do {
            return try JSONDecoder().decode(Goldens.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error); regenerate with python3 tools/make_nn_goldens.py")
        }
    }()

    static func cases(layer: String) -> [Case] { shared.cases.filter { $0.layer == layer } }
    static func named(_ name: String) -> Case {
        guard let c = shared.cases.first(where: { $0.name == name }) else { fatalError("no golden named \(name)") }
        return c
    }
}
