import Foundation
import Testing
import KilnCore

// MARK: - Helpers

/// A random matrix with entries uniform in [-1, 1].
func randomMat4(_ rng: inout RNG) -> Mat4 {
    func col() -> Vec4 { Vec4(rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1), rng.uniform(-1...1)) }
    return Mat4(col(), col(), col(), col())
}

func randomVec3(_ rng: inout RNG, _ range: ClosedRange<Float> = -1...1) -> Vec3 {
    Vec3(rng.uniform(range), rng.uniform(range), rng.uniform(range))
}

/// A uniformly distributed unit quaternion (normalised 4D Gaussian).
func randomQuat(_ rng: inout RNG) -> Quat {
    Quat(w: rng.normal(), x: rng.normal(), y: rng.normal(), z: rng.normal()).normalized
}

/// Plain versions of `Mat4`'s operations, for the tests.
enum Mat4Reference {
    /// Plain Gauss–Jordan inverse with partial pivoting in double precision: the reference for
    /// `Mat4.inverse`.
    static func inverse(_ m: Mat4) -> [[Double]] {
        var a = (0..<4).map { i in (0..<4).map { j in Double(m[row: i, column: j]) } }
        var inv = (0..<4).map { i in (0..<4).map { j in i == j ? 1.0 : 0.0 } }
        for col in 0..<4 {
            let pivot = (col..<4).max { abs(a[$0][col]) < abs(a[$1][col]) }!
            a.swapAt(col, pivot); inv.swapAt(col, pivot)
            let p = a[col][col]
            for j in 0..<4 { a[col][j] /= p; inv[col][j] /= p }
            for r in 0..<4 where r != col {
                let f = a[r][col]
                for j in 0..<4 { a[r][j] -= f * a[col][j]; inv[r][j] -= f * inv[col][j] }
            }
        }
        return inv
    }
}

func isClose(_ a: Vec3, _ b: Vec3, _ tol: Float) -> Bool { maxAbs(a - b) <= tol }

// MARK: - Vectors

@Test func vectorHelpers() {
    #expect(cross(Vec3(1, 0, 0), Vec3(0, 1, 0)) == Vec3(0, 0, 1))
    #expect(cross(Vec3(0, 1, 0), Vec3(0, 0, 1)) == Vec3(1, 0, 0))
    #expect(dot(Vec3(1, 2, 3), Vec3(4, -5, 6)) == 12)
    #expect(length(Vec3(3, 4, 12)) == 13)
    #expect(isClose(normalize(Vec3(0, 3, 4)), Vec3(0, 0.6, 0.8), 1e-7))
    #expect(maxAbs(Vec3(1, -7, 3)) == 7)
    #expect(clamp(.nan, 0, 1) == 0)
    #expect(clamp(2, 0, 1) == 1)
    #expect(clamp(-2, 0, 1) == 0)
}

// MARK: - Mat4

@Test func mat4InverseTimesMatrixIsIdentity() {
    var rng = RNG(seed: 1)
    var tested = 0
    var worst: Float = 0
    while tested < 200 {
        let m = randomMat4(&rng)
        guard abs(m.determinant) > 0.05 else { continue }  // skip near-singular draws
        let inv = m.inverse
        let err = max(Mat4.maxAbsDifference(inv * m, .identity), Mat4.maxAbsDifference(m * inv, .identity))
        worst = max(worst, err)
        // Against the double-precision reference, relative to the inverse's size.
        let ref = Mat4Reference.inverse(m)
        let scale = ref.joined().map(abs).max()!
        for i in 0..<4 { for j in 0..<4 {
            #expect(abs(Double(inv[row: i, column: j]) - ref[i][j]) <= 1e-4 * max(1, scale))
        } }
        tested += 1
    }
    #expect(worst < 2e-3, "worst |M⁻¹M − I| = \(worst)")
}

