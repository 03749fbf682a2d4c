import Foundation
import KilnCore

/// What a PNG, mesh or splat file holds (`kiln inspect`), as text or JSON.
public enum InspectReport: Encodable {
    case png(PNGReport), mesh(MeshReport), splat(SplatReport)

    /// Reads `url` by what it holds (a mesh is imported in an isolated process).
    public init(_ url: URL, allowOutsidePaths: Bool = false) throws {
        switch try AssetKind.of(url) {
        case .png: self = .png(PNGReport(try PNG.read(url)))
        case .splatPLY: self = .splat(SplatReport(try GaussianCloudIO.read(url, format: .ply), format: "3dgs-ply"))
        case .splatFile: self = .splat(SplatReport(try GaussianCloudIO.read(url, format: .splat), format: "splat"))
        case .mesh: self = .mesh(MeshReport(try MeshImport.read(url, allowOutsidePaths: allowOutsidePaths)))
        }
    }

    public func encode(to encoder: Encoder) throws {
        switch self {
        case .png(let r): try r.encode(to: encoder)
        case .mesh(let r): try r.encode(to: encoder)
        case .splat(let r): try r.encode(to: encoder)
        }
    }

    public var text: String {
        switch self {
        case .png(let r):
            var lines = ["  kind: PNG image", "  size: \(r.width)×\(r.height)", "  bit depth: \(r.bitDepth), colour type: \(r.colorType)\(r.interlaced ? ", interlaced" : "")"]
            lines.append("  text chunks: \(r.text.count)")
            for entry in r.text { lines.append("    \(entry.key): \(entry.value)") }
            return lines.joined(separator: "\n")
        case .mesh(let r):
            var lines = ["  kind: mesh", "  vertices: \(r.vertices), triangles: \(r.triangles)",
                         "  source meshes: \(r.sourceMeshes), nodes: \(r.nodes), materials: \(r.materials)",
                         "  attributes: \(r.attributes.joined(separator: ", "))"]
            if let b = r.boundsMin, let t = r.boundsMax { lines.append("  bounds: \(format(b)) … \(format(t))") }
            lines.append("  material: \(r.materialName), base colour \(format(r.baseColorFactor)), metallic \(r.metallic), roughness \(r.roughness)")
            if let t = r.texture { lines.append("  texture: \(t)") }
            for w in r.warnings { lines.append("  warning: \(w)") }
            return lines.joined(separator: "\n")
        case .splat(let r):
            var lines = ["  kind: Gaussian splats (\(r.format))", "  count: \(r.count), SH degree: \(r.shDegree)"]
            if let b = r.boundsMin, let t = r.boundsMax { lines.append("  bounds: \(format(b)) … \(format(t))") }
            if let o = r.opacity { lines.append("  opacity: min \(fmt(o[0])), mean \(fmt(o[1])), max \(fmt(o[2]))") }
            if let s = r.scale { lines.append("  scale: min \(fmt(s[0])), mean \(fmt(s[1])), max \(fmt(s[2]))") }
            return lines.joined(separator: "\n")
        }
    }
}

private func fmt(_ x: Float) -> String { String(format: "%.4g", Double(x)) }
private func format(_ v: [Float]) -> String { "(" + v.map(fmt).joined(separator: ", ") + ")" }

public struct PNGReport: Encodable {
    var kind = "png"
    var width: Int, height: Int, bitDepth: Int, colorType: String, interlaced: Bool
    var text: [PNGTextEntry]
    var kiln: KilnMetadata?
    init(_ png: PNGFile) {
        width = png.width; height = png.height; bitDepth = png.bitDepth
        colorType = png.colorType.description; interlaced = png.interlaced
        text = png.text; kiln = KilnMetadata(png: png)
    }
}

public struct MeshReport: Encodable {
    var kind = "mesh"
    var vertices: Int, triangles: Int, sourceMeshes: Int, nodes: Int, materials: Int
    var attributes: [String]
    var boundsMin: [Float]?, boundsMax: [Float]?
    var materialName: String, baseColorFactor: [Float], metallic: Float, roughness: Float
    var texture: String?, textureSource: String?
    var warnings: [String]
    init(_ imported: ImportedMesh) {
        let m = imported.mesh
        vertices = m.vertexCount; triangles = m.triangleCount
        sourceMeshes = imported.info.sourceMeshCount; nodes = imported.info.nodeCount; materials = imported.info.materialCount
        attributes = ["positions"] + (m.normals.isEmpty ? [] : ["normals"]) + (m.uvs.isEmpty ? [] : ["uvs"]) + (m.colors.isEmpty ? [] : ["colors"])
        if let b = m.bounds { boundsMin = [b.min.x, b.min.y, b.min.z]; boundsMax = [b.max.x, b.max.y, b.max.z] }
        materialName = m.material.name
        let c = m.material.baseColorFactor
        baseColorFactor = [c.x, c.y, c.z, c.w]
        metallic = m.material.metallicFactor; roughness = m.material.roughnessFactor
        if let t = m.material.baseColorTexture { texture = "\(t.width)×\(t.height) RGBA" }
        textureSource = imported.info.textureSource
        warnings = imported.info.warnings
    }
}

public struct SplatReport: Encodable {
    var kind = "splat"
    var format: String
    var count: Int, shDegree: Int
    var boundsMin: [Float]?, boundsMax: [Float]?
    /// min, mean, max of sigmoid(opacity logit)
    var opacity: [Float]?
    /// min, mean, max of exp(log-scale) over all axes
    var scale: [Float]?
    init(_ cloud: GaussianCloud, format: String) {
        self.format = format
        count = cloud.count; shDegree = cloud.shDegree
        if let b = cloud.bounds { boundsMin = [b.min.x, b.min.y, b.min.z]; boundsMax = [b.max.x, b.max.y, b.max.z] }
        if cloud.count > 0 {
            let o = cloud.opacityLogits.map { 1 / (1 + exp(-$0)) }
            opacity = [o.min()!, o.reduce(0, +) / Float(o.count), o.max()!]
            let s = cloud.logScales.flatMap { [exp($0.x), exp($0.y), exp($0.z)] }
            scale = [s.min()!, s.reduce(0, +) / Float(s.count), s.max()!]
        }
    }
}
