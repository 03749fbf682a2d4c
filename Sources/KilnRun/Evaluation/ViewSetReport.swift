import Foundation
import KilnAsset
import KilnCore
import KilnEval

extension ViewSetEvaluation.Result {
    /// report.json, report.md and sheet.png (targets above held-out renders, flagged views marked).
    public func write(images: [Image], to folder: URL, command: String) throws {
        let r = report
        try writeJSON(r, to: folder.appendingPathComponent("report.json"))
        try FileIO.writeAtomically(Data(r.markdown.utf8), to: folder.appendingPathComponent("report.md"))
        let shown = min(16, images.count)
        let labels = r.views.prefix(shown).map { ($0.flags.isEmpty ? "" : "! ") + $0.name }
            + r.views.prefix(shown).map { String(format: "fit %.1f dB", $0.heldOutPSNR) }
        // Small views are enlarged (bilinear) to at least 96 pixels, so that labels fit.
        let factor = max(1, (96 + images[0].width - 1) / images[0].width)
        let tiles = (Array(images.prefix(shown)) + Array(heldOutRenders.prefix(shown))).map {
            $0.resized(width: $0.width * factor, height: $0.height * factor)
        }
        try PNG.write(Image.contactSheet(tiles, columns: min(8, shown), labels: labels),
                      to: folder.appendingPathComponent("sheet.png"), metadata: KilnMetadata(command: command, settings: ["views": "\(images.count)"]))
    }
}
