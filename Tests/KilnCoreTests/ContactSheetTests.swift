import Testing
import KilnCore

func solid(_ w: Int, _ h: Int, _ rgb: Vec3) -> Image {
    var image = Image(width: w, height: h, channels: 3)
    for i in 0..<(w * h) {
        image.pixels[3 * i] = rgb.x; image.pixels[3 * i + 1] = rgb.y; image.pixels[3 * i + 2] = rgb.z
    }
    return image
}

func pixel(_ image: Image, _ x: Int, _ y: Int) -> Vec3 {
    Vec3(image[x, y, 0], image[x, y, 1], image[x, y, 2])
}

@Test(arguments: [
    // (count, columns, expected columns, expected rows)
    (1, nil, 1, 1), (2, nil, 2, 1), (3, nil, 2, 2), (4, nil, 2, 2), (5, nil, 3, 2),
    (9, nil, 3, 3), (10, nil, 4, 3), (5, 2, 2, 3), (5, 5, 5, 1), (3, 1, 1, 3), (2, 4, 4, 1),
] as [(Int, Int?, Int, Int)])
func sheetDimensions(count: Int, columns: Int?, expectedColumns: Int, expectedRows: Int) {
    let images = (0..<count).map { _ in solid(10, 8, Vec3(0.5, 0.5, 0.5)) }
    let sheet = Image.contactSheet(images, columns: columns, padding: 4)
    #expect(sheet.channels == 3)
    #expect(sheet.width == 4 + expectedColumns * (10 + 4))
    #expect(sheet.height == 4 + expectedRows * (8 + 4))
    let labelled = Image.contactSheet(images, columns: columns, labels: images.map { _ in "X" }, padding: 2)
    #expect(labelled.width == 2 + expectedColumns * (10 + 2))
    #expect(labelled.height == 2 + expectedRows * (8 + 7 + 4 + 2))
}

@Test func tilesLandWhereExpected() {
    let colors: [Vec3] = [Vec3(1, 0, 0), Vec3(0, 1, 0), Vec3(0, 0, 1), Vec3(1, 1, 0), Vec3(0, 1, 1)]
    var images = colors.map { solid(6, 4, $0) }
    images[3] = solid(12, 2, colors[3])  // different size: resized to 6×4
    images[4] = Image(width: 6, height: 4, channels: 4, pixels: [Float](repeating: 0, count: 96))  // transparent
    let bg = Vec3(0.2, 0.3, 0.4)
    let sheet = Image.contactSheet(images, columns: 2, padding: 3, background: bg)
    let layout = ContactSheetLayout(count: 5, tileWidth: 6, tileHeight: 4, columns: 2, padding: 3, labels: false)
    #expect(sheet.width == layout.width && sheet.height == layout.height)
    #expect(layout.tileOrigin(0) == (3, 3) && layout.tileOrigin(1) == (12, 3) && layout.tileOrigin(2) == (3, 10))
    var expected = [[Vec3]](repeating: [Vec3](repeating: bg, count: sheet.width), count: sheet.height)
    for i in 0..<5 {
        let o = layout.tileOrigin(i)
        for y in 0..<4 { for x in 0..<6 { expected[o.y + y][o.x + x] = i == 4 ? bg : colors[i] } }
    }
    var mismatches = 0
    for y in 0..<sheet.height { for x in 0..<sheet.width where maxAbs(pixel(sheet, x, y) - expected[y][x]) > 1e-6 {
        mismatches += 1
    } }
    #expect(mismatches == 0)
    // A gray image is replicated into RGB.
    let g = Image.contactSheet([Image(width: 2, height: 2, channels: 1, fill: 0.3)], padding: 1)
    #expect(pixel(g, 1, 1) == Vec3(0.3, 0.3, 0.3))
    #expect(pixel(g, 0, 0) == Vec3(1, 1, 1))
    #expect(Image.contactSheet([]).width == 0)
}

