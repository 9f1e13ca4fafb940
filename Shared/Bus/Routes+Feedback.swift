extension Routes {
    /// Routes owned by the feedback service.
    static let feedback: [Route] = []
}
