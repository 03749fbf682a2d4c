import Foundation

/// GPT-2/CLIP's reversible map between bytes and printable code points (`bytes_to_unicode`).
///
/// Bytes `!`...`~`, `¡`...`¬` and `®`...`ÿ` map to themselves; the other 68 bytes (controls, space,
/// U+0080...U+00A0, soft hyphen) map, in byte order, to U+0100, U+0101, ... so that no symbol is
/// whitespace or a control character. CLIP's vocabulary starts with these 256 symbols in the
/// order of this table (`symbolsInVocabularyOrder`), then the same 256 followed by `</w>`.
enum ByteLevel {
    /// `byteToScalar[b]`: the symbol of byte `b`.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if isPrintable(b) {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// The inverse of `byteToScalar`, indexed by code point (all symbols are below U+0144).
    static let scalarToByte: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in byteToScalar.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// Bytes in `bytes_to_unicode`'s dictionary order: the printable ranges first, then the rest.
    static let bytesInVocabularyOrder: [UInt8] =
        (0..<256).filter(isPrintable).map(UInt8.init) + (0..<256).filter { !isPrintable($0) }.map(UInt8.init)

    static func isPrintable(_ b: Int) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }

    /// The bytes a token's symbols stand for, or nil when a code point is not a byte symbol.
    static func bytes(ofToken token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.unicodeScalars.count)
        for s in token.unicodeScalars {
            guard s.value < 0x144, scalarToByte[Int(s.value)] >= 0 else { return nil }
            out.append(UInt8(scalarToByte[Int(s.value)]))
        }
        return out
    }

    /// The token string whose symbols stand for `bytes` (the inverse of `bytes(ofToken:)`).
    static func token(ofBytes bytes: some Sequence<UInt8>) -> String {
        var view = String.UnicodeScalarView()
        for b in bytes { view.append(byteToScalar[Int(b)]) }
        return String(view)
    }
}

/// Byte-level BPE with CLIP's `</w>` end-of-word marker, on token ids.
///
/// transformers' `CLIPTokenizer.bpe` works on strings: a pre-token's byte symbols, the last one
/// with `</w>` appended; then, while some adjacent pair is a merge, the pair of lowest rank is
/// merged at every occurrence, left to right. Vocabulary strings and ids are in one-to-one
/// correspondence and every merge's parts and result are in the vocabulary (checked at load), so
/// running the same loop on ids gives the same tokens without building strings;
/// `ByteLevelBPEReference.bpe` is the string version, and the tests hold the two equal.
struct ByteLevelBPE: Sendable {
    /// Rank and result of merging an adjacent id pair.
    struct Merge: Sendable {
        var rank: Int32
        var result: Int32
    }

    /// `symbolIDs[b]`: id of byte `b`'s symbol; `finalSymbolIDs[b]`: id of the symbol + `</w>`.
    let symbolIDs: [Int32]
    let finalSymbolIDs: [Int32]
    /// Keyed by `left << 32 | right`.
    let merges: [UInt64: Merge]
    /// transformers seeds its BPE cache with `<|startoftext|>` and `<|endoftext|>` mapped to
    /// themselves, so these exact pre-tokens become those vocabulary tokens (or unk) unsplit.
    let seededTokens: [[UInt8]: Int32]
    let cache = Cache()

    init(symbolIDs: [Int32], finalSymbolIDs: [Int32], merges: [UInt64: Merge], seededTokens: [[UInt8]: Int32]) {
        self.symbolIDs = symbolIDs
        self.finalSymbolIDs = finalSymbolIDs
        self.merges = merges
        self.seededTokens = seededTokens
    }

    @inlinable
    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of one pre-token (its UTF-8 bytes, not empty) to `out`, through the cache.
    func encode(_ bytes: [UInt8], into out: inout [Int]) {
        if let id = seededTokens[bytes] {
            out.append(Int(id))
            return
        }
        if bytes.count == 1 {
            out.append(Int(finalSymbolIDs[Int(bytes[0])]))
            return
        }
        if let hit = cache.lookup(bytes) {
            for id in hit { out.append(Int(id)) }
            return
        }
        let ids = uncachedEncode(bytes)
        cache.store(bytes, ids)
        for id in ids { out.append(Int(id)) }
    }

    /// The merge loop, without the cache.
    /// - Complexity: O(n · m) dictionary look-ups for n bytes and m merges applied.
    func uncachedEncode(_ bytes: [UInt8]) -> [Int32] {
        var word = bytes.map { symbolIDs[Int($0)] }
        word[word.count - 1] = finalSymbolIDs[Int(bytes[bytes.count - 1])]
        var next: [Int32] = []
        next.reserveCapacity(word.count)
        while word.count > 1 {
            // The lowest-ranked pair present (Python's `min(pairs, key=rank)`).
            var best: Merge? = nil
            var bestLeft: Int32 = 0, bestRight: Int32 = 0
            for i in 0..<(word.count - 1) {
                if let m = merges[Self.key(word[i], word[i + 1])], m.rank < (best?.rank ?? .max) {
                    best = m
                    bestLeft = word[i]
                    bestRight = word[i + 1]
                }
            }
            guard let merge = best else { break }
            // Merge every occurrence, left to right, without overlap ("a a a" -> "aa a").
            next.removeAll(keepingCapacity: true)
            var i = 0
            while i < word.count {
                if i + 1 < word.count, word[i] == bestLeft, word[i + 1] == bestRight {
                    next.append(merge.result)
                    i += 2
                } else {
                    next.append(word[i])
                    i += 1
                }
            }
            swap(&word, &next)
        }
        return word
    }

    /// Pre-token bytes → ids. transformers' cache never forgets; this one forgets everything
    /// when it reaches `capacity` entries, so that a long-running process stays bounded.
    final class Cache: @unchecked Sendable {
        // The lock guards `entries`; lookups and stores are short and never nest.
        private let lock = NSLock()
        private var entries: [[UInt8]: [Int32]] = [:]
        let capacity = 1 << 16

        func lookup(_ key: [UInt8]) -> [Int32]? {
            lock.lock()
            defer { lock.unlock() }
            return entries[key]
        }

        func store(_ key: [UInt8], _ value: [Int32]) {
            lock.lock()
            defer { lock.unlock() }
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }

        var count: Int {
            lock.lock()
            defer { lock.unlock() }
            return entries.count
        }
    }
}
