import Foundation
import KilnCore
import KilnNN
import KilnPrior

/// `kiln-bench unet --folder DIR [--threads N] [--runs N] [--batches 1,4] [--json]`: loads
/// `DIR/unet` and the inputs and diffusers outputs in `DIR/io.safetensors` (written by
/// `tools/bench_unet_torch.py`), checks Kiln's output against them and times the forward pass.
func benchUNet(arguments: [String]) {
    func value(_ flag: String) -> String? { optionValue(flag, in: arguments) }
    guard let folderPath = value("--folder") else {
        print("usage: kiln-bench unet --folder DIR [--threads N] [--runs N] [--batches 1,4] [--json]")
        exit(2)
    }
    let folder = URL(fileURLWithPath: folderPath)
    let threads = Int(value("--threads") ?? "2") ?? 2
    let runs = Int(value("--runs") ?? "7") ?? 7
    let batches = (value("--batches") ?? "1,4").split(separator: ",").compactMap { Int($0) }
    let json = arguments.contains("--json")
    BLAS.setThreadCount(threads)
    Memory.retainFreedMemory()
    do {
        let unet = try UNet2DConditionModel(folder: folder.appendingPathComponent("unet"))
        let io = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("io.safetensors"))
        func tensor(_ name: String) throws -> Tensor {
            let (shape, values) = try io.tensor(name)
            return Tensor(shape: shape, storage: values)
        }
        var results: [String: [String: Double]] = [:]
        if !json {
            print("UNet forward, \(unet.parameterCount) parameters, \(threads) threads, best of \(runs) runs, \(BLAS.configuration)")
            print("| batch | ms | max rel. error vs diffusers |")
            print("| ---: | ---: | ---: |")
        }
        for batch in batches {
            let sample = try tensor("b\(batch).sample")
            let t = try tensor("b\(batch).timestep").storage
            let context = try tensor("b\(batch).encoder_hidden_states")
            let labels = io.contains("b\(batch).class_labels") ? try tensor("b\(batch).class_labels") : nil
            let (_, expected) = try io.tensor("b\(batch).output")
            var output = Tensor.zeros([1])
            let ms = bestMilliseconds(runs: runs) { output = unet.forward(sample, timesteps: t, encoderHiddenStates: context, classLabels: labels) }
            let scale = expected.map(abs).max()!
            let error = Double(zip(output.storage, expected).map { abs($0 - $1) }.max()! / scale)
            results["\(batch)"] = ["ms": ms, "max_relative_error": error]
            if !json { print(String(format: "| %d | %.1f | %.1e |", batch, ms, error)) }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["parameters": unet.parameterCount, "batches": results, "blas": BLAS.configuration] as [String: Any], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
    } catch {
        FileHandle.standardError.write(Data("kiln-bench unet: \(error)\n".utf8))
        exit(1)
    }
}
