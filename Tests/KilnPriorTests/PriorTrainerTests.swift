import Foundation
import KilnCore
import KilnNN
import Testing
@testable import KilnPrior

@Suite("Prior training", .serialized)
struct PriorTrainerTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test("training configs Kiln cannot use are refused, naming the key")
    func configErrors() throws {
        let base = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.fixtures.appendingPathComponent("train_tiny.json"))) as! [String: Any]
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-train-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        func parse(_ edit: (inout [String: Any]) -> Void) throws -> PriorTrainingConfig {
            var object = base
            object["tokenizer"] = Self.fixtures.appendingPathComponent("tokenizer").path
            edit(&object)
            let url = folder.appendingPathComponent("c.json")
            try JSONSerialization.data(withJSONObject: object).write(to: url)
            return try PriorTrainingConfig(contentsOf: url)
        }
        #expect(try parse { _ in }.training.batchSize == 8)
        #expect(try parse { _ in }.training.snrGamma == nil)
        #expect(try parse { _ in }.initFolder == nil)
        #expect(try parse { $0["init"] = "prior" }.initFolder == folder.appendingPathComponent("prior").standardizedFileURL)
        #expect(try parse { _ in }.vaeFolder == nil)
        #expect(try parse { $0["vae"] = "vae"; var u = $0["unet"] as! [String: Any]; (u["in_channels"], u["out_channels"]) = (4, 4); $0["unet"] = u }.vaeFolder
            == folder.appendingPathComponent("vae").standardizedFileURL)
        #expect(try parse { var t = $0["training"] as! [String: Any]; t["snr_gamma"] = 5; $0["training"] = t }.training.snrGamma == 5)
        let refused: [(String, (inout [String: Any]) -> Void)] = [
            ("training.momentum", { var t = $0["training"] as! [String: Any]; t["momentum"] = 0.9; $0["training"] = t }),
            ("training.learning_rate", { var t = $0["training"] as! [String: Any]; t["learning_rate"] = 5; $0["training"] = t }),
            ("training.batch_size", { var t = $0["training"] as! [String: Any]; t["batch_size"] = 0; $0["training"] = t }),
            ("training.snr_gamma", { var t = $0["training"] as! [String: Any]; t["snr_gamma"] = -1; $0["training"] = t }),
            ("vae", { $0["vae"] = [String: Any]() }),
            ("init", { $0["init"] = 3 }),
            ("scheduler.prediction_type", { var c = $0["scheduler"] as! [String: Any]; c["rescale_betas_zero_snr"] = true; $0["scheduler"] = c }),
            ("unet", { var u = $0["unet"] as! [String: Any]; u["in_channels"] = 4; $0["unet"] = u }),
            ("unet", { $0["vae"] = "vae"; var u = $0["unet"] as! [String: Any]; u["in_channels"] = 4; $0["unet"] = u }),
            ("unet", { $0["unet"] = nil }),
            ("unet.cross_attention_dim", { var t = $0["text_encoder"] as! [String: Any]; t["hidden_size"] = 64; t["num_attention_heads"] = 4; $0["text_encoder"] = t }),
        ]
        for (key, edit) in refused {
            do {
                _ = try parse(edit)
                Issue.record("\(key) should be refused")
            } catch let error as PriorConfigError {
                #expect(error.key == key, "\(key): \(error)")
            }
        }
    }

    @Test("Min-SNR-γ weights: 1 where SNR ≤ γ, γ / SNR above, 1 everywhere without γ")
    func minSNRWeights() throws {
        // ᾱ = 0.5 → SNR 1; ᾱ = 0.9 → SNR 9; ᾱ = 0.99 → SNR 99.
        #expect(PriorTrainer.lossWeight(alphaCumprod: 0.5, snrGamma: 5) == 1)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.9, snrGamma: 5) - Float(5.0 / 9.0)) < 1e-6)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.99, snrGamma: 5) - Float(5.0 / 99.0)) < 1e-5)
        #expect(PriorTrainer.lossWeight(alphaCumprod: 0.99, snrGamma: nil) == 1)
        // v: min(SNR, γ) / (SNR + 1), 0 at zero SNR; x₀: min(SNR, γ).
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.5, snrGamma: 5, predictionType: .vPrediction) - 0.5) < 1e-6)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.9, snrGamma: 5, predictionType: .vPrediction) - 0.5) < 1e-6)
        #expect(PriorTrainer.lossWeight(alphaCumprod: 0, snrGamma: 5, predictionType: .vPrediction) == 0)
        #expect(abs(PriorTrainer.lossWeight(alphaCumprod: 0.9, snrGamma: 5, predictionType: .sample) - 5) < 1e-5)
    }
}
