/// Where a contact sheet puts its tiles and labels.
///
/// A grid of `columns × rows` cells separated and surrounded by `padding` pixels of background.
/// Each cell is a `tileWidth × tileHeight` tile with, when labels are drawn, a `labelHeight` strip
/// directly under it (2 px gap, text `7·labelScale` px, 2 px gap). Tiles fill rows left to right,
/// top to bottom.
public struct ContactSheetLayout: Sendable, Equatable {
    public var tileWidth: Int
    public var tileHeight: Int
    public var columns: Int
    public var rows: Int
    public var padding: Int
    /// Height of the label strip under each tile; 0 without labels.
    public var labelHeight: Int

    /// The layout for `count` tiles; `columns` defaults to `⌈√count⌉`.
    public init(count: Int, tileWidth: Int, tileHeight: Int, columns: Int? = nil, padding: Int,
                labels: Bool, labelScale: Int = 1) {
        precondition(count >= 0 && padding >= 0 && labelScale >= 1, "invalid contact sheet layout")
        let cols = columns ?? Swift.max(1, Int((Double(count).squareRoot()).rounded(.up)))
        precondition(cols >= 1, "contact sheet columns must be ≥ 1, got \(cols)")
        self.tileWidth = tileWidth
        self.tileHeight = tileHeight
        self.columns = cols
        self.rows = (count + cols - 1) / cols
        self.padding = padding
        self.labelHeight = labels ? BitmapFont.glyphHeight * labelScale + 2 * ContactSheetLayout.labelGap : 0
    }

    /// Background pixels above and below the label text.
    public static let labelGap = 2

    /// The sheet width, `padding + columns · (tileWidth + padding)`.
    public var width: Int { padding + columns * (tileWidth + padding) }

    /// The sheet height, `padding + rows · (tileHeight + labelHeight + padding)`.
    public var height: Int { padding + rows * (tileHeight + labelHeight + padding) }

    /// Top-left pixel of tile `index`.
    public func tileOrigin(_ index: Int) -> (x: Int, y: Int) {
        let col = index % columns, row = index / columns
        return (padding + col * (tileWidth + padding), padding + row * (tileHeight + labelHeight + padding))
    }

    /// The label strip under tile `index`: top-left pixel and size (`tileWidth × labelHeight`).
    public func labelStrip(_ index: Int) -> (x: Int, y: Int, width: Int, height: Int) {
        let o = tileOrigin(index)
        return (o.x, o.y + tileHeight, tileWidth, labelHeight)
    }
}

extension Image {
    // MARK: Contact sheet

    /// Tiles `images` in a grid on a `background` canvas, with optional labels under the tiles.
    ///
    /// Every image is converted to RGB (gray replicated, alpha composited over `background`) and
    /// resized bilinearly to the first image's size when it differs. Labels use `BitmapFont`,
    /// black on a light background and white on a dark one, cut to the characters that fit the
    /// tile width. See `ContactSheetLayout` for the geometry.
    /// - Parameters:
    ///   - images: `[N]` images of any channel count.
    ///   - columns: grid columns; default `⌈√N⌉`.
    ///   - labels: nil, or one label per image (`[N]`).
    ///   - padding: background pixels between tiles and around the grid.
    ///   - background: RGB canvas colour.
    ///   - labelScale: integer magnification of the font.
    /// - Returns: a 3-channel image; 0×0 when `images` is empty.
    public static func contactSheet(_ images: [Image], columns: Int? = nil, labels: [String]? = nil,
                                    padding: Int = 4, background: Vec3 = Vec3(1, 1, 1),
                                    labelScale: Int = 1) -> Image {
        guard let first = images.first else { return Image(width: 0, height: 0, channels: 3) }
        if let labels {
            precondition(labels.count == images.count,
                         "contactSheet: \(labels.count) labels for \(images.count) images")
        }
        let layout = ContactSheetLayout(count: images.count, tileWidth: first.width,
                                        tileHeight: first.height, columns: columns, padding: padding,
                                        labels: labels != nil, labelScale: labelScale)
        var sheet = Image(width: layout.width, height: layout.height, channels: 3)
        sheet.pixels.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: 3) {
                p[i] = background.x; p[i + 1] = background.y; p[i + 2] = background.z
            }
        }
        let textColor: [Float] = dot(background, Image.lumaWeights) >= 0.5 ? [0, 0, 0] : [1, 1, 1]
        let fitting = (layout.tileWidth + (BitmapFont.advance - BitmapFont.glyphWidth) * labelScale)
            / (BitmapFont.advance * labelScale)  // glyphs whose full width fits in the tile
        for (i, image) in images.enumerated() {
            var tile = image.withChannels(3, background: background)
            if tile.width != layout.tileWidth || tile.height != layout.tileHeight {
                tile = tile.resized(width: layout.tileWidth, height: layout.tileHeight)
            }
            let o = layout.tileOrigin(i)
            sheet.paste(tile, atX: o.x, y: o.y)
            if let labels {
                let strip = layout.labelStrip(i)
                sheet.drawText(String(labels[i].prefix(fitting)), x: strip.x,
                               y: strip.y + ContactSheetLayout.labelGap, color: textColor, scale: labelScale)
            }
        }
        return sheet
    }
}
