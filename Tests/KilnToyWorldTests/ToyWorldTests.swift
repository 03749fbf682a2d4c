import Foundation
import KilnCore
import KilnDistill
import KilnNN
import KilnPrior
import Testing
@testable import KilnToyWorld

@Suite("Toy world and data set")
struct ToyWorldTests {
    @Test("samples are a pure function of (seed, index); shards are identical at any thread count")
    func determinism() {
        for i in [0, 1, 17, 12345] {
            #expect(ToySample(seed: 9, index: i) == ToySample(seed: 9, index: i))
        }
        #expect(ToySample(seed: 9, index: 3) != ToySample(seed: 10, index: 3))
        let one = ToyDataset.renderShard(seed: 4, indices: 5..<13, size: 24, threads: 1)
        let two = ToyDataset.renderShard(seed: 4, indices: 5..<13, size: 24, threads: 2)
        #expect(one.images == two.images && one.records == two.records && one.views == two.views)
        #expect(one.images.allSatisfy { $0 >= 0 && $0 <= 255 && $0 == $0.rounded() })
        #expect(one.records.map(\.index) == Array(5..<13))
    }

    @Test("over many draws: every kind, colour and motion appears; elevation and τ stay in range")
    func coverage() {
        let samples = (0..<2000).map { ToySample(seed: 1, index: $0) }
        #expect(Set(samples.map(\.kind)) == Set(ToyKind.allCases))
        #expect(Set(samples.map(\.mainColor)) == Set(ToyColor.allCases))
        #expect(Set(samples.compactMap(\.motion)) == Set(ToyMotion.allCases))
        let moving = samples.filter { $0.motion != nil }
        #expect(moving.allSatisfy { $0.time != nil && (0...1).contains($0.time!) })
        #expect(samples.filter { $0.motion == nil }.allSatisfy { $0.time == nil })
        #expect(abs(Double(moving.count) / 2000 - 0.3) < 0.05)
        #expect(samples.allSatisfy { (-10...60).contains($0.elevationDegrees) && (0...360).contains($0.azimuthDegrees) })
        #expect(samples.allSatisfy { $0.namesSecondColor ? $0.secondColor != $0.mainColor : true })
    }

    @Test("caption grammar: article, colours, part, plural, verb; every word in the vocabulary")
    func captions() {
        var sample = ToySample(seed: 0, index: 0)
        sample.kind = .house
        (sample.mainColor, sample.secondColor, sample.namesMainColor, sample.namesSecondColor, sample.motion, sample.time) =
            (.blue, .yellow, true, true, nil, nil)
        #expect(sample.caption == "a blue house with a yellow roof")
        (sample.kind, sample.mainColor, sample.secondColor, sample.motion, sample.time) = (.chair, .orange, .brown, .spinning, 0.5)
        #expect(sample.caption == "an orange chair with brown legs spinning")
        (sample.kind, sample.namesMainColor, sample.namesSecondColor, sample.motion, sample.time) = (.mug, false, false, nil, nil)
        #expect(sample.caption == "a mug")
        (sample.kind, sample.namesSecondColor, sample.secondColor) = (.duck, true, .orange)
        #expect(sample.caption == "a duck with an orange beak")
        let vocabulary = Set(ToySample.vocabulary)
        for i in 0..<500 {
            let s = ToySample(seed: 2, index: i)
            let words = s.caption.split(separator: " ").map(String.init)
            #expect(words.allSatisfy(vocabulary.contains), "\(s.caption)")
            #expect(words.contains(s.kind.noun) && (words.first == "a" || words.first == "an"))
            #expect(words.contains(s.mainColor.rawValue) || !s.namesMainColor)
            #expect(s.motion.map { words.last == $0.verb } ?? true)
        }
        // The closed vocabulary the prior ships with flags anything else.
        #expect(PriorSettings(vocabulary: ToySample.vocabulary).unknownWords(in: "a red dragon with a blue hat") == ["dragon"])
    }

