import Foundation

/// transformers' string BPE, line for line: the reference `ByteLevelBPE`'s id version is tested
/// against.
enum ByteLevelBPEReference {
    /// `CLIPTokenizer.bpe(token)` split on spaces: the tokens of one byte-symbol string.
    static func bpe(_ token: String, ranks: [String: Int]) -> [String] {
        let chars = token.unicodeScalars.map { String($0) }
        var word = Array(chars.dropLast()) + [chars[chars.count - 1] + "</w>"]
        if word.count == 1 { return word }
        func rank(_ a: String, _ b: String) -> Int? { ranks[a + " " + b] }
        while true {
            var best: (Int, String, String)? = nil
            for i in 0..<(word.count - 1) {
                if let r = rank(word[i], word[i + 1]), r < (best?.0 ?? .max) { best = (r, word[i], word[i + 1]) }
            }
            guard let (_, first, second) = best else { break }
            var newWord: [String] = []
            var i = 0
            while i < word.count {
                guard let j = word[i...].firstIndex(of: first) else {
                    newWord.append(contentsOf: word[i...])
                    break
                }
                newWord.append(contentsOf: word[i..<j])
                i = j
                if word[i] == first, i < word.count - 1, word[i + 1] == second {
                    newWord.append(first + second)
                    i += 2
                } else {
                    newWord.append(word[i])
                    i += 1
                }
            }
            word = newWord
            if word.count == 1 { break }
        }
        return word
    }
}
