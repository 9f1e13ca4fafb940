extension Routes {
    /// Routes owned by the canvas service.
    static let canvas: [Route] = [
        Route("GET", "/api/chat/canvas/projects", "canvas", "canvas.projects.list"),
        Route("POST", "/api/chat/canvas/projects", "canvas", "canvas.projects.create"),
        Route("GET", "/api/chat/canvas/projects/:id", "canvas", "canvas.projects.get"),
        Route("PUT", "/api/chat/canvas/projects/:id", "canvas", "canvas.projects.update"),
        Route("DELETE", "/api/chat/canvas/projects/:id", "canvas", "canvas.projects.delete"),
        Route("GET", "/api/chat/canvas/projects/:id/files", "canvas", "canvas.files.list"),
        Route("GET", "/api/chat/canvas/projects/:id/export", "canvas", "canvas.projects.export"),
        Route("POST", "/api/chat/canvas/projects/:id/generate", "canvas", "canvas.generate"),
        Route("GET", "/api/chat/canvas/projects/:id/history", "canvas", "canvas.history.list"),
        Route("POST", "/api/chat/canvas/projects/:id/rollback", "canvas", "canvas.rollback"),
        Route("POST", "/api/chat/canvas/files", "canvas", "canvas.files.create", largeBody: true),
        Route("GET", "/api/chat/canvas/files/:id", "canvas", "canvas.files.get"),
        Route(
            "PUT", "/api/chat/canvas/files/:id", "canvas", "canvas.files.update", largeBody: true),
        Route("DELETE", "/api/chat/canvas/files/:id", "canvas", "canvas.files.delete"),
        Route("GET", "/api/chat/canvas/history/:id", "canvas", "canvas.history.get"),
    ]
}
