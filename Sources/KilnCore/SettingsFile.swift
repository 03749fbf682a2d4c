import Foundation

/// The one reader of Kiln's settings files (`kiln generate --config`, a run's `config.json`,
/// `kiln train-prior`'s "training" section): a `Codable` value with snake_case keys, read over its
/// defaults. Keys the file leaves out keep their defaults; a key that is not a setting, a value of
/// the wrong type and a syntax error are errors that name the file, the key (as the file spells it)
/// and its line.
public enum SettingsFile {
    /// `defaults` with the settings `data` gives, and the keys it gives ("section.field", or
    /// "field" at the top level). `optionalKeys` are settings whose default is nil (they do not
    /// appear in the encoded defaults), as dotted paths.
    public static func read<T: Codable>(_ defaults: T, from data: Data, source: String,
                                        optionalKeys: Set<String> = []) throws -> (value: T, given: Set<String>) {
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: data) } catch {
            throw SettingsError(source: source, key: nil, line: nil, problem: "is not valid JSON: \(syntaxText(error, data: data))",
                                fix: "fix the file (config.json of an earlier run shows the layout)")
        }
        guard let object = parsed as? [String: Any] else {
            throw SettingsError(source: source, key: nil, line: nil, problem: "is not a JSON object",
                                fix: "give {\"section\": {\"setting\": value}, …} as config.json of a run does")
        }
        return try decode(defaults, object, path: [], data: data, source: source, optionalKeys: optionalKeys)
    }

    /// `defaults` with the settings one section of `data` gives (`{"training": {…}, …}`; the
    /// defaults when the section is absent); the other top-level keys are left to their own
    /// readers. Keys are named "section.key".
    public static func read<T: Codable>(_ defaults: T, section: String, from data: Data, source: String,
                                        optionalKeys: Set<String> = []) throws -> (value: T, given: Set<String>) {
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            return try read(defaults, from: data, source: source, optionalKeys: optionalKeys)  // reports what is wrong with the file
        }
        guard let part = object[section] else { return (defaults, []) }
        guard let fields = part as? [String: Any] else {
            throw SettingsError(source: source, key: section, line: line(of: section, in: data), problem: "must be an object", fix: "give {\"setting\": value, …}")
        }
        return try decode(defaults, fields, path: [section], data: data, source: source, optionalKeys: optionalKeys)
    }

    /// `object` (found at `path` in `data`) laid over `defaults` and decoded; errors name the key
    /// with its path and line.
    static func decode<T: Codable>(_ defaults: T, _ object: [String: Any], path: [String], data: Data, source: String,
                                   optionalKeys: Set<String>) throws -> (value: T, given: Set<String>) {
        let reference = try JSONSerialization.jsonObject(with: encoder().encode(defaults)) as! [String: Any]
        var given = Set<String>()
        let merged = try merge(object, over: reference, path: path, given: &given, optionalKeys: optionalKeys, data: data, source: source)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return (try decoder.decode(T.self, from: JSONSerialization.data(withJSONObject: merged)), given)
        } catch let error as DecodingError {
            let (key, problem) = describe(error)
            let dotted = key.map { (path + [$0]).joined(separator: ".") }
            let fix = problem.contains("not one of") ? "use one of them" : problem.contains("missing") ? "add it" : "write a value of that type"
            throw SettingsError(source: source, key: dotted, line: dotted.flatMap { line(of: $0, in: data) }, problem: problem, fix: fix)
        }
    }

    /// Reads `url` over `defaults` (see `read(_:from:source:optionalKeys:)`).
    public static func read<T: Codable>(_ defaults: T, contentsOf url: URL, optionalKeys: Set<String> = []) throws -> (value: T, given: Set<String>) {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw SettingsError(source: url.path, key: nil, line: nil, problem: "cannot be read", fix: "check the path")
        }
        return try read(defaults, from: data, source: url.path, optionalKeys: optionalKeys)
    }

    /// Pretty, sorted, snake_case JSON: the layout `read` takes back.
    public static func encode<T: Encodable>(_ value: T) throws -> Data { try encoder().encode(value) }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return encoder
    }

    /// The file's object laid over the defaults' object, key by key, at every depth; keys that are
    /// neither in the defaults nor optional are errors listing the known ones.
    static func merge(_ object: [String: Any], over reference: [String: Any], path: [String], given: inout Set<String>,
                      optionalKeys: Set<String>, data: Data, source: String) throws -> [String: Any] {
        var merged = reference
        for (key, value) in object {
            let keyPath = path + [key], dotted = keyPath.joined(separator: ".")
            given.insert(dotted)
            guard let current = reference[key] ?? (optionalKeys.contains(dotted) ? NSNull() : nil) else {
                let prefix = path.isEmpty ? "" : path.joined(separator: ".") + "."
                let known = Set(reference.keys).union(optionalKeys.filter { $0.hasPrefix(prefix) && !$0.dropFirst(prefix.count).contains(".") }
                    .map { String($0.dropFirst(prefix.count)) })
                throw SettingsError(source: source, key: dotted, line: line(of: dotted, in: data), problem: "is not a setting",
                                    fix: "use " + known.sorted().joined(separator: ", "))
            }
            if let section = current as? [String: Any] {
                guard let fields = value as? [String: Any] else {
                    throw SettingsError(source: source, key: dotted, line: line(of: dotted, in: data), problem: "must be an object",
                                        fix: "give {\"setting\": value, …}")
                }
                merged[key] = try merge(fields, over: section, path: keyPath, given: &given, optionalKeys: optionalKeys, data: data, source: source)
            } else {
                merged[key] = value
            }
        }
        return merged
    }

    /// The dotted key a decoding error is about, and what was wrong with its value.
    public static func describe(_ error: DecodingError) -> (key: String?, problem: String) {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }.joined(separator: ".")
        }
        switch error {
        case let .typeMismatch(type, context):
            let expected = type == Int.self || type == UInt64.self ? "a whole number" : type == Bool.self ? "true or false"
                : type == String.self ? "a string" : "a number"
            return (path(context.codingPath), "has the wrong type: expected \(expected)")
        case let .valueNotFound(_, context):
            return (path(context.codingPath), "is null: give a value or leave the key out")
        case let .keyNotFound(key, context):
            return (path(context.codingPath + [key]), "is missing")
        case let .dataCorrupted(context):
            if let underlying = context.underlyingError { return (nil, syntaxText(underlying)) }
            return (path(context.codingPath), context.debugDescription)
        @unknown default:
            return (nil, "\(error)")
        }
    }

    /// The line on which a dotted key is written: each part searched for as a quoted key after the
    /// previous one (nil when not found, e.g. an array element).
    public static func line(of dottedKey: String, in data: Data) -> Int? {
        guard let text = String(data: data, encoding: .utf8) else { return nil }
        var start = text.startIndex
        for part in dottedKey.split(separator: ".") {
            guard !part.hasPrefix("["), let range = text.range(of: "\"\(part)\"", range: start..<text.endIndex) else { return nil }
            start = range.upperBound
        }
        guard start != text.startIndex else { return nil }
        return text[text.startIndex..<start].filter { $0 == "\n" }.count + 1
    }

    /// A JSON syntax error as Foundation reports it, with the line and column it names (Foundation
    /// on Linux says only "around character N"; the line is what an editor shows).
    public static func syntaxText(_ error: any Error, data: Data? = nil) -> String {
        let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
        guard let data, let range = text.range(of: #"character \d+"#, options: .regularExpression),
              let offset = Int(text[range].dropFirst("character ".count)), offset <= data.count else { return text }
        let before = data.prefix(offset)
        let line = before.filter { $0 == 0x0A }.count + 1
        let column = offset - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
        return "\(text) (line \(line), column \(column))"
    }

    /// `viewsPerStep` → `views_per_step`.
    public static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }
}

/// A settings file that cannot be used: the file, the key and its line, the problem and the fix.
public struct SettingsError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var key: String?
    public var line: Int?
    public var problem: String
    public var fix: String

    public init(source: String, key: String?, line: Int?, problem: String, fix: String) {
        (self.source, self.key, self.line, self.problem, self.fix) = (source, key, line, problem, fix)
    }

    public var description: String {
        "\(source)" + (line.map { ", line \($0)" } ?? "") + ": " + (key.map { "'\($0)' " } ?? "") + "\(problem); \(fix)"
    }
}

/// A setting with a fixed set of values (`representation`, `refine.stage`, `guidance.method`):
/// written as its name, and a name that is not one of them is an error listing them.
public protocol SettingChoice: RawRepresentable, CaseIterable, Codable, Sendable where RawValue == String {}

extension SettingChoice {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let name = try container.decode(String.self)
        guard let value = Self(rawValue: name) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "is '\(name)', not one of "
                                                   + Self.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// "gaussians or nerf"
    public static var choices: String {
        let names = allCases.map(\.rawValue)
        return names.count < 2 ? names.joined() : names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}
