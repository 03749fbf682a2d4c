import Foundation

/// What Kiln records in every PNG it writes: the prompt, the seed and the settings (JSON).
///
/// Stored as UTF-8 `iTXt` chunks that any PNG text lister shows (`exiftool`, Pillow's
/// `Image.text`, `pngcheck -t`): `Software`, `prompt` and `seed` when known, and `kiln`
/// holding the whole record as JSON.
public struct KilnMetadata: Codable, Sendable, Equatable {
    public var software: String
    public var command: String?
    public var prompt: String?
    public var seed: UInt64?
    /// Settings as JSON text (an object), so any Codable settings struct can be recorded.
    public var settings: String?

    public static let softwareName = "Kiln \(kilnVersion)"

    public init(command: String? = nil, prompt: String? = nil, seed: UInt64? = nil, settings: String? = nil) {
        self.software = Self.softwareName
        self.command = command
        self.prompt = prompt
        self.seed = seed
        self.settings = settings
    }

    /// Records an `Encodable` settings value as sorted-key JSON.
    public init(command: String? = nil, prompt: String? = nil, seed: UInt64? = nil, settings: some Encodable) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = (try? encoder.encode(settings)).map { String(decoding: $0, as: UTF8.self) }
        self.init(command: command, prompt: prompt, seed: seed, settings: json)
    }

    /// The PNG text chunks for this record.
    public var textEntries: [PNGTextEntry] {
        var entries = [PNGTextEntry("Software", software)]
        if let prompt { entries.append(PNGTextEntry("prompt", prompt)) }
        if let seed { entries.append(PNGTextEntry("seed", String(seed))) }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if let json = try? encoder.encode(self) {
            entries.append(PNGTextEntry("kiln", String(decoding: json, as: UTF8.self)))
        }
        return entries
    }

    /// The record stored in a PNG's `kiln` chunk, if any.
    public init?(png: PNGFile) {
        guard let json = png.text(for: "kiln"),
              let value = try? JSONDecoder().decode(KilnMetadata.self, from: Data(json.utf8)) else { return nil }
        self = value
    }
}

/// Kiln's version, recorded in outputs.
public let kilnVersion = "0.1.0"
