import Foundation
import KilnCore
import KilnNN
import KilnRender

/// A NeRF as a distilled scene: `NeRFField` rendered by `NeRFRenderer` (jittered samples,
/// occupancy grid refreshed every `occupancyEvery` steps), trained with Adam.
public final class NeRFScene: DistilledScene {
    public let settings: NeRFSettings
    public let field: NeRFField
    public let renderer: NeRFRenderer
    public internal(set) var occupancy: OccupancyGrid
    let optimizer: Adam
    let threads: Int

    public init(settings: NeRFSettings, extent: Float, seed: UInt64, threads: Int = Parallel.defaultThreadCount) throws {
        try settings.validate()
        self.settings = settings
        var rng = RNG(seed: seed)
        field = NeRFField(grid: settings.grid, width: settings.width, halfSize: extent * 1.15, blobDensity: settings.blobDensity,
                          blobRadius: settings.blobRadius, rng: &rng)
        renderer = NeRFRenderer(samplesPerRay: settings.samplesPerRay)
        occupancy = OccupancyGrid(resolution: settings.occupancyResolution)
        optimizer = Adam(parameters: field.parameters, configuration: .adam(learningRate: settings.learningRate))
        self.threads = threads
    }

    public func render(camera: Camera, time: Float?, step: Int, of steps: Int, background: SIMD3<Float>, rng: inout RNG) -> (color: [Float], frame: NeRFRenderer.Frame) {
        let jitter = rng.split(rng.next())
        let frame = renderer.render(field, camera: camera, background: background, occupancy: occupancy, jitter: jitter, threads: threads)
        return (frame.color, frame)
    }

    public func preview(camera: Camera, time: Float?, background: SIMD3<Float>) -> [Float] {
        renderer.render(field, camera: camera, background: background, occupancy: occupancy, threads: threads).color
    }

    public func accumulate(_ frame: NeRFRenderer.Frame, dColor: [Float]) {
        renderer.backward(frame, field: field, dColor: dColor, threads: threads)
    }

    public var gradientIsFinite: Bool { field.parameters.allSatisfy { $0.gradient.storage.allSatisfy(\.isFinite) } }

    public func applyStep(step: Int, of steps: Int, rng: inout RNG) {
        optimizer.step()
        discardGradient()
        if step % settings.occupancyEvery == 0 { Profiler.measure("occupancy grid") { occupancy.update(field, rng: &rng, threads: threads) } }
    }

    public func discardGradient() { field.zeroGradients() }

    public var size: Int { Int((occupancy.occupiedFraction * Double(occupancy.density.count)).rounded()) }

    // MARK: Checkpoints

    struct State: Codable { var adamStep: Int }

    public func checkpoint(into tensors: inout SafeTensorsWriter) throws -> Data {
        for (i, (name, p)) in field.namedParameters.enumerated() {
            try tensors.add(name, shape: p.shape, values: p.value.storage)
            try tensors.add("adam.m." + name, shape: p.shape, values: optimizer.firstMoments[i].storage)
            try tensors.add("adam.v." + name, shape: p.shape, values: optimizer.secondMoments[i].storage)
        }
        // +∞ ("not measured yet") is stored as −1.
        try tensors.add("occupancy.density", shape: [occupancy.density.count], values: occupancy.density.map { $0.isFinite ? $0 : -1 })
        return try JSONEncoder().encode(State(adamStep: optimizer.stepCount))
    }

    public func restore(tensors file: SafeTensorsFile, state data: Data) throws {
        let state = try JSONDecoder().decode(State.self, from: data)
        var first: [Tensor] = [], second: [Tensor] = []
        for (name, p) in field.namedParameters {
            p.load(Tensor(shape: p.shape, storage: try file.expect(name, shape: p.shape)), name: name)
            first.append(Tensor(shape: p.shape, storage: try file.expect("adam.m." + name, shape: p.shape)))
            second.append(Tensor(shape: p.shape, storage: try file.expect("adam.v." + name, shape: p.shape)))
        }
        optimizer.restore(stepCount: state.adamStep, firstMoments: first, secondMoments: second)
        occupancy.density = try file.expect("occupancy.density", shape: [occupancy.density.count]).map { $0 < 0 ? .infinity : $0 }
        discardGradient()
    }
}