@Test func labelsDrawDarkPixelsOnlyInTheirStrips() {
    let images = (0..<5).map { i in solid(40, 20, Vec3(0.6 + 0.05 * Float(i), 0.9, 0.7)) }
    let labels = ["az 0", "az=90°", "el:-30", "Hello, world!", "?#%(x)"]
    let sheet = Image.contactSheet(images, columns: 3, labels: labels, padding: 4)
    let layout = ContactSheetLayout(count: 5, tileWidth: 40, tileHeight: 20, columns: 3, padding: 4, labels: true)
    #expect(layout.labelHeight == 11)
    #expect(sheet.width == layout.width && sheet.height == layout.height)
    func inStrip(_ x: Int, _ y: Int) -> Int? {
        (0..<5).first { i in
            let s = layout.labelStrip(i)
            return x >= s.x && x < s.x + s.width && y >= s.y && y < s.y + s.height
        }
    }
    var darkPerStrip = [Int](repeating: 0, count: 5)
    var darkOutside = 0
    for y in 0..<sheet.height { for x in 0..<sheet.width where pixel(sheet, x, y).max() < 0.3 {
        if let i = inStrip(x, y) { darkPerStrip[i] += 1 } else { darkOutside += 1 }
    } }
    #expect(darkOutside == 0)
    #expect(darkPerStrip.allSatisfy { $0 > 10 }, "\(darkPerStrip)")
    // The text starts 2 px below the tile and is 7 px tall: the strip's first and last 2 rows stay clear.
    let s0 = layout.labelStrip(0)
    for x in s0.x..<(s0.x + s0.width) {
        for y in [s0.y, s0.y + 1, s0.y + 9, s0.y + 10] { #expect(pixel(sheet, x, y) == Vec3(1, 1, 1)) }
    }
    // "Hello, world!" (13 glyphs = 77 px) is cut to the 6 glyphs that fit 40 px: nothing past x + 40.
    let s3 = layout.labelStrip(3)
    #expect(BitmapFont.width(of: "Hello,") <= 40 && BitmapFont.width(of: "Hello, ") > 40)
    var rightmostDark = 0
    for y in s3.y..<(s3.y + s3.height) { for x in s3.x..<(s3.x + s3.width) where pixel(sheet, x, y).max() < 0.3 {
        rightmostDark = max(rightmostDark, x - s3.x)
    } }
    #expect(rightmostDark < 40 && rightmostDark >= 30)
    // On a dark background the text is white.
    let dark = Image.contactSheet([solid(12, 4, Vec3(0, 0, 0))], labels: ["A"], padding: 1, background: Vec3(0, 0, 0))
    #expect(dark.pixels.contains(1))
}

@Test func fontCoversPrintableASCII() {
    var seen: [[UInt8]: Character] = [:]
    let box = BitmapFont.glyph("\u{2603}")
    for code in 32...126 {
        let ch = Character(UnicodeScalar(UInt8(code)))
        #expect(BitmapFont.hasGlyph(ch))
        let g = BitmapFont.glyph(ch)
        #expect(g.count == 7 && g.allSatisfy { $0 < 32 })
        if ("a"..."z").contains(ch) {
            #expect(g == BitmapFont.glyph(Character(ch.uppercased())))
            continue
        }
        #expect(g != box, "\(ch) renders as the unknown box")
        #expect(ch == " " || g.contains { $0 != 0 }, "\(ch) is blank")
        if let other = seen[g] { Issue.record("\(ch) and \(other) share a glyph") }
        seen[g] = ch
    }
    #expect(BitmapFont.glyph("°") != box && BitmapFont.hasGlyph("°"))
    #expect(!BitmapFont.hasGlyph("é") && BitmapFont.glyph("é") == box)
    #expect(BitmapFont.width(of: "") == 0 && BitmapFont.width(of: "AB", scale: 2) == 22)
    // An unknown character draws the box outline: 5×7 with a hollow 3×5 inside.
    var img = Image(width: 5, height: 7, channels: 1)
    img.drawText("€", x: 0, y: 0, color: [1])
    #expect(img.pixels.reduce(0, +) == 20)
    #expect(img[2, 3, 0] == 0 && img[0, 0, 0] == 1 && img[4, 6, 0] == 1)
}
