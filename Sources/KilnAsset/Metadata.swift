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
    /// Settings as a JSON value (usually an object), so any Codable settings struct can be recorded.
    public var settings: JSONValue?

    public static let softwareName = "Kiln \(kilnVersion)"

    public init(command: String? = nil, prompt: String? = nil, seed: UInt64? = nil, settings: JSONValue? = nil) {
        self.software = Self.softwareName
        self.command = command
        self.prompt = prompt
        self.seed = seed
        self.settings = settings
    }

    /// Records an `Encodable` settings value as sorted-key JSON.
    public init(command: String? = nil, prompt: String? = nil, seed: UInt64? = nil, settings: some Encodable) {
        self.init(command: command, prompt: prompt, seed: seed, settings: JSONValue(encoding: settings))
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

/// Any JSON value, for recording settings whose type the reader does not know.
public indirect enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The JSON form of any `Encodable` value, or nil if it cannot be encoded.
    public init?(encoding value: some Encodable) {
        guard let data = try? JSONEncoder().encode(value),
              let decoded = try? JSONDecoder().decode(JSONValue.self, from: data) else { return nil }
        self = decoded
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let b = try? container.decode(Bool.self) { self = .bool(b) }
        else if let n = try? container.decode(Double.self) { self = .number(n) }
        else if let s = try? container.decode(String.self) { self = .string(s) }
        else if let a = try? container.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try container.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): try container.encode(n)
        case .string(let s): try container.encode(s)
        case .array(let a): try container.encode(a)
        case .object(let o): try container.encode(o)
        }
    }
}
