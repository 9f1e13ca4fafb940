import Core
import Providers

/// Everything the canvas service reads from the environment, in one place.
struct CanvasConfig: Sendable {
    let mongoURI: String
    /// `MAX_FILE_BYTES`: the largest file content in bytes (UTF-8); larger is 413.
    let maxFileBytes: Int
    /// `MAX_PROJECT_FILES`: files one project may hold.
    let maxProjectFiles: Int
    /// `MAX_EXPORT_BYTES`: a project whose files add up to more cannot be exported (422).
    let maxExportBytes: Int
    /// `CANVAS_PROVIDER`: the provider when neither the request nor the project names one.
    let defaultProvider: String
    let providers: CanvasProviders
    /// `CANVAS_JOB_STREAM`: where generation jobs wait; its consumer group is `jobGroup`.
    let jobStream: String
    let jobGroup = "canvas-jobs"
    /// `CANVAS_JOB_WORKERS`: threads running generation jobs.
    let jobWorkers: Int
    /// `CANVAS_JOB_CLAIM_IDLE_MS`: a job another consumer left unacknowledged this long is taken.
    let jobClaimIdleMs: Int
    /// `CANVAS_JOB_MAX_ATTEMPTS`: runs of one job (after crashes) before it is failed.
    let jobMaxAttempts: Int
    /// How long one run may hold a job: the slowest provider call with its retries, plus margin.
    let jobLeaseMs: Int
    /// `CANVAS_JOB_MAX_AGE_MS`: a job still pending this long after it was asked for is failed.
    let jobMaxAgeMs: Int
    let promptMax = 10_000

    init(_ env: Environment) {
        mongoURI = env.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
        maxFileBytes = max(1, env.int("MAX_FILE_BYTES", 2 << 20))
        maxProjectFiles = max(1, env.int("MAX_PROJECT_FILES", 1000))
        maxExportBytes = max(1, env.int("MAX_EXPORT_BYTES", 64 << 20))
        defaultProvider = env.string("CANVAS_PROVIDER", "template")
        providers = CanvasProviders(
            env,
            limits: CanvasLimits(maxFileBytes: maxFileBytes, maxFiles: min(200, maxProjectFiles)))
        jobStream = env.string("CANVAS_JOB_STREAM", "uc:jobs:canvas")
        jobWorkers = max(1, env.int("CANVAS_JOB_WORKERS", 2))
        jobClaimIdleMs = max(1000, env.int("CANVAS_JOB_CLAIM_IDLE_MS", 30_000))
        jobMaxAttempts = max(1, env.int("CANVAS_JOB_MAX_ATTEMPTS", 3))
        jobLeaseMs = providers.worstCaseMs + 30_000
        jobMaxAgeMs = max(
            10_000, env.int("CANVAS_JOB_MAX_AGE_MS", max(15 * 60_000, 2 * jobLeaseMs)))
    }

    /// For the start-up log line; keys are masked.
    var summary: String {
        "provider=\(defaultProvider) maxFileBytes=\(maxFileBytes) maxProjectFiles=\(maxProjectFiles)"
            + " jobStream=\(jobStream) jobWorkers=\(jobWorkers) jobLeaseMs=\(jobLeaseMs)"
            + " jobMaxAgeMs=\(jobMaxAgeMs) openai-compatible=[\(providers.openAI.summary)]"
            + " anthropic=[\(providers.anthropic.summary)]"
    }
}
