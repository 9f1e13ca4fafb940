extension Routes {
    /// Routes owned by the canvas service.
    static let canvas: [Route] = []
}
