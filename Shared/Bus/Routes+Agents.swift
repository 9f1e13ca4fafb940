extension Routes {
    /// Routes the sessions service owns besides the session CRUD in `Routes.swift`: the agent
    /// catalog, analytics over `chatinteractions` and message search.
    static let agents: [Route] = [
        Route("GET", "/api/agents", "sessions", "agents.list"),
        Route("POST", "/api/agents", "sessions", "agents.create"),
        Route("GET", "/api/agents/:agentId", "sessions", "agents.get"),
        Route("PUT", "/api/agents/:agentId", "sessions", "agents.update"),
        Route("DELETE", "/api/agents/:agentId", "sessions", "agents.delete"),
        Route("GET", "/api/agents/:agentId/metrics", "sessions", "agents.metrics"),
        Route("GET", "/api/chat/stats", "sessions", "chat.stats"),
        Route("GET", "/api/chat/search", "sessions", "chat.search"),
    ]
}
