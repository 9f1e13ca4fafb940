extension Routes {
    /// Routes owned by the settings service.
    static let settings: [Route] = []
}
