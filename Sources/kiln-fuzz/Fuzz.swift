// Fuzz target for Kiln's own file readers: 3DGS PLY, .splat and PNG.
//
// Fuzzing build (libFuzzer + AddressSanitizer), then run:
//   swift build --scratch-path .build-fuzz --product kiln-fuzz \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -DKILN_FUZZ
//   .build-fuzz/debug/kiln-fuzz CORPUS_DIR -max_total_time=600
// `tools/fuzz.sh` does both and seeds the corpus. An ordinary build replays files given as
// arguments (for example crash reproducers) through the same entry point.
import Foundation
import KilnAsset

/// Every reader must return or throw on any input: a trap, overflow or sanitizer report is a bug.
@_cdecl("LLVMFuzzerTestOneInput")
public func kilnFuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = size > 0 ? Array(UnsafeBufferPointer(start: data, count: size)) : []
    _ = try? SplatPLY.decode(bytes, source: "fuzz")
    _ = try? SplatFile.decode(bytes, source: "fuzz")
    if let png = try? PNG.decode(bytes, source: "fuzz") {
        _ = png.image(channels: 3)
        _ = KilnMetadata(png: png)
    }
    return 0
}

#if KILN_FUZZ
typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: FuzzCallback) -> Int32
#endif

@main
struct KilnFuzz {
    static func main() {
        #if KILN_FUZZ
        // SwiftPM's executable `main` is this function, so libFuzzer is started through its driver API.
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, kilnFuzzOne))
        #else
        var count = 0
        for path in CommandLine.arguments.dropFirst() {
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
                FileHandle.standardError.write(Data("kiln-fuzz: \(path) does not exist\n".utf8))
                exit(1)
            }
            let files = isFolder.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted().map { "\(path)/\($0)" }
                : [path]
            for file in files {
                guard let bytes = try? FileIO.read(URL(fileURLWithPath: file)) else { continue }
                _ = bytes.withUnsafeBufferPointer { kilnFuzzOne($0.baseAddress, $0.count) }
                count += 1
            }
        }
        print("kiln-fuzz: replayed \(count) inputs without a failure")
        #endif
    }
}
