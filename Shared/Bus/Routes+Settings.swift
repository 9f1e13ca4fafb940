extension Routes {
    /// Routes owned by the settings service: accounts, chat settings and quick actions.
    ///
    /// The `/api/auth/*` routes need no token. For them the gateway adds the caller's
    /// address as the `clientAddress` parameter (a query parameter of that name is refused),
    /// which the login rate limit counts by.
    static let settings: [Route] = [
        Route("POST", "/api/auth/register", "settings", "auth.register", auth: false),
        Route("POST", "/api/auth/login", "settings", "auth.login", auth: false),
        Route("POST", "/api/auth/refresh", "settings", "auth.refresh", auth: false),
        Route("POST", "/api/auth/logout", "settings", "auth.logout", auth: false),
        Route("GET", "/api/me", "settings", "me.get"),
        Route("PUT", "/api/me", "settings", "me.update"),
        Route("GET", "/api/chat/settings", "settings", "settings.get"),
        Route("PUT", "/api/chat/settings", "settings", "settings.update"),
        Route("GET", "/api/chat/quick-actions", "settings", "quickActions.list"),
        Route("POST", "/api/chat/quick-actions", "settings", "quickActions.create"),
        Route("PUT", "/api/chat/quick-actions/:actionId", "settings", "quickActions.update"),
        Route("DELETE", "/api/chat/quick-actions/:actionId", "settings", "quickActions.delete"),
        Route("POST", "/api/chat/quick-actions/:actionId/use", "settings", "quickActions.use"),
    ]
}
