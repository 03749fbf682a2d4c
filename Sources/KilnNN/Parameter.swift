/// A trainable tensor and the gradient accumulated for it.
///
/// A reference type: a layer, its parent modules, an optimiser and an EMA all see the same
/// parameter. Backward passes *add* into `gradient` (so several uses and several micro-batches
/// accumulate); call `zeroGradient()` (or `Module.zeroGradients()`) before each step.
///
/// The shape is fixed at creation: layers write through raw pointers sized by it, so new values
/// and gradients come in through `load` and `setGradient`, which check it, and in-place edits
/// through the buffer accessors.
public final class Parameter {
    /// The current value.
    public internal(set) var value: Tensor
    /// ∂loss/∂value accumulated since the last `zeroGradient()`; same shape as `value`.
    public internal(set) var gradient: Tensor

    /// A parameter with the given value and a zero gradient.
    public init(_ value: Tensor) {
        self.value = value
        self.gradient = Tensor.zeros(like: value)
    }

    /// `value.shape`.
    public var shape: [Int] { value.shape }

    /// Sets the gradient to zero (in place).
    public func zeroGradient() {
        gradient.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Replaces the value with `tensor` (for example one read from a weights file).
    /// - Precondition: same shape; `name` appears in the message otherwise.
    public func load(_ tensor: Tensor, name: String = "parameter") {
        precondition(tensor.shape == value.shape, "loading \(name): expected shape \(value.shape), got \(tensor.shape)")
        value = tensor
    }

    /// Replaces the gradient (for example one averaged across processes). - Precondition: same shape.
    public func setGradient(_ tensor: Tensor) {
        precondition(tensor.shape == value.shape, "Parameter.setGradient: expected shape \(value.shape), got \(tensor.shape)")
        gradient = tensor
    }

    /// Edits the value in place (an optimiser's update).
    public func withUnsafeMutableValue<T>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> T) rethrows -> T {
        try value.withUnsafeMutableBufferPointer(body)
    }

    /// Edits the gradient in place.
    public func withUnsafeMutableGradient<T>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> T) rethrows -> T {
        try gradient.withUnsafeMutableBufferPointer(body)
    }
}

/// Something with named parameters: a layer or a block of layers.
///
/// Names are the module paths of PyTorch's `state_dict()` below this module: `weight`, `bias`,
/// `to_q.weight`, `to_out.0.bias`, so that a diffusers or transformers weights file maps onto a
/// Kiln model name for name. Composite modules prefix their children's names (`prefixed`).
public protocol Module: AnyObject {
    /// Every parameter with its dotted name, in a fixed order (the order of `state_dict()`).
    var namedParameters: [(name: String, parameter: Parameter)] { get }
}

extension Module {
    /// The parameters in `namedParameters` order.
    public var parameters: [Parameter] { namedParameters.map(\.parameter) }

    /// Total number of trainable values.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.parameter.value.count } }

    /// The parameter with dotted name `name`, if any.
    public func parameter(named name: String) -> Parameter? {
        namedParameters.first { $0.name == name }?.parameter
    }

    /// Zeroes every parameter's gradient.
    public func zeroGradients() {
        for (_, p) in namedParameters { p.zeroGradient() }
    }
}

/// `child`'s named parameters under `prefix.` (a composite module's `namedParameters` is the
/// concatenation of these for its children).
public func prefixed(_ prefix: String, _ child: any Module) -> [(name: String, parameter: Parameter)] {
    child.namedParameters.map { (name: "\(prefix).\($0.name)", parameter: $0.parameter) }
}
