/// Why a splat file (INRIA 3DGS `.ply` or antimatter15 `.splat`) could not be read.
///
/// Every case carries `source`, the file name or `"<memory>"`, and its description says what is
/// wrong, where, and how to fix it when there is a fix.
public enum SplatFormatError: Error, CustomStringConvertible, Equatable, Sendable {
    // MARK: PLY header

    /// The file does not start with the `ply` magic line.
    case notPLY(source: String)
    /// No `end_header` line in the first `searchedBytes` bytes (the file ends there when
    /// `searchedBytes < limitBytes`).
    case missingEndHeader(source: String, searchedBytes: Int, limitBytes: Int)
    /// A header line that is not valid PLY; `line` is 1-based.
    case malformedHeader(source: String, line: Int, text: String, reason: String)
    /// `format ascii` or `format binary_big_endian`: Kiln reads binary_little_endian only.
    case unsupportedPLYFormat(source: String, format: String)
    /// The header declares no `vertex` element.
    case missingVertexElement(source: String)
    /// A property the 3DGS layout needs is not declared on the vertex element.
    case missingProperty(source: String, name: String)
    /// A needed property has a type Kiln cannot read as a float (e.g. `uchar x`, or a list).
    case unsupportedPropertyType(source: String, name: String, type: String)
    /// The number of `f_rest_*` properties is not 0, 9, 24 or 45 (SH degree 0...3).
    case unsupportedSHCount(source: String, restCount: Int)
    /// An element count that does not fit the byte arithmetic (beyond any file size).
    case countOutOfRange(source: String, element: String, count: String)

    // MARK: Body

    /// The header promises more data than the file holds; `expectedBytes` is a lower bound.
    case truncated(source: String, expectedBytes: Int, actualBytes: Int)
    /// Bytes left after every declared element has been read.
    case trailingBytes(source: String, expectedBytes: Int, actualBytes: Int)
    /// A list property of a skipped element has a negative length.
    case invalidListLength(source: String, element: String, property: String, row: Int, length: Int64)
    /// A NaN or infinite value (or a double beyond the float range) at Gaussian `index`.
    case nonFinite(source: String, index: Int, property: String)

    // MARK: .splat

    /// A `.splat` file whose length is not a multiple of 32 bytes.
    case splatLengthNotMultiple(source: String, length: Int, remainder: Int)
    /// A `.splat` scale that is zero or negative, so it has no logarithm.
    case nonPositiveScale(source: String, index: Int, axis: Int, value: Float)

    public var source: String {
        switch self {
        case .notPLY(let s), .missingEndHeader(let s, _, _), .malformedHeader(let s, _, _, _),
             .unsupportedPLYFormat(let s, _), .missingVertexElement(let s), .missingProperty(let s, _),
             .unsupportedPropertyType(let s, _, _), .unsupportedSHCount(let s, _),
             .countOutOfRange(let s, _, _), .truncated(let s, _, _), .trailingBytes(let s, _, _),
             .invalidListLength(let s, _, _, _, _), .nonFinite(let s, _, _),
             .splatLengthNotMultiple(let s, _, _), .nonPositiveScale(let s, _, _, _):
            return s
        }
    }

    public var description: String {
        let reexport = "the file may be truncated or corrupt: re-export it"
        switch self {
        case .notPLY(let s):
            return "\(s): not a PLY file (it does not start with the line `ply`); "
                + "Kiln reads binary_little_endian 3DGS PLY files and antimatter15 .splat files"
        case .missingEndHeader(let s, let searched, let limit):
            if searched < limit {
                return "\(s): the file ends after \(searched) bytes, inside the PLY header "
                    + "(no `end_header` line); \(reexport)"
            }
            return "\(s): no `end_header` line in the first \(limit) bytes; "
                + "this is not a 3DGS PLY header or the header is corrupt"
        case .malformedHeader(let s, let line, let text, let reason):
            return "\(s): PLY header line \(line) `\(text)`: \(reason)"
        case .unsupportedPLYFormat(let s, let format):
            return "\(s): PLY format is `\(format)`, but Kiln reads binary_little_endian 3DGS PLYs; "
                + "convert it to binary_little_endian 1.0 (e.g. with SuperSplat, splat-transform or plyfile)"
        case .missingVertexElement(let s):
            return "\(s): the PLY header declares no `element vertex`; export the splats as a 3DGS PLY"
        case .missingProperty(let s, let name):
            return "\(s): the vertex element has no property `\(name)`; a 3DGS PLY needs "
                + "x y z f_dc_0..2 [f_rest_*] opacity scale_0..2 rot_0..3 (compressed PLYs must be "
                + "decompressed first)"
        case .unsupportedPropertyType(let s, let name, let type):
            return "\(s): vertex property `\(name)` has type `\(type)`; Kiln needs float or double "
                + "for the 3DGS properties"
        case .unsupportedSHCount(let s, let count):
            return "\(s): found \(count) f_rest_* properties; a 3DGS PLY has 0, 9, 24 or 45 "
                + "(SH degree 0, 1, 2 or 3)"
        case .countOutOfRange(let s, let element, let count):
            return "\(s): element `\(element)` declares \(count) rows, more than any file can hold; "
                + "the header is corrupt"
        case .truncated(let s, let expected, let actual):
            return "\(s): the header promises at least \(expected) bytes but the file has \(actual); "
                + reexport
        case .trailingBytes(let s, let expected, let actual):
            return "\(s): the declared elements end at byte \(expected) but the file has \(actual) "
                + "bytes (\(actual - expected) extra); the vertex count does not match the data, re-export it"
        case .invalidListLength(let s, let element, let property, let row, let length):
            return "\(s): element `\(element)` row \(row) list `\(property)` has length \(length); "
                + reexport
        case .nonFinite(let s, let index, let property):
            return "\(s): Gaussian \(index) has a NaN or infinite `\(property)`; "
                + "the splats diverged or the file is corrupt: re-export a finite cloud"
        case .splatLengthNotMultiple(let s, let length, let remainder):
            return "\(s): .splat length \(length) bytes is not a multiple of 32 (\(remainder) bytes "
                + "left over); \(reexport)"
        case .nonPositiveScale(let s, let index, let axis, let value):
            return "\(s): splat \(index) has scale_\(axis) = \(value); .splat scales must be > 0 "
                + "(they are stored exponentiated); the file is corrupt, re-export it"
        }
    }
}
