import Core

/// What a canvas generation is asked to build.
public struct CanvasRequest: Sendable {
    public var prompt: String
    public var projectName: String
    public var description: String
    public var template: String
    public var category: String
    /// `light`, `dark` or `auto`.
    public var theme: String
    public var responsive: Bool
    public var animations: Bool
    public var model: String?
    /// Paths already in the project, so a model can build on them.
    public var existingPaths: [String]

    public init(
        prompt: String, projectName: String, description: String = "", template: String,
        category: String, theme: String = "light", responsive: Bool = true, animations: Bool = true,
        model: String? = nil, existingPaths: [String] = []
    ) {
        self.prompt = prompt
        self.projectName = projectName
        self.description = description
        self.template = template
        self.category = category
        self.theme = theme
        self.responsive = responsive
        self.animations = animations
        self.model = model
        self.existingPaths = existingPaths
    }
}

/// The validated files of one generation and what it cost.
public struct CanvasGeneration: Sendable {
    public let files: [GeneratedFile]
    public let provider: String
    public let model: String
    public let usage: TokenUsage
    public let attempts: Int
}

/// Something that turns a canvas request into files: the offline template builder, or a chat
/// model asked for the `CanvasFileSet` JSON shape.
public protocol CanvasProvider: Sendable {
    var name: String { get }
    func generate(_ request: CanvasRequest) throws(ProviderError) -> CanvasGeneration
}

/// A chat model asked for files: the answer is parsed and validated before anything is
/// returned, so a malformed or unsafe answer never reaches the database.
public struct ModelCanvasProvider: CanvasProvider {
    public let chat: any ChatProvider
    public let limits: CanvasLimits

    public init(chat: any ChatProvider, limits: CanvasLimits) {
        self.chat = chat
        self.limits = limits
    }

    public var name: String { chat.name }

    public static let systemPrompt = """
        You are a web developer who writes complete, working static websites \
        (HTML, CSS and vanilla JavaScript, no build step).

        """ + CanvasFileSet.shapeDescription

    public func generate(_ request: CanvasRequest) throws(ProviderError) -> CanvasGeneration {
        let completion = try chat.complete(
            ChatRequest(
                model: request.model, system: ModelCanvasProvider.systemPrompt,
                messages: [
                    ChatMessage(role: "user", content: ModelCanvasProvider.userPrompt(request))
                ],
                temperature: 0.2))
        switch CanvasFileSet.parse(completion.text, limits: limits) {
        case .success(let files):
            return CanvasGeneration(
                files: files, provider: name, model: completion.model, usage: completion.usage,
                attempts: completion.attempts)
        case .failure(let reason):
            let cut =
                completion.finishReason == "length"
                ? " (the answer was cut off at the token limit)" : ""
            throw ProviderError(
                .invalidOutput, provider: name, message: "unusable answer: \(reason.message)\(cut)",
                attempts: completion.attempts)
        }
    }

    static func userPrompt(_ request: CanvasRequest) -> String {
        var lines = [
            "Project: \(request.projectName)",
            "Template: \(request.template) (category: \(request.category))",
            "Theme: \(request.theme); responsive: \(request.responsive); animations: \(request.animations)",
        ]
        if !request.description.isEmpty { lines.append("Description: \(request.description)") }
        if !request.existingPaths.isEmpty {
            lines.append(
                "Files already in the project: \(request.existingPaths.joined(separator: ", "))")
        }
        lines.append("Build at least index.html, styles.css, app.js and README.md.")
        lines.append("")
        lines.append("Request: \(request.prompt)")
        return lines.joined(separator: "\n")
    }
}

/// The canvas providers a service can offer, by the names the API accepts.
public struct CanvasProviders: Sendable {
    public static let names = ["template", "openai-compatible", "anthropic"]

    public let openAI: HTTPProviderConfig
    public let anthropic: HTTPProviderConfig
    public let limits: CanvasLimits

    public init(openAI: HTTPProviderConfig, anthropic: HTTPProviderConfig, limits: CanvasLimits) {
        self.openAI = openAI
        self.anthropic = anthropic
        self.limits = limits
    }

    /// Reads `CANVAS_*` (openai-compatible) and `CANVAS_ANTHROPIC_*` (falling back to `CANVAS_*`
    /// for timeouts and retries).
    public init(_ env: Environment, limits: CanvasLimits) {
        self.init(
            openAI: HTTPProviderConfig(
                env, prefix: "CANVAS", defaultBaseURL: "https://api.openai.com/v1",
                defaultModel: "gpt-4o-mini"),
            anthropic: HTTPProviderConfig(
                env, prefix: "CANVAS_ANTHROPIC", fallbackPrefix: "CANVAS",
                defaultBaseURL: "https://api.anthropic.com",
                defaultModel: "claude-3-5-sonnet-latest"),
            limits: limits)
    }

    /// The provider for a name, or why it cannot be used.
    public func provider(_ name: String) -> Result<any CanvasProvider, ProviderError> {
        switch name {
        case "template":
            return .success(TemplateCanvasProvider())
        case "openai-compatible" where openAI.isConfigured:
            return .success(
                ModelCanvasProvider(chat: OpenAICompatibleProvider(config: openAI), limits: limits))
        case "anthropic" where anthropic.isConfigured:
            return .success(
                ModelCanvasProvider(chat: AnthropicProvider(config: anthropic), limits: limits))
        case "openai-compatible", "anthropic":
            let prefix = name == "anthropic" ? "CANVAS_ANTHROPIC" : "CANVAS"
            return .failure(
                ProviderError(
                    .notConfigured, provider: name,
                    message: "is not configured (set \(prefix)_API_KEY or \(prefix)_BASE_URL)"))
        default:
            return .failure(
                ProviderError(
                    .notConfigured, provider: name,
                    message:
                        "is unknown; use one of \(CanvasProviders.names.joined(separator: ", "))"))
        }
    }

    /// The model a provider uses when the request names none.
    public func defaultModel(_ name: String) -> String {
        switch name {
        case "openai-compatible": return openAI.model
        case "anthropic": return anthropic.model
        default: return TemplateCanvasProvider.modelName
        }
    }

    /// The longest one generation may take, for job leases.
    public var worstCaseMs: Int { max(openAI.worstCaseMs, anthropic.worstCaseMs) }
}