@Test func mat4DeterminantAndTranspose() {
    var rng = RNG(seed: 2)
    for _ in 0..<50 {
        let a = randomMat4(&rng), b = randomMat4(&rng)
        #expect(abs((a * b).determinant - a.determinant * b.determinant) < 1e-4)
        #expect(abs(a.transpose.determinant - a.determinant) < 1e-5)
        #expect(a.transpose.transpose == a)
        #expect(Mat4.maxAbsDifference((a * b).transpose, b.transpose * a.transpose) < 1e-5)
    }
    #expect(Mat4.scale(Vec3(2, 3, 4)).determinant == 24)
    #expect(Mat4.translation(Vec3(5, 6, 7)).determinant == 1)
    #expect(Mat4.identity.inverse == .identity)
}

@Test func mat4ConstructorsAndTransforms() {
    let t = Mat4.translation(Vec3(1, 2, 3))
    #expect(t.transformPoint(Vec3(1, 1, 1)) == Vec3(2, 3, 4))
    #expect(t.transformDirection(Vec3(1, 1, 1)) == Vec3(1, 1, 1))
    #expect(t[row: 0, column: 3] == 1 && t[row: 2, column: 3] == 3)
    #expect(t.translation == Vec3(1, 2, 3))
    let s = Mat4.scale(Vec3(2, 3, 4))
    #expect(s.transformPoint(Vec3(1, 1, 1)) == Vec3(2, 3, 4))
    // Right-handed: +90° about +z takes +x to +y.
    let r = Mat4.rotation(axis: Vec3(0, 0, 1), angleRadians: .pi / 2)
    #expect(isClose(r.transformPoint(Vec3(1, 0, 0)), Vec3(0, 1, 0), 1e-6))
    // Composition applies the right factor first.
    #expect(isClose((t * s).transformPoint(Vec3(1, 1, 1)), Vec3(3, 5, 7), 0))
    #expect(isClose((s * t).transformPoint(Vec3(1, 1, 1)), Vec3(4, 9, 16), 0))
    // Rigid inverse agrees with the general inverse.
    var rng = RNG(seed: 3)
    for _ in 0..<20 {
        let m = Mat4(rotation: randomQuat(&rng), translation: randomVec3(&rng, -5...5))
        #expect(Mat4.maxAbsDifference(m.rigidInverse, m.inverse) < 1e-5)
    }
    // Projective transform divides by w.
    let p = Mat4(rows: Vec4(1, 0, 0, 0), Vec4(0, 1, 0, 0), Vec4(0, 0, 1, 0), Vec4(0, 0, 1, 0))
    #expect(p.transformHomogeneous(Vec3(2, 4, 2)) == Vec3(1, 2, 1))
}

@Test func mat4CodableIsRowMajor() throws {
    let m = Mat4(rows: Vec4(1, 2, 3, 4), Vec4(5, 6, 7, 8), Vec4(9, 10, 11, 12), Vec4(13, 14, 15, 16))
    let json = String(decoding: try JSONEncoder().encode(m), as: UTF8.self)
    #expect(json == "[[1,2,3,4],[5,6,7,8],[9,10,11,12],[13,14,15,16]]")
    #expect(try JSONDecoder().decode(Mat4.self, from: Data(json.utf8)) == m)
    #expect(m.columns.3 == Vec4(4, 8, 12, 16))
    #expect(throws: DecodingError.self) { try JSONDecoder().decode(Mat4.self, from: Data("[[1,2,3]]".utf8)) }
}

// MARK: - Mat3

@Test func mat3InverseAndDeterminant() {
    var rng = RNG(seed: 4)
    var tested = 0
    while tested < 100 {
        let m = Mat3(randomVec3(&rng), randomVec3(&rng), randomVec3(&rng))
        guard abs(m.determinant) > 0.05 else { continue }
        #expect(Mat3.maxAbsDifference(m.inverse * m, .identity) < 1e-3)
        let m4 = Mat4(linear: m)
        #expect(abs(m4.determinant - m.determinant) < 1e-5)
        #expect(Mat3.maxAbsDifference(m4.inverse.upperLeft, m.inverse) < 1e-3 * max(1, maxAbs(m.inverse.columns.0)))
        tested += 1
    }
    let v = Vec3(1, 2, 3), w = Vec3(-2, 0.5, 4)
    #expect(isClose(Mat3.skew(v) * w, cross(v, w), 1e-6))
}

