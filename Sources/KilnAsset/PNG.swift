import CPNG
import Foundation
import KilnCore

/// A PNG that could not be read or written: what, where and how to fix it.
public struct PNGError: Error, CustomStringConvertible, Equatable {
    public var source: String
    public var reason: String
    public var description: String { "\(source): \(reason)" }
}

/// One text chunk: a Latin-1 keyword (1–79 characters) and a UTF-8 value.
public struct PNGTextEntry: Sendable, Equatable, Codable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// A decoded PNG: pixels expanded to 16-bit RGBA with no gamma change, and its text chunks.
public struct PNGFile: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Bit depth of the file's samples: 1, 2, 4, 8 or 16.
    public var bitDepth: Int
    /// Colour type of the file.
    public var colorType: PNG.ColorType
    public var interlaced: Bool
    /// `[height, width, 4]` RGBA samples. 8-bit samples `v` are stored as `v · 257`.
    public var rgba16: [UInt16]
    /// Text chunks (tEXt, zTXt, iTXt) in file order.
    public var text: [PNGTextEntry]

    /// `[height, width, 4]` 8-bit RGBA (exact for 8-bit files, rounded down for 16-bit ones).
    public var rgba8: [UInt8] { rgba16.map { UInt8(truncatingIfNeeded: $0 >> 8) } }

    /// The first text value for `key`.
    public func text(for key: String) -> String? { text.first { $0.key == key }?.value }

    /// A float image with values in [0, 1]: `channels` 4 gives RGBA, 3 RGB, 1 the red channel
    /// (the gray value of gray files).
    public func image(channels: Int = 4) -> Image {
        precondition([1, 3, 4].contains(channels), "channels must be 1, 3 or 4")
        var image = Image(width: width, height: height, channels: channels)
        // Divide (not multiply by a reciprocal) so that 8-bit v maps to exactly Float(v) / 255.
        let wide = bitDepth == 16
        rgba16.withUnsafeBufferPointer { source in
            image.pixels.withUnsafeMutableBufferPointer { target in
                for p in 0..<(width * height) {
                    for c in 0..<channels {
                        let v = source[p * 4 + c]
                        target[p * channels + c] = wide ? Float(v) / 65535 : Float(v >> 8) / 255
                    }
                }
            }
        }
        return image
    }
}

/// PNG encoding and decoding through libpng, with UTF-8 `iTXt` metadata.
public enum PNG {
    /// PNG colour types (the IHDR values).
    public enum ColorType: Int, Sendable, Equatable, Codable, CustomStringConvertible {
        case gray = 0, rgb = 2, palette = 3, grayAlpha = 4, rgba = 6
        public var description: String {
            switch self {
            case .gray: "gray"
            case .rgb: "RGB"
            case .palette: "palette"
            case .grayAlpha: "gray+alpha"
            case .rgba: "RGBA"
            }
        }
    }

    /// Encodes raw samples. `samples` holds `[height, width, channels]` bytes for bit depth 8, or
    /// native-endian `UInt16` samples (as bytes) for bit depth 16.
    static func encode(samples: UnsafeRawBufferPointer, width: Int, height: Int, channels: Int,
                       bitDepth: Int, text: [PNGTextEntry], source: String) throws -> [UInt8] {
        guard width > 0, height > 0, width <= 1 << 16, height <= 1 << 16 else {
            throw PNGError(source: source, reason: "cannot write a \(width)×\(height) PNG: sides must be 1…65536 pixels")
        }
        let colorType: Int32
        switch channels {
        case 1: colorType = PNG_COLOR_TYPE_GRAY
        case 2: colorType = PNG_COLOR_TYPE_GRAY_ALPHA
        case 3: colorType = PNG_COLOR_TYPE_RGB
        case 4: colorType = PNG_COLOR_TYPE_RGB_ALPHA
        default: throw PNGError(source: source, reason: "cannot write \(channels) channels (1–4)")
        }
        for entry in text { try validateKey(entry.key, source: source) }
        let rowBytes = width * channels * bitDepth / 8
        precondition(samples.count >= rowBytes * height, "PNG sample buffer too small")
        var buffer = kiln_png_buffer(data: nil, size: 0, capacity: 0)
        var message = [CChar](repeating: 0, count: 256)
        // strdup'd C strings live until the encoder returns.
        let keys = text.map { strdup($0.key) }
        let values = text.map { strdup($0.value) }
        defer { keys.forEach { free($0) }; values.forEach { free($0) } }
        let ok = keys.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { keyPointers in
            values.map { UnsafePointer<CChar>($0) }.withUnsafeBufferPointer { valuePointers in
                kiln_png_encode(samples.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                png_uint_32(width), png_uint_32(height), colorType, Int32(bitDepth),
                                rowBytes, keyPointers.baseAddress, valuePointers.baseAddress,
                                Int32(text.count), &buffer, &message, message.count)
            }
        }
        guard ok == 1, let data = buffer.data else {
            throw PNGError(source: source, reason: "libpng could not encode: \(cString(message))")
        }
        defer { free(data) }
        return [UInt8](UnsafeBufferPointer(start: data, count: buffer.size))
    }

