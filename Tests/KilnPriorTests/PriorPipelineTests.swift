import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("Prior pipeline: text to image")
struct PriorPipelineTests {
    static let tiny = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/pipelines/tiny")

    @Test("the DDIM + guidance loop matches diffusers' from the same noise (tools/make_prior_goldens.py)")
    func samplingParity() throws {
        let pipeline = try PriorPipeline(folder: Self.tiny)
        #expect(pipeline.hasViewConditioning && pipeline.imageSize == (16, 16))
        let goldens = try SafeTensorsFile(contentsOf: Self.tiny.appendingPathComponent("goldens.safetensors"))
        let (noiseShape, noise) = try goldens.tensor("sample.initial_noise")
        let (_, expected) = try goldens.tensor("sample.output")
        // SAMPLE in the script.
        let request = SampleRequest(prompt: "a red snowman", count: 2, steps: 4, guidanceScale: 5,
                                    view: ViewConditioning(azimuthDegrees: 30, elevationDegrees: 15))
        var steps: [Int] = []
        let x = try pipeline.sample(request, initialNoise: Tensor(shape: noiseShape, storage: noise)) { i, _ in steps.append(i) }
        #expect(steps == [1, 2, 3, 4])
        let scale = expected.map(abs).max()!
        let error = zip(x.storage, expected).map { abs($0 - $1) }.max()! / scale
        #expect(error < 1e-4, "max relative error \(error)")
    }

    @Test("samples are reproducible from the seed and differ between seeds and views")
    func determinism() throws {
        let pipeline = try PriorPipeline(folder: Self.tiny)
        let request = SampleRequest(prompt: "a red snowman", count: 2, steps: 2, guidanceScale: 3, seed: 5)
        let a = try pipeline.sample(request), b = try pipeline.sample(request)
        #expect(a == b && a.shape == [2, 3, 16, 16] && a.isFinite)
        var other = request
        other.seed = 6
        #expect(try pipeline.sample(other) != a)
        other = request
        other.view = ViewConditioning(azimuthDegrees: 180, elevationDegrees: 15)
        #expect(try pipeline.sample(other) != a)
        // Guidance 1 runs the conditional model alone; the images are in [0, 1].
        other = request
        other.guidanceScale = 1
        let images = PriorPipeline.images(try pipeline.sample(other))
        #expect(images.count == 2 && images.allSatisfy { $0.width == 16 && $0.pixels.allSatisfy { (0...1).contains($0) } })
    }

    @Test("the view vector: sin/cos of azimuth and elevation, then time features")
    func viewVector() {
        let still = ViewConditioning(azimuthDegrees: 90, elevationDegrees: 0).vector
        #expect(still.count == ViewConditioning.length)
        #expect(abs(still[0] - 1) < 1e-6 && abs(still[1]) < 1e-6 && abs(still[2]) < 1e-6 && abs(still[3] - 1) < 1e-6)
        #expect(Array(still[4...]) == [0, 0, 0, 0])
        let moving = ViewConditioning(azimuthDegrees: 0, elevationDegrees: 30, time: 0.25).vector
        #expect(abs(moving[2] - 0.5) < 1e-6 && moving[4] == 0.25 && abs(moving[5] - 1) < 1e-6 && abs(moving[6]) < 1e-6 && moving[7] == 1)
    }

    @Test("a closed vocabulary reports the words it does not know")
    func vocabulary() throws {
        let settings = try PriorSettings(json: Data(#"{"conditioning": "view-v1", "vocabulary": ["a", "Red", "snowman", "blue"]}"#.utf8), source: "k.json")
        #expect(settings.unknownWords(in: "A red snowman") == [])
        #expect(settings.unknownWords(in: "a purple snowman, purple hat!") == ["purple", "hat"])
        #expect(PriorSettings().unknownWords(in: "anything at all") == [])
        for (body, key) in [(#"{"colour": 1}"#, "colour"), (#"{"conditioning": "camera-v9"}"#, "conditioning"), (#"{"vocabulary": [1]}"#, "vocabulary")] {
            #expect { try PriorSettings(json: Data(body.utf8), source: "k.json") } throws: { ($0 as? PriorConfigError)?.key == key }
        }
    }

    @Test("broken pipeline folders are refused, naming the problem")
    func badFolders() throws {
        let temp = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-pipeline-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: temp) }
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("is not a folder") }
        try FileManager.default.copyItem(at: Self.tiny, to: temp)
        let index = temp.appendingPathComponent("model_index.json")
        try Data(#"{"_class_name": "StableDiffusionPipeline", "vae": ["diffusers", "AutoencoderKL"]}"#.utf8).write(to: index)
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("vae/config.json") }
        try Data(#"{"_class_name": "StableDiffusionXLPipeline"}"#.utf8).write(to: index)
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("StableDiffusionXLPipeline, a pipeline Kiln does not run") }
        try Data(#"{"_class_name": "StableDiffusionPipeline", "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}"#.utf8).write(to: index)
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("\"text_encoder_2\" names a component Kiln does not run") }
        try Data("{not json".utf8).write(to: index)
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("is not a JSON object") }
        try FileManager.default.removeItem(at: index)
        try FileManager.default.removeItem(at: temp.appendingPathComponent("text_encoder/model.safetensors"))
        #expect { try PriorPipeline(folder: temp) } throws: { "\($0)".contains("model.safetensors") }
    }
}
