import Foundation
import KilnAsset
import KilnCore
import Testing

func splatFileError(_ bytes: [UInt8], source: String = "test.splat") -> SplatFormatError? {
    splatFormatError { try SplatFile.decode(bytes, source: source) }
}

/// One hand-written .splat record: floats little-endian, then 8 bytes.
func splatRecord(position: SIMD3<Float>, scale: SIMD3<Float>, bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    for v in [position.x, position.y, position.z, scale.x, scale.y, scale.z] {
        withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
    }
    return out + bytes
}

@Suite struct SplatFileTests {
    private func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    @Test(arguments: [0, 2])
    func roundTripWithinQuantisation(degree: Int) throws {
        let cloud = splatRandomCloud(count: 300, degree: degree, seed: 21 + UInt64(degree))
        let bytes = SplatFile.encode(cloud)
        #expect(bytes.count == 300 * 32)
        let decoded = try SplatFile.decode(bytes, source: "round.splat")
        #expect(decoded.count == 300 && decoded.shDegree == 0)
        var worst = (position: Float(0), logScale: Float(0), color: Float(0), opacity: Float(0), rotation: Float(0))
        for i in 0..<300 {
            worst.position = max(worst.position, maxAbsDifference(decoded.means[i], cloud.means[i]))
            // The file stores exp(logScale) as f32: log of it is back within a few ulps.
            worst.logScale = max(worst.logScale, maxAbsDifference(decoded.logScales[i], cloud.logScales[i]))
            let expected = clampedUnit(cloud.baseColor(i))
            worst.color = max(worst.color, maxAbsDifference(decoded.baseColor(i), expected))
            worst.opacity = max(worst.opacity, abs(sigmoid(decoded.opacityLogits[i]) - sigmoid(cloud.opacityLogits[i])))
            let q = cloud.rotations[i] / (cloud.rotations[i] * cloud.rotations[i]).sum().squareRoot()
            let r = decoded.rotations[i] / (decoded.rotations[i] * decoded.rotations[i]).sum().squareRoot()
            worst.rotation = max(worst.rotation, maxAbsDifference(q, r))
        }
        #expect(worst.position == 0, "position error \(worst.position)")
        #expect(worst.logScale <= 2e-6, "log-scale error \(worst.logScale)")
        #expect(worst.color <= 1 / 255, "colour error \(worst.color)")
        #expect(worst.opacity <= 1 / 255, "opacity error \(worst.opacity)")
        #expect(worst.rotation <= 1e-2, "rotation error \(worst.rotation)")
        // Colour and alpha bytes survive a decode → encode pass unchanged.
        let again = SplatFile.encode(decoded)
        for i in 0..<300 { #expect(again[(i * 32 + 24)..<(i * 32 + 28)] == bytes[(i * 32 + 24)..<(i * 32 + 28)]) }
    }

    @Test func recordLayout() throws {
        var cloud = GaussianCloud(shDegree: 1)
        // Gaussian 0: neutral grey (sh 0), opacity ½, identity rotation.
        cloud.append(mean: SIMD3(1, -2, 3.5), logScale: SIMD3(log(0.5), 0, log(2)), rotation: SIMD4(1, 0, 0, 0),
                     opacityLogit: 0, sh: [Float](repeating: 0, count: 12))
        // Gaussian 1: saturated colours, opaque, a 180° turn about y given unnormalised as (0, 0, 3, 0).
        var sh = [Float](repeating: 0.7, count: 12)
        sh[0] = 10; sh[1] = -10; sh[2] = (192.0 / 255 - 0.5) / GaussianCloud.shC0
        cloud.append(mean: .zero, logScale: SIMD3(-1, -1, -1), rotation: SIMD4(0, 0, 3, 0), opacityLogit: 50, sh: sh)
        let bytes = SplatFile.encode(cloud)
        #expect(bytes.count == 64)
        let floats: [Float] = bytes.withUnsafeBytes { raw in
            (0..<6).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        }
        #expect(floats == [1, -2, 3.5, exp(log(Float(0.5))), 1, exp(log(Float(2)))])
        #expect(Array(bytes[24..<32]) == [128, 128, 128, 128, 255, 128, 128, 128])
        // 0.5 + C0·f_dc = 192/255 → 192.
        #expect(Array(bytes[56..<64]) == [255, 0, 192, 255, 128, 128, 255, 128])
        let decoded = try SplatFile.decode(bytes)
        #expect(decoded.rotations[1] == SIMD4(0, 0, 127.0 / 128, 0))
        #expect(decoded.opacityLogits[1].isFinite && decoded.opacityLogits[1] > 5)
    }

    @Test func degenerateValuesStillEncode() throws {
        var cloud = GaussianCloud(shDegree: 0)
        cloud.append(mean: .zero, logScale: .zero, rotation: .zero, opacityLogit: -.infinity, sh: [.nan, 0, 0])
        let bytes = SplatFile.encode(cloud)
        #expect(Array(bytes[24..<32]) == [0, 128, 128, 0, 255, 128, 128, 128])
        let decoded = try SplatFile.decode(bytes)
        #expect(decoded.opacityLogits[0].isFinite && decoded.opacityLogits[0] < -5)
    }

    @Test func emptyFileIsEmptyCloud() throws {
        #expect(SplatFile.encode(GaussianCloud(shDegree: 3)).isEmpty)
        let decoded = try SplatFile.decode([UInt8](), source: "empty.splat")
        #expect(decoded.count == 0 && decoded.shDegree == 0)
    }

    @Test func sortedForViewersOrdersByVolumeTimesOpacity() throws {
        let cloud = splatRandomCloud(count: 200, degree: 0, seed: 31)
        let order = SplatFile.viewerOrder(cloud)
        #expect(order.sorted() == Array(0..<200))
        func key(_ i: Int) -> Double {
            let s = cloud.logScales[i]
            return exp(Double(s.x + s.y + s.z)) / (1 + exp(-Double(cloud.opacityLogits[i])))
        }
        for (a, b) in zip(order, order.dropFirst()) {
            #expect(key(a) >= key(b) * (1 - 1e-5), "\(a) before \(b)")
        }
        let sorted = SplatFile.encode(cloud, sortedForViewers: true)
        let plain = SplatFile.encode(cloud)
        for (slot, i) in order.enumerated() {
            #expect(sorted[(slot * 32)..<(slot * 32 + 32)] == plain[(i * 32)..<(i * 32 + 32)])
        }
    }

    @Test func rejectsLengthNotMultipleOf32() {
        let valid = SplatFile.encode(splatRandomCloud(count: 2, degree: 0, seed: 41))
        let error = splatFileError(Array(valid[..<33]), source: "cut.splat")
        #expect(error == .splatLengthNotMultiple(source: "cut.splat", length: 33, remainder: 1))
        let text = error?.description ?? ""
        #expect(text.contains("cut.splat") && text.contains("33") && text.contains("32"))
        #expect(splatFileError(Array(valid[..<31])) == .splatLengthNotMultiple(source: "test.splat", length: 31, remainder: 31))
    }

    @Test func rejectsNonPositiveScale() {
        let good = splatRecord(position: .zero, scale: SIMD3(1, 1, 1), bytes: [128, 128, 128, 255, 255, 128, 128, 128])
        let negative = splatRecord(position: .zero, scale: SIMD3(1, -0.25, 1), bytes: [128, 128, 128, 255, 255, 128, 128, 128])
        let zero = splatRecord(position: .zero, scale: SIMD3(1, 1, 0), bytes: [128, 128, 128, 255, 255, 128, 128, 128])
        #expect(splatFileError(good + negative) == .nonPositiveScale(source: "test.splat", index: 1, axis: 1, value: -0.25))
        #expect(splatFileError(zero) == .nonPositiveScale(source: "test.splat", index: 0, axis: 2, value: 0))
    }

    @Test func rejectsNonFinite() {
        let nanPosition = splatRecord(position: SIMD3(0, .nan, 0), scale: SIMD3(1, 1, 1), bytes: [128, 128, 128, 255, 255, 128, 128, 128])
        let infScale = splatRecord(position: .zero, scale: SIMD3(.infinity, 1, 1), bytes: [128, 128, 128, 255, 255, 128, 128, 128])
        #expect(splatFileError(nanPosition) == .nonFinite(source: "test.splat", index: 0, property: "y"))
        #expect(splatFileError(infScale + infScale) == .nonFinite(source: "test.splat", index: 0, property: "scale_0"))
    }
}

private func clampedUnit(_ v: SIMD3<Float>) -> SIMD3<Float> {
    v.replacing(with: 0, where: v .< 0).replacing(with: 1, where: v .> 1)
}

private func maxAbsDifference<V: SIMD>(_ a: V, _ b: V) -> Float where V.Scalar == Float {
    (a.indices).reduce(0) { max($0, Swift.abs(a[$1] - b[$1])) }
}