    /// The text of a NUL-terminated C buffer.
    static func cString(_ buffer: [CChar]) -> String {
        String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// PNG keywords are 1–79 printable Latin-1 characters without leading, trailing or double spaces.
    static func validateKey(_ key: String, source: String) throws {
        let scalars = key.unicodeScalars
        let printable = scalars.allSatisfy { (0x20...0x7E).contains($0.value) || (0xA1...0xFF).contains($0.value) }
        guard (1...79).contains(scalars.count), printable, !key.hasPrefix(" "), !key.hasSuffix(" "),
              !key.contains("  ") else {
            throw PNGError(source: source, reason: "invalid PNG text keyword \"\(key)\": use 1–79 printable Latin-1 characters")
        }
    }

    /// Encodes an image as 8-bit PNG (gray, gray+alpha, RGB or RGBA by its channel count).
    /// Values are clamped to [0, 1] and rounded; NaN is an error naming the first bad pixel.
    public static func encode(_ image: Image, text: [PNGTextEntry] = [], source: String = "<memory>") throws -> [UInt8] {
        try checkFinite(image, source: source)
        let bytes = image.pixels.map { UInt8((min(max($0, 0), 1) * 255).rounded()) }
        return try bytes.withUnsafeBytes {
            try encode(samples: $0, width: image.width, height: image.height, channels: image.channels,
                       bitDepth: 8, text: text, source: source)
        }
    }

    /// Encodes 16-bit grayscale samples (`[height, width]`, e.g. a depth map quantised by the caller).
    public static func encodeGray16(_ samples: [UInt16], width: Int, height: Int, text: [PNGTextEntry] = [],
                                    source: String = "<memory>") throws -> [UInt8] {
        precondition(samples.count == width * height, "gray16 sample count must be width × height")
        return try samples.withUnsafeBytes {
            try encode(samples: $0, width: width, height: height, channels: 1, bitDepth: 16, text: text, source: source)
        }
    }

    static func checkFinite(_ image: Image, source: String) throws {
        if let i = image.pixels.firstIndex(where: { !$0.isFinite }) {
            let p = i / image.channels
            throw PNGError(source: source, reason: "pixel (\(p % max(image.width, 1)), \(p / max(image.width, 1))) channel \(i % image.channels) is \(image.pixels[i]): the image holds NaN or Inf")
        }
    }

    /// Decodes a PNG held in memory.
    public static func decode(_ bytes: [UInt8], source: String = "<memory>") throws -> PNGFile {
        var decoded = kiln_png_decoded()
        var message = [CChar](repeating: 0, count: 256)
        let ok = bytes.withUnsafeBufferPointer { buffer in
            kiln_png_decode(buffer.baseAddress, buffer.count, &decoded, &message, message.count)
        }
        guard ok == 1 else {
            var reason = cString(message)
            if reason.hasPrefix("not a PNG") { reason += ": the file is not a PNG image" }
            else if reason.hasPrefix("truncated") { reason += ": re-export or replace the file" }
            else { reason = "corrupt or truncated PNG (\(reason)): re-export or replace the file" }
            throw PNGError(source: source, reason: reason)
        }
        defer { free(decoded.rgba16); free(decoded.text) }
        let width = Int(decoded.width), height = Int(decoded.height)
        let samples = [UInt16](UnsafeBufferPointer(start: decoded.rgba16, count: width * height * 4))
        var text: [PNGTextEntry] = []
        if let raw = decoded.text {
            let all = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: decoded.textBytes)
            let parts = all.split(separator: 0, omittingEmptySubsequences: false)
            for i in 0..<Int(decoded.textCount) where 2 * i + 1 < parts.count {
                text.append(PNGTextEntry(String(decoding: parts[2 * i], as: UTF8.self),
                                         String(decoding: parts[2 * i + 1], as: UTF8.self)))
            }
        }
        return PNGFile(width: width, height: height, bitDepth: Int(decoded.bitDepth),
                       colorType: ColorType(rawValue: Int(decoded.colorType)) ?? .rgba,
                       interlaced: decoded.interlaced != 0, rgba16: samples, text: text)
    }

    // MARK: - Files

    /// Reads and decodes a PNG file.
    public static func read(_ url: URL) throws -> PNGFile {
        try decode(FileIO.read(url, limit: 1 << 31), source: url.path)
    }

    /// Writes an image as an 8-bit PNG atomically. Every PNG Kiln writes to disk says what made it: `metadata`'s command, prompt, seed and
    /// settings go into its text chunks (`KilnMetadata.textEntries`).
    public static func write(_ image: Image, to url: URL, metadata: KilnMetadata) throws {
        try FileIO.writeAtomically(encode(image, text: metadata.textEntries, source: url.path), to: url)
    }

    /// Writes 16-bit grayscale samples as a PNG atomically, with text metadata.
    public static func writeGray16(_ samples: [UInt16], width: Int, height: Int, to url: URL,
                                   metadata: KilnMetadata, extraText: [PNGTextEntry] = []) throws {
        try FileIO.writeAtomically(encodeGray16(samples, width: width, height: height, text: metadata.textEntries + extraText, source: url.path), to: url)
    }
}
