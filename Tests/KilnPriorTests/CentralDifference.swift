import KilnNN

/// (loss(θ + h) − loss(θ − h)) / 2h in element `index` of `p`, which is restored afterwards: the
/// numeric side of the gradient checks.
func centralDifference(_ p: Parameter, at index: Int, h: Float = 1e-2, _ loss: () throws -> Double) rethrows -> Double {
    let original = p.value.storage[index]
    defer { p.withUnsafeMutableValue { $0[index] = original } }
    p.withUnsafeMutableValue { $0[index] = original + h }
    let up = try loss()
    p.withUnsafeMutableValue { $0[index] = original - h }
    let down = try loss()
    return (up - down) / Double(2 * h)
}
