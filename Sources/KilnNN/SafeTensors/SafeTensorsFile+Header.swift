extension SafeTensorsFile {
    /// The validated contents of a header.
    struct Header {
        var metadata: [String: String]
        var infos: [String: TensorInfo]
        /// Byte offset of the data buffer in the file (8 + header length).
        var dataStart: Int
    }

    /// Parses and validates the header of a whole file in `buffer` (see the type's documentation
    /// for the rules, which follow the reference implementation's `read_metadata` / `validate`).
    static func parseHeader(_ buffer: UnsafeRawBufferPointer, source: String) throws -> Header {
        guard buffer.count >= 8 else { throw SafeTensorsError.fileTooShort(source: source, size: buffer.count) }
        let length = UInt64(littleEndian: buffer.loadUnaligned(as: UInt64.self))
        guard length <= UInt64(headerLimit) else {
            throw SafeTensorsError.headerTooLarge(source: source, headerLength: length, limit: headerLimit)
        }
        let headerBytes = Int(length)
        guard headerBytes <= buffer.count - 8 else {
            throw SafeTensorsError.headerBeyondFile(source: source, headerLength: length, fileSize: buffer.count)
        }
        let dataStart = 8 + headerBytes
        let bufferBytes = buffer.count - dataStart
        let text = UnsafeRawBufferPointer(rebasing: buffer[8..<dataStart])
        if text.isEmpty { throw SafeTensorsError.headerNotJSON(source: source, offset: 0, reason: "the header is empty") }
        let json: HeaderJSON.Value
        do {
            json = try HeaderJSON.parse(text)
        } catch {
            throw SafeTensorsError.headerNotJSON(source: source, offset: error.offset, reason: error.reason)
        }
        guard case .object(let members) = json else { throw SafeTensorsError.headerNotObject(source: source) }

        var metadata: [String: String] = [:]
        var sawMetadata = false
        var infos: [String: TensorInfo] = [:]
        infos.reserveCapacity(members.count)
        for member in members {
            let key = member.key, value = member.value
            if key == "__metadata__" {
                if sawMetadata { throw SafeTensorsError.duplicateKey(source: source, key: key) }
                sawMetadata = true
                metadata = try parseMetadata(value, source: source)
                continue
            }
            if infos[key] != nil { throw SafeTensorsError.duplicateKey(source: source, key: key) }
            let info = try parseEntry(key, value, source: source)
            guard info.dataOffsets.upperBound <= bufferBytes else {
                throw SafeTensorsError.invalidOffsets(
                    source: source, tensor: key,
                    reason: "data_offsets [\(info.dataOffsets.lowerBound), \(info.dataOffsets.upperBound)] end past the "
                        + "\(bufferBytes)-byte data buffer")
            }
            infos[key] = info
        }

        // The tensors must tile [0, bufferBytes): sorted by offsets, each starts where the previous
        // ended. Zero-byte tensors may share an offset with their neighbours.
        let ordered = infos.sorted {
            ($0.value.dataOffsets.lowerBound, $0.value.dataOffsets.upperBound, $0.key)
                < ($1.value.dataOffsets.lowerBound, $1.value.dataOffsets.upperBound, $1.key)
        }
        var end = 0
        var previous: String?
        for (name, info) in ordered {
            let range = info.dataOffsets
            if range.lowerBound < end, let previous {
                throw SafeTensorsError.overlappingTensors(source: source, first: previous, second: name)
            }
            if range.lowerBound > end {
                throw SafeTensorsError.gapInBuffer(source: source, start: end, end: range.lowerBound, before: name)
            }
            if !range.isEmpty || previous == nil { previous = name }
            end = max(end, range.upperBound)
        }
        if end != bufferBytes {
            throw SafeTensorsError.trailingBytes(source: source, covered: end, bufferBytes: bufferBytes)
        }
        return Header(metadata: metadata, infos: infos, dataStart: dataStart)
    }

    private static func parseMetadata(_ value: HeaderJSON.Value, source: String) throws -> [String: String] {
        switch value {
        case .null:
            return [:]  // the reference writer omits the key instead, but `None` deserialises from null
        case .object(let members):
            var out: [String: String] = [:]
            for member in members {
                let key = member.key, v = member.value
                guard case .string(let s) = v else {
                    throw SafeTensorsError.invalidMetadata(source: source, key: key, reason: "the value is \(v.kindName), not a string")
                }
                if out[key] != nil { throw SafeTensorsError.duplicateKey(source: source, key: "__metadata__.\(key)") }
                out[key] = s
            }
            return out
        default:
            throw SafeTensorsError.invalidMetadata(source: source, key: nil, reason: "it is \(value.kindName), not an object")
        }
    }

    private static func parseEntry(_ name: String, _ value: HeaderJSON.Value, source: String) throws -> TensorInfo {
        guard case .object(let fields) = value else {
            throw SafeTensorsError.invalidEntry(source: source, tensor: name, reason: "the entry is \(value.kindName), not an object")
        }
        var dtypeValue: HeaderJSON.Value?, shapeValue: HeaderJSON.Value?, offsetsValue: HeaderJSON.Value?
        for field in fields {
            let key = field.key, v = field.value
            switch key {
            case "dtype", "shape", "data_offsets":
                let seen = key == "dtype" ? dtypeValue : key == "shape" ? shapeValue : offsetsValue
                if seen != nil { throw SafeTensorsError.duplicateKey(source: source, key: "\(name).\(key)") }
                if key == "dtype" { dtypeValue = v } else if key == "shape" { shapeValue = v } else { offsetsValue = v }
            default:
                continue  // the reference implementation ignores other fields
            }
        }
        guard let dtypeValue else { throw SafeTensorsError.missingField(source: source, tensor: name, field: "dtype") }
        guard let shapeValue else { throw SafeTensorsError.missingField(source: source, tensor: name, field: "shape") }
        guard let offsetsValue else { throw SafeTensorsError.missingField(source: source, tensor: name, field: "data_offsets") }

        guard case .string(let dtypeName) = dtypeValue else {
            throw SafeTensorsError.invalidEntry(source: source, tensor: name, reason: "`dtype` is \(dtypeValue.kindName), not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unknownDType(source: source, tensor: name, dtype: dtypeName)
        }

        guard case .array(let dims) = shapeValue else {
            throw SafeTensorsError.invalidEntry(source: source, tensor: name, reason: "`shape` is \(shapeValue.kindName), not an array")
        }
        var shape: [Int] = []
        var elements = 1
        for (axis, dim) in dims.enumerated() {
            let d = try integer(dim, what: "shape dimension \(axis)", tensor: name, source: source, asShape: true)
            shape.append(d)
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            if overflow {
                throw SafeTensorsError.invalidShape(source: source, tensor: name, reason: "shape \(shape)… has more elements than Int can count")
            }
            elements = product
        }
        let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitCount)
        if overflow {
            throw SafeTensorsError.invalidShape(source: source, tensor: name, reason: "shape \(shape) of \(dtype) has more bytes than Int can count")
        }

        guard case .array(let offsets) = offsetsValue else {
            throw SafeTensorsError.invalidEntry(source: source, tensor: name, reason: "`data_offsets` is \(offsetsValue.kindName), not an array")
        }
        guard offsets.count == 2 else {
            throw SafeTensorsError.invalidOffsets(source: source, tensor: name, reason: "data_offsets has \(offsets.count) numbers, not 2 ([begin, end])")
        }
        let begin = try integer(offsets[0], what: "data_offsets begin", tensor: name, source: source, asShape: false)
        let end = try integer(offsets[1], what: "data_offsets end", tensor: name, source: source, asShape: false)
        guard begin <= end else {
            throw SafeTensorsError.invalidOffsets(source: source, tensor: name, reason: "data_offsets [\(begin), \(end)] end before they begin")
        }
        guard bits % 8 == 0, end - begin == bits / 8 else {
            throw SafeTensorsError.byteCountMismatch(source: source, tensor: name, dtype: dtype, shape: shape,
                                                     expectedBytes: (bits + 7) / 8, actualBytes: end - begin)
        }
        return TensorInfo(dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    /// A non-negative JSON integer that fits `Int`.
    private static func integer(_ value: HeaderJSON.Value, what: String, tensor: String, source: String,
                                asShape: Bool) throws -> Int {
        func fail(_ reason: String) -> SafeTensorsError {
            asShape ? .invalidShape(source: source, tensor: tensor, reason: reason)
                : .invalidOffsets(source: source, tensor: tensor, reason: reason)
        }
        guard case .number(let text) = value else { throw fail("\(what) is \(value.kindName), not an integer") }
        if text.hasPrefix("-") { throw fail("\(what) is negative (\(text))") }
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else {
            throw fail("\(what) is \(text), not an integer")
        }
        guard let v = Int(text) else { throw fail("\(what) \(text) is too large") }
        return v
    }
}
