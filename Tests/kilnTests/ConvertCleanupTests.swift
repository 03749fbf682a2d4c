import Foundation
import Testing

/// An OBJ sphere of `rings` latitude bands and `segments` longitudes with single-vertex poles.
/// As a soup, every triangle gets its own three vertices, each nudged by under 1e-6 so that the
/// importer's exact-duplicate joining leaves them apart and only welding can join them.
private func sphereOBJ(rings: Int, segments: Int, soup: Bool) -> (text: String, triangles: Int) {
    var points: [(Double, Double, Double)] = [(0, -1, 0), (0, 1, 0)]
    for r in 1..<rings {
        let polar = Double.pi * Double(r) / Double(rings)
        for s in 0..<segments {
            let azimuth = 2 * Double.pi * Double(s) / Double(segments)
            points.append((sin(polar) * sin(azimuth), -cos(polar), sin(polar) * cos(azimuth)))
        }
    }
    func ring(_ r: Int, _ s: Int) -> Int { 2 + (r - 1) * segments + (s % segments) }
    var faces: [(Int, Int, Int)] = []
    for s in 0..<segments {
        faces.append((0, ring(1, s + 1), ring(1, s)))  // bottom cap, outward
        faces.append((1, ring(rings - 1, s), ring(rings - 1, s + 1)))  // top cap
        for r in 1..<(rings - 1) {
            let a = ring(r, s), b = ring(r, s + 1), c = ring(r + 1, s), d = ring(r + 1, s + 1)
            faces.append((a, b, d))
            faces.append((a, d, c))
        }
    }
    func v(_ p: (Double, Double, Double)) -> String { String(format: "v %.9g %.9g %.9g\n", p.0, p.1, p.2) }
    var text = ""
    if soup {
        var k = 0
        for f in faces {
            for i in [f.0, f.1, f.2] {
                k += 1
                let nudge = 1e-7 * Double(k % 11 - 5)
                text += v((points[i].0 + nudge, points[i].1 - nudge, points[i].2 + 0.5 * nudge))
            }
            text += "f \(k - 2) \(k - 1) \(k)\n"
        }
    } else {
        for p in points { text += v(p) }
        for f in faces { text += "f \(f.0 + 1) \(f.1 + 1) \(f.2 + 1)\n" }
    }
    return (text, faces.count)
}

/// `kiln inspect FILE --json` as a dictionary.
private func inspectJSON(_ path: String) throws -> [String: Any] {
    let run = try KilnRun("inspect", path, "--json")
    #expect(run.status == 0, "\(run.stderr)")
    return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any] ?? [:]
}

@Suite("kiln convert --clean and --max-faces", .serialized)
struct ConvertCleanupTests {
    @Test("--clean welds a soup, drops a degenerate triangle and a speck; --max-faces decimates")
    func cleanAndDecimate() throws {
        try withScratchFolder { folder in
            let sphere = sphereOBJ(rings: 12, segments: 24, soup: true)
            var text = sphere.text
            let base = sphere.triangles * 3
            // A speck of two triangles far away, and a zero-area triangle inside the sphere.
            text += "v 5 0 0\nv 5.01 0 0\nv 5 0.01 0\nv 5 0 0.01\n"
            text += "f \(base + 1) \(base + 2) \(base + 3)\nf \(base + 1) \(base + 3) \(base + 4)\n"
            text += "v 0 0 0\nv 0.1 0 0\nv 0.2 0 0\nf \(base + 5) \(base + 6) \(base + 7)\n"
            let input = folder.appendingPathComponent("soup.obj")
            try Data(text.utf8).write(to: input)

            let output = folder.appendingPathComponent("clean.obj").path
            let run = try KilnRun("convert", input.path, output, "--clean", "--max-faces", "200")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("cleaned: removed 1 degenerate triangle, merged "), "\(run.stdout)")
            #expect(run.stdout.contains(" vertices, removed 1 island (2 triangles); decimated \(sphere.triangles) → "), "\(run.stdout)")
            let mesh = try inspectJSON(output)
            let triangles = mesh["triangles"] as? Int ?? 0
            #expect(triangles <= 200 && triangles >= 190, "\(triangles) triangles")
            // A closed sphere: V − E + F = 2 with E = 3F/2.
            #expect(mesh["vertices"] as? Int == triangles / 2 + 2, "\(mesh)")
            let high = mesh["boundsMax"] as? [Double] ?? []
            #expect(high.count == 3 && high[0] < 1.01, "the speck at x = 5 is gone: \(high)")
        }
    }

    @Test("--max-faces alone decimates a triangle soup and leaves a small mesh alone")
    func decimateOnly() throws {
        try withScratchFolder { folder in
            let sphere = sphereOBJ(rings: 16, segments: 32, soup: true)
            let input = folder.appendingPathComponent("sphere.obj")
            try Data(sphere.text.utf8).write(to: input)
            let output = folder.appendingPathComponent("small.ply").path
            let run = try KilnRun("convert", input.path, output, "--max-faces", "100")
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("decimated \(sphere.triangles) → "), "\(run.stdout)")
            let triangles = try inspectJSON(output)["triangles"] as? Int ?? 0
            #expect(triangles <= 100 && triangles >= 90)

            let same = folder.appendingPathComponent("same.obj").path
            let kept = try KilnRun("convert", input.path, same, "--max-faces", "5000")
            #expect(kept.status == 0 && kept.stdout.contains("kept \(sphere.triangles) triangles"), "\(kept.stdout)")
        }
    }

    @Test("Bad values and splat inputs are refused, naming the flag")
    func refusals() throws {
        try withScratchFolder { folder in
            let input = folder.appendingPathComponent("in.obj")
            try Data(sphereOBJ(rings: 4, segments: 6, soup: false).text.utf8).write(to: input)
            let out = folder.appendingPathComponent("out.obj").path
            let few = try KilnRun("convert", input.path, out, "--max-faces", "3")
            #expect(few.status == 64 && few.stderr.contains("--max-faces 3"), "\(few.stderr)")
            let range = try KilnRun("convert", input.path, out, "--clean", "--min-island", "1")
            #expect(range.status == 64 && range.stderr.contains("--min-island"), "\(range.stderr)")
            let alone = try KilnRun("convert", input.path, out, "--min-island", "0.1")
            #expect(alone.status == 64 && alone.stderr.contains("--min-island") && alone.stderr.contains("--clean"), "\(alone.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out))

            let splat = folder.appendingPathComponent("cloud.splat")
            try Data(count: 64).write(to: splat)
            let clean = try KilnRun("convert", splat.path, folder.appendingPathComponent("c.ply").path, "--clean")
            #expect(clean.status == 1 && clean.stderr.contains("--clean") && clean.stderr.contains("meshes only"), "\(clean.stderr)")
            let faces = try KilnRun("convert", splat.path, folder.appendingPathComponent("c.ply").path, "--max-faces", "100")
            #expect(faces.status == 1 && faces.stderr.contains("--max-faces"), "\(faces.stderr)")
        }
    }
}
