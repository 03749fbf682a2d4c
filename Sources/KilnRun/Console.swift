import Foundation
import KilnAsset

/// Writes pretty, sorted JSON atomically.
public func writeJSON(_ value: some Encodable, to url: URL, snakeCase: Bool = false) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    if snakeCase { encoder.keyEncodingStrategy = .convertToSnakeCase }
    try FileIO.writeAtomically(encoder.encode(value), to: url)
}


/// A progress line, written at once (unbuffered), so a log file follows a long run.
public func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// A warning on standard error.
public func warn(_ message: String) {
    FileHandle.standardError.write(Data("warning: \(message)\n".utf8))
}


/// A progress bar with it/s and ETA on a terminal; plain lines (every 5%) otherwise.
public final class ProgressLine {
    let total: Int
    let interactive = isatty(1) != 0
    let clock = ContinuousClock()
    let started: ContinuousClock.Instant
    let firstStep: Int
    var lastLine = ContinuousClock.Instant.now
    var drawn = false

    public init(total: Int, start: Int) {
        self.total = total
        firstStep = start
        started = clock.now
    }

    public var elapsed: Double { (clock.now - started).seconds }

    public func update(step: Int, detail: String) {
        let done = step - firstStep
        let rate = done > 0 ? Double(done) / max(1e-9, elapsed) : 0
        let eta = rate > 0 ? Double(total - step) / rate : 0
        let timing = String(format: "%.2f it/s  ETA %@", rate, Self.clockText(eta))
        if interactive {
            guard clock.now - lastLine > .milliseconds(100) || step == total else { return }
            lastLine = clock.now
            let width = 24, filled = total > 0 ? width * step / total : width
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            FileHandle.standardOutput.write(Data("\r\u{1B}[K[\(bar)] \(step)/\(total)  \(timing)  \(detail)".utf8))
            drawn = true
        } else if step == total || step % max(1, total / 20) == 0 {
            say("  step \(step)/\(total)  \(timing)  \(detail)")
        }
    }

    /// A message on its own line (the bar is redrawn at the next update).
    public func note(_ text: String) {
        if interactive && drawn { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        say(text)
    }

    public func finish() {
        if interactive && drawn { FileHandle.standardOutput.write(Data("\n".utf8)) }
        drawn = false
    }

    public static func clockText(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}

/// Ctrl-C (SIGINT) and SIGTERM for long runs: the first asks the loop to finish its step, save and
/// exit 130 (the finishing stage checks too, between its files); a second exits at once (130).
public final class Interrupt {
    nonisolated(unsafe) static var presses: Int32 = 0

    public static func install() -> Interrupt {
        // A parent may start us with these signals blocked (threads of a dispatch queue block
        // them, and a spawned process inherits the mask): unblock them, or they never arrive.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &set, nil)
        for number in [SIGINT, SIGTERM] {
            signal(number) { _ in
                Interrupt.presses += 1
                if Interrupt.presses > 1 { _exit(130) }
            }
        }
        return Interrupt()
    }

    public var requested: Bool { Interrupt.presses > 0 }
}
