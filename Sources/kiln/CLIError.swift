/// A failure while a command runs (not a usage error): printed as `Error: …`, exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
