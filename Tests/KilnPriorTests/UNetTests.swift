import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("UNet2DConditionModel")
struct UNetTests {
    static let pipelines = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines")

    /// Max |Δ| over max |expected|.
    static func relativeError(_ actual: Tensor, _ expected: [Float]) -> Float {
        let scale = expected.map(abs).max()!
        return zip(actual.storage, expected).map { abs($0 - $1) }.max()! / scale
    }

    @Test("matches diffusers on the golden inputs (tools/make_prior_goldens.py)", arguments: ["tiny", "sd15like"])
    func parity(pipeline: String) throws {
        let folder = Self.pipelines.appendingPathComponent(pipeline)
        let unet = try UNet2DConditionModel(folder: folder.appendingPathComponent("unet"))
        let goldens = try SafeTensorsFile(contentsOf: folder.appendingPathComponent("goldens.safetensors"))
        func tensor(_ name: String) throws -> Tensor {
            let (shape, values) = try goldens.tensor(name)
            return Tensor(shape: shape, storage: values)
        }
        let labels = goldens.contains("unet.class_labels") ? try tensor("unet.class_labels") : nil
        #expect((labels != nil) == (unet.config.projectionClassInputDim != nil))
        let output = unet.forward(try tensor("unet.sample"), timesteps: try tensor("unet.timestep").storage,
                                  encoderHiddenStates: try tensor("unet.encoder_hidden_states"), classLabels: labels)
        let (shape, expected) = try goldens.tensor("unet.output")
        #expect(output.shape == shape)
        let error = Self.relativeError(output, expected)
        #expect(error <= 1e-4, "\(pipeline): max relative error \(error)")
    }
}
