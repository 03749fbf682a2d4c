import KilnRun

/// A failure while a command runs (not a usage error): printed as `Error: …`, exit status 1.
typealias CLIError = RunError