// MARK: - Quaternions

@Test func quaternionMatrixRoundTrips() {
    var rng = RNG(seed: 5)
    for _ in 0..<500 {
        let q = randomQuat(&rng)
        let m = q.matrix
        #expect(abs(m.determinant - 1) < 1e-5)
        #expect(Mat3.maxAbsDifference(m * m.transpose, .identity) < 1e-5)
        let back = Quat(m)
        let sign: Float = q.w < 0 ? -1 : 1
        #expect(maxAbs(back.wxyz - sign * q.wxyz) < 1e-5, "q = \(q), back = \(back)")
        #expect(back.w >= 0)
        #expect(Mat3.maxAbsDifference(back.matrix, m) < 1e-5)
    }
}

@Test(arguments: [Vec3(1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1), Vec3(1, 1, 0), Vec3(1, -2, 3)])
func shepperdHandlesHalfTurns(axis: Vec3) {
    // Rotations by ~180° have trace ≈ −1, where the naive w-pivot formula divides by ~0.
    for angle in [Float.pi, Float.pi - 1e-4, Float.pi * 0.999, 3.0] {
        let q = Quat(axis: axis, angleRadians: angle)
        let back = Quat(q.matrix)
        #expect(Mat3.maxAbsDifference(back.matrix, q.matrix) < 1e-5, "axis \(axis) angle \(angle)")
        #expect(abs(back.length - 1) < 1e-6)
    }
}

@Test func quaternionCompositionMatchesMatrixProduct() {
    var rng = RNG(seed: 6)
    for _ in 0..<200 {
        let a = randomQuat(&rng), b = randomQuat(&rng)
        let v = randomVec3(&rng, -3...3)
        #expect(Mat3.maxAbsDifference((a * b).matrix, a.matrix * b.matrix) < 1e-5)
        #expect(isClose((a * b).rotate(v), a.rotate(b.rotate(v)), 1e-5))
        #expect(isClose(a.rotate(v), a.matrix * v, 1e-5))
        #expect(isClose(a.conjugate.rotate(a.rotate(v)), v, 1e-5))
        #expect(maxAbs((a * a.inverse).wxyz - Quat.identity.wxyz) < 1e-6)
        let m4 = Mat4.rotation(a) * Mat4.rotation(b)
        #expect(Mat4.maxAbsDifference(m4, Mat4.rotation(a * b)) < 1e-5)
    }
    // Axis-angle: +90° about +y takes +z to +x (right-handed).
    let q = Quat(axis: Vec3(0, 2, 0), angleRadians: .pi / 2)
    #expect(isClose(q.rotate(Vec3(0, 0, 1)), Vec3(1, 0, 0), 1e-6))
    #expect(abs(q.angleRadians - .pi / 2) < 1e-6)
    #expect(isClose(q.axis, Vec3(0, 1, 0), 1e-6))
    #expect(Quat(wxyz: q.wxyz) == q)
}

