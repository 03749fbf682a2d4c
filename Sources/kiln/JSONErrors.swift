import Foundation

/// A `DecodingError` as a person reads it: the setting's path as config.json spells it and what
/// was wrong with its value.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        keys.map { key in key.intValue.map { "[\($0)]" } ?? snakeCase(key.stringValue) }.joined(separator: ".")
    }
    switch error {
    case let .typeMismatch(type, context):
        return "'\(path(context.codingPath))' has the wrong type: expected \(type == Int.self || type == UInt64.self ? "a whole number" : type == Bool.self ? "true or false" : type == String.self ? "a string" : "a number")"
    case let .valueNotFound(_, context):
        return "'\(path(context.codingPath))' is null: give a value or leave the key out"
    case let .keyNotFound(key, context):
        return "'\(path(context.codingPath + [key]))' is missing"
    case let .dataCorrupted(context):
        if let underlying = context.underlyingError { return jsonSyntaxText(underlying) }
        return "'\(path(context.codingPath))': \(context.debugDescription)"
    @unknown default:
        return "\(error)"
    }
}

/// A JSON syntax error as Foundation reports it, with the line and column it names (Foundation on
/// Linux says only "around character N"; the line is what an editor shows).
func jsonSyntaxText(_ error: any Error, data: Data? = nil) -> String {
    let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
    guard let data, let range = text.range(of: #"character \d+"#, options: .regularExpression),
          let offset = Int(text[range].dropFirst("character ".count)), offset <= data.count else { return text }
    let before = data.prefix(offset)
    let line = before.filter { $0 == 0x0A }.count + 1
    let column = offset - (before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0) + 1
    return "\(text) (line \(line), column \(column))"
}

/// `viewsPerStep` → `views_per_step`.
func snakeCase(_ name: String) -> String {
    var out = ""
    for c in name {
        if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
    }
    return out
}
