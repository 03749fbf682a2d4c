/// A built-in 5×7 pixel font for labels on debug images and contact sheets.
///
/// Covers printable ASCII (32...126) and the degree sign `°`. Lowercase letters use the uppercase
/// glyphs. Any other character is drawn as a hollow box, so missing glyphs are visible rather
/// than silently dropped. Glyphs sit in a 6-pixel advance (one column of spacing).
public enum BitmapFont {
    /// Glyph width in pixels (at scale 1).
    public static let glyphWidth = 5
    /// Glyph height in pixels (at scale 1).
    public static let glyphHeight = 7
    /// Horizontal distance between the left edges of consecutive glyphs (at scale 1).
    public static let advance = 6

    /// The glyph of `character`: 7 rows, top first, each a 5-bit mask with bit 4 the leftmost pixel.
    public static func glyph(_ character: Character) -> [UInt8] {
        if character == "°" { return degree }
        if let ascii = character.asciiValue, ascii >= 32 && ascii <= 126 {
            let upper = ascii >= 97 && ascii <= 122 ? ascii - 32 : ascii  // a–z → A–Z
            return ascii95[Int(upper) - 32]
        }
        return box
    }

    /// Whether `character` has its own glyph (rather than the box).
    public static func hasGlyph(_ character: Character) -> Bool {
        character == "°" || (character.asciiValue.map { $0 >= 32 && $0 <= 126 } ?? false)
    }

    /// Width in pixels of `text` drawn at `scale` (no trailing spacing); 0 for empty text.
    public static func width(of text: String, scale: Int = 1) -> Int {
        let n = text.count
        return n == 0 ? 0 : ((n - 1) * advance + glyphWidth) * scale
    }

    // MARK: Glyph data

    /// Rows of `#` (on) and `.` (off), separated by `|`, parsed into bit masks.
    private static func parse(_ rows: String) -> [UInt8] {
        let parts = rows.split(separator: "|")
        precondition(parts.count == glyphHeight && parts.allSatisfy { $0.count == glyphWidth },
                     "malformed glyph \(rows)")
        return parts.map { row in row.reduce(UInt8(0)) { $0 << 1 | ($1 == "#" ? 1 : 0) } }
    }

    private static let box = parse("#####|#...#|#...#|#...#|#...#|#...#|#####")
    private static let degree = parse(".##..|#..#.|#..#.|.##..|.....|.....|.....")