@Test func slerpInterpolatesAlongTheShorterArc() {
    let a = Quat.identity
    let b = Quat(axis: Vec3(0, 0, 1), angleRadians: 2)
    #expect(maxAbs(Quat.slerp(a, b, t: 0).wxyz - a.wxyz) < 1e-6)
    #expect(maxAbs(Quat.slerp(a, b, t: 1).wxyz - b.wxyz) < 1e-6)
    for t: Float in [0.25, 0.5, 0.8] {
        let q = Quat.slerp(a, b, t: t)
        #expect(abs(q.angleRadians - 2 * t) < 1e-5)
        #expect(isClose(q.axis, Vec3(0, 0, 1), 1e-5))
    }
    // −b is the same rotation; slerp must still take the 1-radian path at t = 0.5.
    let mid = Quat.slerp(a, -b, t: 0.5)
    #expect(Mat3.maxAbsDifference(mid.matrix, Quat(axis: Vec3(0, 0, 1), angleRadians: 1).matrix) < 1e-5)
    // Nearly equal inputs use the linear fallback and stay unit length.
    let c = Quat(axis: Vec3(1, 0, 0), angleRadians: 1e-4)
    #expect(abs(Quat.slerp(a, c, t: 0.5).length - 1) < 1e-6)
}

@Test func rayBoxSlabs() {
    let lo = SIMD3<Float>(-1, -1, -1), hi = SIMD3<Float>(1, 1, 1)
    // Along +z from z = −5: enters at 4, leaves at 6.
    let hit = rayBoxIntersection(origin: SIMD3(0.5, 0, -5), direction: SIMD3(0, 0, 1), lo: lo, hi: hi)
    #expect(hit.map { abs($0.near - 4) < 1e-6 && abs($0.far - 6) < 1e-6 } == true)
    // From inside the box the entry is the origin.
    #expect(rayBoxIntersection(origin: .zero, direction: normalize(SIMD3(1, 1, 0)), lo: lo, hi: hi).map { $0.near == 0 && abs($0.far - Float(2).squareRoot()) < 1e-5 } == true)
    // A ray beside the box, one pointing away, and one parallel to a slab outside it miss.
    #expect(rayBoxIntersection(origin: SIMD3(2, 0, -5), direction: SIMD3(0, 0, 1), lo: lo, hi: hi) == nil)
    #expect(rayBoxIntersection(origin: SIMD3(0, 0, -5), direction: SIMD3(0, 0, -1), lo: lo, hi: hi) == nil)
    #expect(rayBoxIntersection(origin: SIMD3(0, 1.5, -5), direction: SIMD3(0, 0, 1), lo: lo, hi: hi) == nil)
}

@Test func nearestNeighboursMatchReference() {
    var rng = RNG(seed: 9)
    // A clustered set (two blobs and a line), duplicates included.
    var points = (0..<300).map { _ in SIMD3<Float>(rng.normal(), rng.normal(), rng.normal()) * 0.2 }
    points += (0..<200).map { _ in SIMD3<Float>(2, 0, 0) + SIMD3(rng.normal(), rng.normal(), rng.normal()) * 0.05 }
    points += (0..<50).map { SIMD3<Float>(Float($0) * 0.1, 1, 0) }
    points += [points[3], points[3]]
    for k in [1, 6, 8] {
        #expect(NearestNeighbours.search(points, k: k, threads: 2) == NearestNeighboursReference.search(points, k: k))
    }
    // A cloud like a run's Gaussians (a ball inside its bounding box), many rings searched.
    let ball = (0..<3000).map { _ -> SIMD3<Float> in
        var v = SIMD3<Float>(rng.normal(), rng.normal(), rng.normal())
        v *= 0.4 * Float(Foundation.cbrt(Double(rng.nextFloat()))) / max(1e-6, (v * v).sum().squareRoot())
        return v
    }
    #expect(NearestNeighbours.search(ball, k: 8, threads: 2) == NearestNeighboursReference.search(ball, k: 8))
    // The flat table holds the same lists, k to a row; with fewer points than k, k shrinks for every row.
    let table = NearestNeighbours.table(ball, k: 8, threads: 2)
    #expect(table.k == 8 && table.count == ball.count && table.lists == NearestNeighboursReference.search(ball, k: 8))
    #expect(table[5].map { Int($0) } == NearestNeighboursReference.search(ball, k: 8)[5])
    let few = NearestNeighbours.table(Array(ball.prefix(3)), k: 8)
    #expect(few.k == 2 && few.indices.count == 6 && few.lists == NearestNeighboursReference.search(Array(ball.prefix(3)), k: 8))
    #expect(NearestNeighbours.search([SIMD3<Float>(0, 0, 0), SIMD3(1, 0, 0)], k: 5) == [[1], [0]])
    // Queries inside and far outside the set.
    let queries = (0..<80).map { _ in SIMD3<Float>(rng.normal(), rng.normal(), rng.normal()) * 2 } + [SIMD3(40, -30, 5)]
    #expect(NearestNeighbours.search(points, queries: queries, k: 4, threads: 2) == NearestNeighboursReference.search(points, queries: queries, k: 4))
    #expect(NearestNeighbours.search([SIMD3<Float>(0, 0, 0)], k: 3) == [[]])
}

