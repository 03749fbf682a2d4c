import Foundation
import KilnRun

/// The weights Kiln ships (`assets/prior`, `assets/prior-tuned`, `assets/rewards`, `assets/judge`),
/// found from whatever folder `kiln` runs in.
///
/// An assets folder is looked for, in order:
/// 1. `$KILN_ASSETS`, when set (then it is the only place: a wrong value is an error, not skipped);
/// 2. `PREFIX/share/kiln/assets` beside an installed `PREFIX/bin/kiln` (`tools/install.sh`);
/// 3. `assets/` beside the executable;
/// 4. `assets/` of the source checkout the executable was built from (`swift run`, `swift build`).
/// The first that holds the asked-for part (the prior's `model_index.json`, the rewards'
/// `rewards.json`) wins; when none does, the error names every place looked at and the fixes.
enum ShippedAssets {
    static let environmentVariable = "KILN_ASSETS"

    /// A part of the assets folder, with the file that shows it is there.
    enum Part: String {
        /// `judge`: reward models trained on other data, the held-out judge of `kiln tune-prior`;
        /// `priorTuned`: the prior after `kiln tune-prior` (fewer Janus assets, see its card).
        case prior, priorTuned = "prior-tuned", rewards, judge
        /// The shipped priors, which `--prior` also takes by name.
        static let priors: [Part] = [.prior, .priorTuned]
        var isPrior: Bool { Part.priors.contains(self) }
        var marker: String { isPrior ? "model_index.json" : "rewards.json" }
        var flag: String { isPrior ? "--prior" : "--\(rawValue)" }
    }

    /// The assets folders to look in, each with where it comes from, in order.
    static func candidates(environment: [String: String] = ProcessInfo.processInfo.environment) -> [(folder: URL, origin: String)] {
        var out: [(URL, String)] = []
        if let path = environment[environmentVariable], !path.isEmpty {
            out.append((URL(fileURLWithPath: path), "$\(environmentVariable)"))
        }
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let bin = executable.deletingLastPathComponent()
        out.append((bin.deletingLastPathComponent().appendingPathComponent("share/kiln/assets"), "the install prefix"))
        out.append((bin.appendingPathComponent("assets"), "beside the executable"))
        // This file is Sources/kiln/ShippedAssets.swift in the checkout the binary was built from.
        let checkout = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        out.append((checkout.appendingPathComponent("assets"), "the source checkout"))
        return out
    }

    /// The shipped `part`'s folder.
    /// - Throws: `CLIError` listing every place looked at, with the fixes.
    static func folder(_ part: Part) throws -> URL {
        let places = candidates()
        // A folder the user named is the only place looked at: falling back would hide the mistake.
        if let named = places.first, named.origin.hasPrefix("$") {
            let candidate = named.folder.appendingPathComponent(part.rawValue)
            guard FileManager.default.fileExists(atPath: candidate.appendingPathComponent(part.marker).path) else {
                throw CLIError("$\(environmentVariable) is \(named.folder.path), which has no \(part.rawValue)/\(part.marker); point it at a folder holding prior/ and rewards/ (as tools/install.sh lays them out), unset it to use the installed assets, or pass \(part.flag) DIR")
            }
            return candidate
        }
        for (folder, _) in places {
            let candidate = folder.appendingPathComponent(part.rawValue)
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent(part.marker).path) { return candidate }
        }
        let looked = places.map { "\($0.folder.appendingPathComponent(part.rawValue).path) (\($0.origin))" }.joined(separator: ", ")
        throw CLIError("the shipped \(part.rawValue) was not found; looked in \(looked). Install Kiln with tools/install.sh, set \(environmentVariable) to a folder holding prior/ and rewards/, or pass \(part.flag) DIR")
    }

    /// `given` as a folder URL, or the shipped `part` when `given` is nil. A prior may also be given
    /// by a shipped prior's name (`prior`, `prior-tuned`) when no folder of that name exists here.
    static func resolve(_ given: String?, _ part: Part) throws -> URL {
        guard let given else { return try folder(part) }
        if part == .prior, let named = shippedPrior(named: given) { return try folder(named) }
        return URL(fileURLWithPath: given)
    }

    /// The shipped prior `given` names (nil when it names a folder here, or nothing shipped).
    static func shippedPrior(named given: String) -> Part? {
        FileManager.default.fileExists(atPath: given) ? nil : Part.priors.first { $0.rawValue == given }
    }

    /// Whether a `--prior` value (nil: the default) means a shipped prior, which commands must not write into.
    static func isShippedPrior(_ given: String?) -> Bool { given.map { shippedPrior(named: $0) != nil } ?? true }

    /// The help text of a `--prior`/`--rewards` option that defaults to the shipped folder.
    static func help(_ part: Part) -> String {
        part == .prior
            ? "The prior folder, or a shipped prior by name: prior (the default) or prior-tuned (prior after kiln tune-prior); shipped priors are found through $\(environmentVariable), the install prefix or the source checkout."
            : "The reward-model folder (default: the shipped reward models, found as the prior is)."
    }
}
