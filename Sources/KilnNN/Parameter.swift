/// A trainable tensor and the gradient accumulated for it.
///
/// A reference type: a layer, its parent modules, an optimiser and an EMA all see the same
/// parameter. Backward passes *add* into `gradient` (so several uses and several micro-batches
/// accumulate); call `zeroGradient()` (or `Module.zeroGradients()`) before each step.
///
/// The shape is fixed at creation: layers write through raw pointers sized by it, so new values
/// and gradients come in through `load` and `setGradient`, which check it, and in-place edits
/// through the buffer accessors.
///
/// Memory at Stable Diffusion scale (860M UNet values) shapes two choices:
/// - **Half-precision storage.** Weights read from F16/BF16 files stay 16-bit (`loadHalf`) and
///   `value` widens them exactly each time a layer reads it, so a frozen model needs half the
///   memory; the first in-place edit (`withUnsafeMutableValue`, an optimiser step) widens the
///   storage for good, since training keeps 32-bit weights.
/// - **Lazy gradients.** The gradient buffer is allocated on first use, and a parameter with
///   `requiresGradient == false` (a frozen VAE or UNet during distillation) is skipped by every
///   layer's backward pass: its gradient is never computed or allocated.
public final class Parameter {
    private enum Storage {
        case float(Tensor)
        case half(HalfTensor)
    }

    private var storage: Storage
    private var gradientStorage: Tensor?
    /// The shape, fixed at creation.
    public let shape: [Int]
    /// Whether backward passes compute this parameter's gradient (true by default).
    public var requiresGradient = true

    /// A parameter with the given value and a zero gradient.
    public init(_ value: Tensor) {
        self.storage = .float(value)
        self.shape = value.shape
    }

    /// The current value (widened from 16 bits when stored so: a fresh tensor per read).
    public var value: Tensor {
        switch storage {
        case .float(let t): return t
        case .half(let h): return h.widened()
        }
    }

    /// The format of the value's storage: nil for 32-bit floats.
    public var halfPrecisionFormat: HalfPrecision.Format? {
        if case .half(let h) = storage { return h.format }
        return nil
    }

    /// Number of values.
    public var count: Int { shape.reduce(1, *) }

    /// ∂loss/∂value accumulated since the last `zeroGradient()`; same shape as `value`. Zeros
    /// until a backward pass adds to it (allocated on first use).
    public var gradient: Tensor {
        get { gradientStorage ?? Tensor.zeros(shape) }
        _modify {
            if gradientStorage == nil { gradientStorage = Tensor.zeros(shape) }
            yield &gradientStorage!
        }
    }

    /// Whether a gradient buffer has been allocated (a backward pass or `setGradient` wrote one).
    public var hasGradient: Bool { gradientStorage != nil }

    /// Sets the gradient to zero (in place; nothing to do while none is allocated).
    public func zeroGradient() {
        gradientStorage?.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
    }

    /// Frees the gradient buffer (it reads as zeros until the next backward pass).
    public func releaseGradient() { gradientStorage = nil }

    /// Replaces the value with `tensor` (for example one read from a weights file).
    /// - Precondition: same shape; `name` appears in the message otherwise.
    public func load(_ tensor: Tensor, name: String = "parameter") {
        precondition(tensor.shape == shape, "loading \(name): expected shape \(shape), got \(tensor.shape)")
        storage = .float(tensor)
    }

    /// Replaces the value with 16-bit floats kept as they are (widened on each read).
    /// - Precondition: same shape.
    public func loadHalf(_ tensor: HalfTensor, name: String = "parameter") {
        precondition(tensor.shape == shape, "loading \(name): expected shape \(shape), got \(tensor.shape)")
        storage = .half(tensor)
    }

    /// Replaces the gradient (for example one averaged across processes). - Precondition: same shape.
    public func setGradient(_ tensor: Tensor) {
        precondition(tensor.shape == shape, "Parameter.setGradient: expected shape \(shape), got \(tensor.shape)")
        gradientStorage = tensor
    }

    /// Edits the value in place (an optimiser's update); widens 16-bit storage for good first.
    public func withUnsafeMutableValue<T>(_ body: (UnsafeMutableBufferPointer<Float>) throws -> T) rethrows -> T {
        if case .half(let h) = storage { storage = .float(h.widened()) }
        guard case .float(var t) = storage else { preconditionFailure("widened above") }
        storage = .float(Tensor.zeros([0]))  // drop the second reference so the edit is in place
        defer { storage = .float(t) }
        return try t.withUnsafeMutableBufferPointer(body)
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
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.parameter.count } }

    /// The parameter with dotted name `name`, if any.
    public func parameter(named name: String) -> Parameter? {
        namedParameters.first { $0.name == name }?.parameter
    }

    /// Zeroes every parameter's gradient.
    public func zeroGradients() {
        for (_, p) in namedParameters { p.zeroGradient() }
    }

    /// Freezes (false) or unfreezes (true) every parameter: a frozen parameter's gradient is
    /// neither computed nor stored by backward passes, which still return input gradients.
    public func setRequiresGradient(_ requiresGradient: Bool) {
        for (_, p) in namedParameters {
            p.requiresGradient = requiresGradient
            if !requiresGradient { p.releaseGradient() }
        }
    }
}

/// `child`'s named parameters under `prefix.` (a composite module's `namedParameters` is the
/// concatenation of these for its children).
public func prefixed(_ prefix: String, _ child: any Module) -> [(name: String, parameter: Parameter)] {
    child.namedParameters.map { (name: "\(prefix).\($0.name)", parameter: $0.parameter) }
}
