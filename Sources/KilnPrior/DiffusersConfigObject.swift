import Foundation

/// A diffusers model's `config.json` as Kiln's config types read it (`UNetConfig`,
/// `AutoencoderKLConfig`): the JSON object, the file it came from, and readers whose every error
/// is a `PriorConfigError` naming the file and the key.
struct DiffusersConfigObject {
    let object: [String: ConfigValue]
    /// The file, for errors.
    let source: String

    /// Parses `data` as a JSON object and checks `_class_name` (when present) is `className`.
    /// - Parameter model: what the file describes, in errors ("UNet", "VAE").
    init(json data: Data, source: String, className: String, model: String) throws {
        self.source = source
        guard case .object(let object)? = try? JSONDecoder().decode(ConfigValue.self, from: data) else {
            throw PriorConfigError(source: source, key: nil, problem: "is not a JSON object", fix: "write the \(model)'s config.json as diffusers saves it")
        }
        self.object = object
        if let name = object["_class_name"], name.text != className {
            throw fail("_class_name", "is \(name.text)", "point Kiln at a \(className)")
        }
    }

    subscript(key: String) -> ConfigValue? { object[key] }

    func fail(_ key: String?, _ problem: String, _ fix: String) -> PriorConfigError {
        PriorConfigError(source: source, key: key, problem: problem, fix: fix)
    }

    /// Checks that every key is read, ignored, or has one of the values Kiln implements.
    func checkKeys(read: Set<String>, ignored: Set<String>, required: [String: (allowed: [String], fix: String)], className: String) throws {
        for key in object.keys.sorted() where !read.contains(key) && !ignored.contains(key) {
            guard let rule = required[key] else {
                throw fail(key, "is not a \(className) field Kiln understands", "remove it, or convert the model to a supported configuration")
            }
            let value = object[key]!.text
            guard rule.allowed.contains(value) else {
                throw fail(key, "is \(value); Kiln supports \(rule.allowed.joined(separator: " or "))", rule.fix)
            }
        }
    }

    /// The integer at `key`; `value` when absent or null.
    func int(_ key: String, default value: Int) throws -> Int {
        switch object[key] {
        case nil, .null?: return value
        case .int(let v)?: return v
        case let v?: throw fail(key, "is \(v.text), not an integer", "set \(key) as in the weights' original config")
        }
    }

    /// The number at `key`; `value` when absent or null.
    func number(_ key: String, default value: Double) throws -> Double {
        switch object[key] {
        case nil, .null?: return value
        case .int(let v)?: return Double(v)
        case .double(let v)?: return v
        case let v?: throw fail(key, "is \(v.text), not a number", "write a number")
        }
    }

    /// The boolean at `key`; `value` when absent or null.
    func bool(_ key: String, default value: Bool) throws -> Bool {
        switch object[key] {
        case nil, .null?: return value
        case .bool(let v)?: return v
        case let v?: throw fail(key, "is \(v.text), not true or false", "write true or false")
        }
    }

    /// The non-empty list of integers at `key` (`block_out_channels`).
    func ints(_ key: String, fix: String) throws -> [Int] {
        guard case .array(let items)? = object[key], !items.isEmpty else {
            throw fail(key, "must be a non-empty list of integers", fix)
        }
        return try items.map {
            guard case .int(let v) = $0 else { throw fail(key, "holds \($0.text)", "list integers") }
            return v
        }
    }
}
