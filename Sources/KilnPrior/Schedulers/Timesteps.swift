extension SchedulerConfig.TimestepSpacing {
    /// The timesteps diffusers' `set_timesteps(count)` produces, descending, with numpy's
    /// arithmetic reproduced exactly:
    /// - leading: (0, r, 2r, …)·reversed + stepsOffset, r = T // count;
    /// - trailing: `round(arange(T, 0, −T/count)) − 1`, where numpy's float `arange` has
    ///   ⌈T / (T/count)⌉ elements `T + i·δ` with δ = (T − T/count) − T, and `round` ties to even;
    /// - linspace: `round(linspace(0, T − 1, count))` reversed (elements i·(T−1)/(count−1), the last
    ///   exactly T − 1).
    ///
    /// Faithful to a fault: for some counts (61, 103, 121, …, for T = 1000) "trailing" yields
    /// count + 1 timesteps ending in −1, as diffusers does; `DDPMScheduler.setTimesteps` and
    /// `DDIMScheduler.setTimesteps` refuse those counts rather than step at timestep −1.
    /// - Precondition: 1 ≤ count.
    public func timesteps(count: Int, numTrainTimesteps t: Int, stepsOffset: Int) -> [Int] {
        precondition(count >= 1, "timesteps(count:) needs count ≥ 1")
        switch self {
        case .leading:
            let ratio = t / count
            return (0..<count).reversed().map { $0 * ratio + stepsOffset }
        case .trailing:
            let ratio = Double(t) / Double(count)
            let start = Double(t)
            let length = max(0, Int(((0 - start) / -ratio).rounded(.up)))
            let delta = (start + -ratio) - start  // numpy fills with buffer[1] − buffer[0]
            return (0..<length).map { i in Int((start + Double(i) * delta).rounded(.toNearestOrEven)) - 1 }
        case .linspace:
            if count == 1 { return [0] }
            let step = Double(t - 1) / Double(count - 1)
            var values = (0..<count).map { Double($0) * step }
            values[count - 1] = Double(t - 1)
            return values.reversed().map { Int($0.rounded(.toNearestOrEven)) }
        }
    }
}

extension SchedulerConfig {
    /// `timestepSpacing.timesteps(count:…)` for this config, checked: 1 ≤ count ≤ T and every
    /// timestep in 0..<T.
    /// - Throws: `SchedulerError.invalidStepCount` naming the problem and, for the "trailing"
    ///   counts diffusers gets wrong, the nearest counts that work.
    public func inferenceTimesteps(count: Int) throws -> [Int] {
        let t = numTrainTimesteps
        guard count >= 1 && count <= t else {
            throw SchedulerError.invalidStepCount(count: count, numTrainTimesteps: t, reason: "must be in 1...\(t)")
        }
        let steps = timestepSpacing.timesteps(count: count, numTrainTimesteps: t, stepsOffset: stepsOffset)
        if let bad = steps.first(where: { !(0..<t).contains($0) }) {
            func works(_ n: Int) -> Bool {
                (1...t).contains(n) && timestepSpacing.timesteps(count: n, numTrainTimesteps: t, stepsOffset: stepsOffset)
                    .allSatisfy { (0..<t).contains($0) }
            }
            let below = stride(from: count - 1, through: 1, by: -1).first(where: works)
            let above = (count + 1...max(count + 1, t)).first(where: works)
            let suggestions = [below, above].compactMap { $0 }.map(String.init).joined(separator: " or ")
            let reason = timestepSpacing == .leading
                ? "\"leading\" spacing with steps_offset \(stepsOffset) reaches timestep \(bad)"
                : "diffusers' \"\(timestepSpacing.rawValue)\" spacing gives \(steps.count) timesteps ending at \(bad) for this count"
            throw SchedulerError.invalidStepCount(count: count, numTrainTimesteps: t,
                                                  reason: reason + (suggestions.isEmpty ? "" : "; use \(suggestions) steps"))
        }
        return steps
    }
}
