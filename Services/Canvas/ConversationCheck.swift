import Bus
import Core
import ServiceKit

/// Asks the sessions service, which owns the conversations, whether one belongs to the
/// caller (`conversations.check` over the bus), before a project is linked to it.
struct ConversationCheck: Sendable {
    let requester: BusRequester
    /// How long to wait for the answer, at most; the command's own deadline comes first.
    static let timeoutMs: Int64 = 2000
    /// Time kept back from the command's deadline to answer after the check.
    static let answerMarginMs: Int64 = 300

    /// Nothing when the conversation is the caller's; 400 naming `field` when it is not (or
    /// does not exist), 503 when the sessions service does not answer.
    func requireOwned(_ conversation: String, by command: Command, field: String)
        throws(APIError)
    {
        guard
            let reply = requester.request(
                "conversations.check", to: "sessions", for: command,
                params: ["conversationId": conversation],
                timeoutMs: ConversationCheck.timeoutMs, marginMs: ConversationCheck.answerMarginMs)
        else { throw APIError.unavailable("the sessions service is not answering; retry shortly") }
        switch reply.status {
        case 200:
            return
        case 400, 404:
            throw APIError.invalid(field, "names no conversation of yours")
        default:
            throw APIError.unavailable("the sessions service could not check the conversation")
        }
    }
}