    @Test("every kind stands on the ground, fits the frame, and looks different from the front and the back",
          arguments: ToyKind.allCases)
    func kinds(_ kind: ToyKind) {
        let mesh = kind.mesh(main: kind.defaultColors.main, second: kind.defaultColors.second)
        #expect(mesh.validationFailure() == nil && mesh.triangleCount > 50)
        let ys = mesh.positions.map(\.y)
        #expect(abs(ys.min()!) < 0.02 && (0.6...1.5).contains(ys.max()!), "\(kind): y range \(ys.min()!)…\(ys.max()!)")
        var sample = ToySample(seed: 0, index: 0)
        (sample.kind, sample.mainColor, sample.secondColor, sample.motion, sample.time) = (kind, kind.defaultColors.main, kind.defaultColors.second, nil, nil)
        (sample.elevationDegrees, sample.distanceScale, sample.background) = (10, 1.1, SIMD3(1, 1, 1))
        func picture(_ azimuth: Float) -> Image {
            sample.azimuthDegrees = azimuth
            return sample.render(size: 48)
        }
        let front = picture(0), back = picture(180)
        // Nothing touches the border (the object is inside the frame) and the object covers a good share.
        let border = (0..<48).flatMap { [($0, 0), ($0, 47), (0, $0), (47, $0)] }
        #expect(border.allSatisfy { x, y in (0..<3).allSatisfy { abs(front.pixels[(y * 48 + x) * front.channels + $0] - 1) < 1e-3 } }, "\(kind) touches the frame")
        let covered = stride(from: 0, to: front.pixels.count, by: front.channels).filter { abs(front.pixels[$0] - 1) > 0.02 }.count
        #expect(covered > 48 * 48 / 12, "\(kind): only \(covered) pixels")
        // Front and back differ beyond a mirror image: compare the front with the mirrored back.
        var difference: Float = 0
        for y in 0..<48 {
            for x in 0..<48 {
                for c in 0..<3 { difference += abs(front.pixels[(y * 48 + x) * 3 + c] - back.pixels[(y * 48 + 47 - x) * 3 + c]) }
            }
        }
        #expect(difference / Float(48 * 48 * 3) > 0.01, "\(kind): front and back look alike (\(difference / Float(48 * 48 * 3)))")
    }

    @Test("motions: bouncing lands at τ = 0, ½, 1; spinning turns 90° at τ = ¼; growing doubles; swaying returns")
    func motions() {
        for tau: Float in [0, 0.5, 1] { #expect(abs(ToyMotion.bouncing.transform(at: tau).translation.y) < 1e-5) }
        #expect(abs(ToyMotion.bouncing.transform(at: 0.25).translation.y - 0.4) < 1e-5)
        let quarter = ToyMotion.spinning.transform(at: 0.25).linear * Vec3(0, 0, 1)
        #expect(abs(quarter.x - 1) < 1e-5 && abs(quarter.z) < 1e-5)
        #expect(abs((ToyMotion.growing.transform(at: 1).linear * Vec3(1, 0, 0)).x - 2 * (ToyMotion.growing.transform(at: 0).linear * Vec3(1, 0, 0)).x) < 1e-6)
        #expect(Mat3.maxAbsDifference(ToyMotion.swaying.transform(at: 1).linear, Mat3(diagonal: Vec3(1, 1, 1))) < 1e-5)
        var sample = ToySample(seed: 0, index: 0)
        (sample.motion, sample.time) = (.bouncing, 0.25)
        #expect(abs(sample.mesh.positions.map(\.y).min()! - 0.4) < 1e-3)
        // The contrast times of every motion (what score-prior judges time conditioning on) show
        // visibly different pictures of a car: at least 2% of the pixels change by more than 0.1.
        // (Spinning a round kind changes little: a mushroom's quarter turn changed 20 pixels of 1024.)
        for motion in ToyMotion.allCases {
            var a = ToySample(seed: 0, index: 3)
            a.kind = .car
            var b = a
            (a.motion, a.time, b.motion, b.time) = (motion, motion.contrastTimes.0, motion, motion.contrastTimes.1)
            let pa = a.render(size: 32).pixels, pb = b.render(size: 32).pixels
            let changed = stride(from: 0, to: pa.count, by: 3).filter { i in (0..<3).contains { abs(pa[i + $0] - pb[i + $0]) > 0.1 } }.count
            #expect(changed > 32 * 32 / 50, "\(motion): \(changed) pixels change")
        }
    }

    @Test("shards encode images as U8 and views as F32, and read back")
    func shardEncoding() throws {
        let shard = ToyDataset.renderShard(seed: 6, indices: 0..<3, size: 16)
        let file = try SafeTensorsFile(bytes: try ToyDataset.encode(shard, size: 16).encoded())
        #expect(try file.info("images").dtype == .u8 && file.info("images").shape == [3, 3, 16, 16])
        #expect(try file.tensor("images").values == shard.images)
        #expect(try file.tensor("views").values == shard.views)
        let lines = String(decoding: try ToyDataset.jsonLines(shard.records), as: UTF8.self).split(separator: "\n")
        #expect(try lines.map { try JSONDecoder().decode(ToyRecord.self, from: Data($0.utf8)) } == shard.records)
        var writer = SafeTensorsWriter()
        #expect(throws: SafeTensorsError.self) { try writer.add("bad", shape: [2], values: [1, 256], dtype: .u8) }
        #expect(throws: SafeTensorsError.self) { try writer.add("bad", shape: [1], values: [0.5], dtype: .u8) }
    }

    @Test("distillation cameras have the toy camera's field of view, so they frame objects as the prior saw them")
    func distillationFieldOfView() {
        #expect(ViewSettings.fovYDegrees == ToySample.fovYDegrees)
    }
}
