extension Routes {
    /// Routes owned by the feedback service.
    static let feedback: [Route] = [
        Route("POST", "/api/chat/feedback", "feedback", "feedback.create"),
        Route("GET", "/api/chat/feedback", "feedback", "feedback.list"),
        Route("GET", "/api/agents/:agentId/ratings", "feedback", "feedback.ratings"),
    ]
}