@Test("ScalarMath.exp: within 3·10⁻⁷ of the float64 exponential on [−87, 0.5] (a dense grid and random points), 0 below")
func scalarExp() {
    var rng = RNG(seed: 5)
    let grid = stride(from: Float(-87), through: 0.5, by: 0.001).map { $0 }
    let random = (0..<100_000).map { _ in Float.random(in: -87...0.5, using: &rng) }
    var worst: (error: Double, x: Float) = (0, 0)
    for x in grid + random + [0, -0.0, -1e-30, 0.5, -0.34657359, 0.34657359] {
        let exact = Foundation.exp(Double(x)), got = Double(ScalarMath.exp(x))
        let error = abs(got - exact) / exact
        if error > worst.error { worst = (error, x) }
    }
    #expect(worst.error < 3e-7, "relative error \(worst.error) at \(worst.x)")
    #expect(ScalarMath.exp(-87.5) == 0 && ScalarMath.exp(-1000) == 0 && ScalarMath.exp(-.infinity) == 0)
}

@Test("ScalarMath.exp on eight lanes: each lane has the scalar's bits, on [−100, 0.5], NaN and −∞")
func scalarExpLanes() {
    var rng = RNG(seed: 7)
    var values = (0..<80_000).map { _ in Float.random(in: -100...0.5, using: &rng) }
    values += [0, -0.0, -87, -87.0001, -86.9999, 0.5, -.infinity, .nan, -1e-30, -0.34657359]
    while values.count % 8 != 0 { values.append(-1) }
    for start in stride(from: 0, to: values.count, by: 8) {
        var lanes = SIMD8<Float>()
        for k in 0..<8 { lanes[k] = values[start + k] }
        let vector = ScalarMath.exp(lanes)
        for k in 0..<8 {
            let scalar = ScalarMath.exp(values[start + k])
            #expect(vector[k].bitPattern == scalar.bitPattern, "exp(\(values[start + k])): lane \(vector[k]), scalar \(scalar)")
            if vector[k].bitPattern != scalar.bitPattern { return }
        }
    }
}

@Test("ScalarMath.expAnywhere: within 3·10⁻⁷ of the float64 exponential on [−87, 88.7], +∞ above, NaN kept, 0 far below")
func scalarExpAnywhere() {
    var rng = RNG(seed: 6)
    let grid = stride(from: Float(-87), through: 88.7, by: 0.001).map { $0 }
    let random = (0..<100_000).map { _ in Float.random(in: -87...88.7, using: &rng) }
    var worst: (error: Double, x: Float) = (0, 0)
    for x in grid + random + [0, 0.5, 1, 87.99, 88, 88.01, 88.72] {
        let exact = Foundation.exp(Double(x)), got = Double(ScalarMath.expAnywhere(x))
        let error = abs(got - exact) / exact
        if error > worst.error { worst = (error, x) }
    }
    #expect(worst.error < 3e-7, "relative error \(worst.error) at \(worst.x)")
    #expect(ScalarMath.expAnywhere(89) == .infinity && ScalarMath.expAnywhere(.infinity) == .infinity)
    #expect(ScalarMath.expAnywhere(.nan).isNaN && ScalarMath.expAnywhere(-1000) == 0)
}
