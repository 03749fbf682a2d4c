/// A data set a prior trains on (`PriorTrainer`), in memory: images with their captions and view
/// vectors.
public protocol PriorTrainingData {
    /// Side of the square images.
    var size: Int { get }
    /// Samples held.
    var count: Int { get }
    /// `[count, 3, size, size]` display RGB, 0–255.
    var images: [UInt8] { get }
    /// `[count, ViewConditioning.length]`.
    var views: [Float] { get }
    /// `[count]`.
    var captions: [String] { get }
    /// The closed set of words the captions use (the exported pipeline's `kiln_prior.json`
    /// vocabulary), nil for an open one.
    var vocabulary: [String]? { get }
}
