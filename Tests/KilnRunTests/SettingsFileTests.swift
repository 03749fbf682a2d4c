import Foundation
import KilnCore
import KilnDistill
import Testing
@testable import KilnRun

@Suite("Settings files")
struct SettingsFileTests {
    func read(_ text: String) throws -> (settings: GenerateSettings, given: Set<String>) {
        let (value, given) = try SettingsFile.read(GenerateSettings(), from: Data(text.utf8), source: "config.json",
                                                   optionalKeys: GenerateSettings.optionalKeys)
        return (value, given)
    }

    func error(_ text: String) -> SettingsError? {
        do { _ = try read(text); return nil } catch { return error as? SettingsError }
    }

    @Test("a run picks its render size for its prior unless the file gives one: splats at the least multiple of the prior's size ≥ 64², a NeRF at the prior's size; every pick validates")
    func renderSizeForThePrior() throws {
        #expect([16, 32, 48, 128, 512].map { ViewSettings.defaultRenderSize(priorSize: $0, nerf: false) } == [64, 64, 96, 128, 512])
        for size in [16, 24, 32, 40, 48, 56, 64, 128, 256, 512] {
            var views = ViewSettings()
            views.renderSize = ViewSettings.defaultRenderSize(priorSize: size, nerf: false)
            #expect(throws: Never.self) { try views.validate(priorSize: size) }
        }
        #expect([16, 32, 128].map { ViewSettings.defaultRenderSize(priorSize: $0, nerf: true) } == [16, 32, 128])
        var request = GenerateRequest(prompt: "a red duck")
        #expect(try request.newSettings().picksRenderSize)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("kiln-render-size-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Data(#"{"views": {"render_size": 96}}"#.utf8).write(to: folder)
        request.config = folder
        let (settings, picks) = try request.newSettings()
        #expect(!picks && settings.views.renderSize == 96)
    }

    @Test("a run's config.json reads back to the same settings")
    func roundTrip() throws {
        var settings = GenerateSettings()
        settings.prompt = "a red snowman"
        settings.representation = .nerf
        settings.refine.stage = .mesh
        settings.sds.gradientClamp = 2
        let data = try settings.encoded()
        let (back, given) = try SettingsFile.read(GenerateSettings(), from: data, source: "config.json", optionalKeys: GenerateSettings.optionalKeys)
        #expect(try back.encoded() == data)
        #expect(given.contains("refine.stage") && given.contains("sds.gradient_clamp") && given.contains("prompt"))
    }

    @Test("keys left out keep their defaults, and the keys given are recorded")
    func partial() throws {
        let (settings, given) = try read("{\"steps\": 40, \"views\": {\"render_size\": 32}}")
        #expect(settings.steps == 40 && settings.views.renderSize == 32 && settings.views.viewsPerStep == ViewSettings().viewsPerStep)
        #expect(given == ["steps", "views", "views.render_size"])
    }

    @Test("an unknown key is named with its line and the known keys")
    func unknownKey() throws {
        let e = try #require(error("{\n  \"sds\": {\n    \"guidance\": 3\n  }\n}"))
        #expect(e.key == "sds.guidance" && e.line == 3)
        #expect(e.description.contains("config.json, line 3: 'sds.guidance' is not a setting") && e.description.contains("guidance_scale"))
    }

    @Test("a value of the wrong type is named with its line")
    func wrongType() throws {
        let e = try #require(error("{\"views\": {\n\"views_per_step\": \"four\"}}"))
        #expect(e.key == "views.views_per_step" && e.line == 2 && e.problem.contains("whole number"))
    }

    @Test("a choice that is not one of the enum's names lists them")
    func badChoice() throws {
        let e = try #require(error("{\"representation\": \"mesh\"}"))
        #expect(e.key == "representation" && e.line == 1)
        #expect(e.problem.contains("'mesh', not one of gaussians, nerf") && e.fix == "use one of them")
        let stage = try #require(error("{\"refine\": {\"stage\": \"texture\"}}"))
        #expect(stage.key == "refine.stage" && stage.problem.contains("none, mesh"))
        // Every choice of the distillation's settings lists its names the same way.
        for (section, key, listed) in [("sds", "objective", "sds, csd"), ("sds", "weighting", "sds"), ("sds", "timestep_schedule", "random, annealed"),
                                       ("guidance", "method", "sds, rw-sds"), ("guidance", "selection", "weighted"),
                                       ("gaussians", "color_smoothness_penalty", "l2, charbonnier")] {
            let e = try #require(error("{\"\(section)\": {\"\(key)\": \"nonsense\"}}"), "\(section).\(key)")
            #expect(e.key == "\(section).\(key)" && e.problem.contains("'nonsense', not one of \(listed)") && e.fix == "use one of them", "\(e)")
        }
    }

    @Test("a syntax error names its line and column")
    func syntax() throws {
        let e = try #require(error("{\n  \"steps\": 40,\n  \"seed\" 1\n}"))
        #expect(e.key == nil && e.problem.contains("line 3"))
    }

    @Test("a section given as a value, or a file that is not an object, is refused")
    func shapes() throws {
        #expect(error("{\"views\": 3}")?.problem == "must be an object")
        #expect(error("[1, 2]")?.problem == "is not a JSON object")
    }
}

@Suite("Settings files: one section")
struct SettingsSectionTests {
    struct Training: Codable, Equatable {
        var batchSize = 32
        var learningRate = 2e-4
    }

    @Test("a section is read over its defaults, other sections left alone, errors named section.key with their line")
    func section() throws {
        let text = "{\n  \"unet\": {\"anything\": 1},\n  \"training\": {\n    \"batch_size\": 8\n  }\n}"
        let (value, given) = try SettingsFile.read(Training(), section: "training", from: Data(text.utf8), source: "train.json")
        #expect(value == Training(batchSize: 8) && given == ["training.batch_size"])
        #expect(try SettingsFile.read(Training(), section: "training", from: Data("{\"unet\": {}}".utf8), source: "t").value == Training())
        do {
            _ = try SettingsFile.read(Training(), section: "training", from: Data("{\"training\": {\n\"momentum\": 0.9}}".utf8), source: "t")
            Issue.record("an unknown key should be refused")
        } catch let error as SettingsError {
            #expect(error.key == "training.momentum" && error.line == 2)
        }
        do {
            _ = try SettingsFile.read(Training(), section: "training", from: Data("{\"training\": {\"batch_size\": \"8\"}}".utf8), source: "t")
            Issue.record("a string for a number should be refused")
        } catch let error as SettingsError {
            #expect(error.key == "training.batch_size" && error.line == 1)
        }
    }
}
