/// An element type of a safetensors file, spelled as in the header (`"F32"`, `"BF16"`, …).
///
/// The cases are every dtype the reference implementation (huggingface/safetensors 0.8) knows, so
/// any file it writes parses and lists. Kiln reads the float and integer types as `Float`
/// (`isReadableAsFloat`) and writes F32, F16 and BF16 (`isWritable`); the 8-, 6- and 4-bit floats
/// and C64 are listed but refused by `SafeTensorsFile.tensor(_:)` with a hint.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Hashable, CustomStringConvertible {
    case bool = "BOOL"
    case f4 = "F4"
    case f6e2m3 = "F6_E2M3"
    case f6e3m2 = "F6_E3M2"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case f8e8m0 = "F8_E8M0"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case c64 = "C64"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    public var description: String { rawValue }

    /// Bits per element (4 for F4, 6 for the F6 types, 8 × bytes otherwise).
    public var bitCount: Int {
        switch self {
        case .f4: return 4
        case .f6e2m3, .f6e3m2: return 6
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3, .f8e8m0: return 8
        case .i16, .u16, .f16, .bf16: return 16
        case .i32, .u32, .f32: return 32
        case .c64, .f64, .i64, .u64: return 64
        }
    }

    /// Whether `SafeTensorsFile.tensor(_:)` can convert this dtype to `Float`.
    public var isReadableAsFloat: Bool {
        switch self {
        case .f4, .f6e2m3, .f6e3m2, .f8e5m2, .f8e4m3, .f8e8m0, .c64: return false
        default: return true
        }
    }

    /// Whether `SafeTensorsWriter` can store `Float` values as this dtype (U8 takes integers
    /// 0…255, such as 8-bit image samples).
    public var isWritable: Bool { self == .f32 || self == .f16 || self == .bf16 || self == .u8 }

    /// The position in the reference writer's ordering: it lays tensors out by descending rank
    /// (so wider elements come first and stay aligned), then by name.
    var writerRank: Int { Self.allCases.firstIndex(of: self)! }
}