    /// Glyphs for ASCII 32 (space) through 126 (`~`), in code order; entries for a–z are unused.
    private static let ascii95: [[UInt8]] = {
        let table: [String] = [
            ".....|.....|.....|.....|.....|.....|.....",  // space
            "..#..|..#..|..#..|..#..|..#..|.....|..#..",  // !
            ".#.#.|.#.#.|.#.#.|.....|.....|.....|.....",  // "
            ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",  // #
            "..#..|.####|#.#..|.###.|..#.#|####.|..#..",  // $
            "##...|##..#|...#.|..#..|.#...|#..##|...##",  // %
            ".##..|#..#.|#.#..|.#...|#.#.#|#..#.|.##.#",  // &
            "..#..|..#..|..#..|.....|.....|.....|.....",  // '
            "...#.|..#..|.#...|.#...|.#...|..#..|...#.",  // (
            ".#...|..#..|...#.|...#.|...#.|..#..|.#...",  // )
            ".....|..#..|#.#.#|.###.|#.#.#|..#..|.....",  // *
            ".....|..#..|..#..|#####|..#..|..#..|.....",  // +
            ".....|.....|.....|.....|.##..|..#..|.#...",  // ,
            ".....|.....|.....|#####|.....|.....|.....",  // -
            ".....|.....|.....|.....|.....|.##..|.##..",  // .
            ".....|....#|...#.|..#..|.#...|#....|.....",  // /
            ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",  // 0
            "..#..|.##..|..#..|..#..|..#..|..#..|.###.",  // 1
            ".###.|#...#|....#|...#.|..#..|.#...|#####",  // 2
            "#####|...#.|..#..|...#.|....#|#...#|.###.",  // 3
            "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",  // 4
            "#####|#....|####.|....#|....#|#...#|.###.",  // 5
            "..##.|.#...|#....|####.|#...#|#...#|.###.",  // 6
            "#####|....#|...#.|..#..|.#...|.#...|.#...",  // 7
            ".###.|#...#|#...#|.###.|#...#|#...#|.###.",  // 8
            ".###.|#...#|#...#|.####|....#|...#.|.##..",  // 9
            ".....|.##..|.##..|.....|.##..|.##..|.....",  // :
            ".....|.##..|.##..|.....|.##..|..#..|.#...",  // ;
            "...#.|..#..|.#...|#....|.#...|..#..|...#.",  // <
            ".....|.....|#####|.....|#####|.....|.....",  // =
            ".#...|..#..|...#.|....#|...#.|..#..|.#...",  // >
            ".###.|#...#|....#|...#.|..#..|.....|..#..",  // ?
            ".###.|#...#|....#|.##.#|#.#.#|#.#.#|.###.",  // @
            ".###.|#...#|#...#|#####|#...#|#...#|#...#",  // A
            "####.|#...#|#...#|####.|#...#|#...#|####.",  // B
            ".###.|#...#|#....|#....|#....|#...#|.###.",  // C
            "###..|#..#.|#...#|#...#|#...#|#..#.|###..",  // D
            "#####|#....|#....|####.|#....|#....|#####",  // E
            "#####|#....|#....|####.|#....|#....|#....",  // F
            ".###.|#...#|#....|#.###|#...#|#...#|.####",  // G
            "#...#|#...#|#...#|#####|#...#|#...#|#...#",  // H
            ".###.|..#..|..#..|..#..|..#..|..#..|.###.",  // I
            "..###|...#.|...#.|...#.|...#.|#..#.|.##..",  // J
            "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",  // K
            "#....|#....|#....|#....|#....|#....|#####",  // L
            "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",  // M
            "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",  // N
            ".###.|#...#|#...#|#...#|#...#|#...#|.###.",  // O
            "####.|#...#|#...#|####.|#....|#....|#....",  // P
            ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",  // Q
            "####.|#...#|#...#|####.|#.#..|#..#.|#...#",  // R
            ".####|#....|#....|.###.|....#|....#|####.",  // S
            "#####|..#..|..#..|..#..|..#..|..#..|..#..",  // T
            "#...#|#...#|#...#|#...#|#...#|#...#|.###.",  // U
            "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",  // V
            "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",  // W
            "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",  // X
            "#...#|#...#|#...#|.#.#.|..#..|..#..|..#..",  // Y
            "#####|....#|...#.|..#..|.#...|#....|#####",  // Z
            ".###.|.#...|.#...|.#...|.#...|.#...|.###.",  // [
            ".....|#....|.#...|..#..|...#.|....#|.....",  // \
            ".###.|...#.|...#.|...#.|...#.|...#.|.###.",  // ]
            "..#..|.#.#.|#...#|.....|.....|.....|.....",  // ^
            ".....|.....|.....|.....|.....|.....|#####",  // _
            ".#...|..#..|...#.|.....|.....|.....|.....",  // `
        ]
        precondition(table.count == 96 - 32 + 1, "font table has \(table.count) rows below a")
        var glyphs = table.map(parse)
        glyphs += [[UInt8]](repeating: box, count: 26)  // a–z: looked up as A–Z
        glyphs += [
            "...#.|..#..|..#..|.#...|..#..|..#..|...#.",  // {
            "..#..|..#..|..#..|..#..|..#..|..#..|..#..",  // |
            ".#...|..#..|..#..|...#.|..#..|..#..|.#...",  // }
            ".....|.....|.#...|#.#.#|...#.|.....|.....",  // ~
        ].map(parse)
        return glyphs
    }()
}

extension Image {
    // MARK: Text

    /// Draws `text` with `BitmapFont`, top-left corner of the first glyph at (`x`, `y`), each font
    /// pixel a `scale × scale` block of `color` (one value per channel). Clipped to the image;
    /// only "on" pixels are written.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: [Float], scale: Int = 1) {
        precondition(scale >= 1, "drawText scale must be ≥ 1, got \(scale)")
        var penX = x
        for character in text {
            let rows = BitmapFont.glyph(character)
            for (r, bits) in rows.enumerated() where bits != 0 {
                for c in 0..<BitmapFont.glyphWidth where bits & (1 << (BitmapFont.glyphWidth - 1 - c)) != 0 {
                    fillRect(x: penX + c * scale, y: y + r * scale, width: scale, height: scale, value: color)
                }
            }
            penX += BitmapFont.advance * scale
        }
    }
}
