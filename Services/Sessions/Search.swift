import Bus
import Core
import FoundationEssentials
import JSONKit
import MongoKit
import ServiceKit

/// `GET /api/chat/search?q=&limit=&cursor=&status=&tag=&agentId=`: the caller's messages that
/// match `q`, through the spec's text index on `messages.content`.
///
/// The index finds the caller's matching documents (buckets of messages), best text score
/// first; inside each, the messages that contain the phrase or any of its words are ranked by
/// how often (the phrase counts triple). Every query carries the caller's `userId`, and each
/// document is checked again before its messages are read: nobody else's message can appear.
///
/// The cursor is the position of the next hit (document offset in score order, hit offset in
/// that document), so a page ends exactly where the next begins; documents written between
/// two pages may shift it, as with any relevance-ranked paging.
///
/// Stand-in differences: its `$text` matches the whole query as one case-insensitive
/// substring (MongoDB matches any word, with stemming) and its textScore is always 0, so
/// there the order between documents is by `_id` and only the order inside one holds.
struct MessageSearch: Sendable {
    let interactions: MongoCollection
    let sessions: MongoCollection
    let agents: MongoCollection

    static let statuses = ["active", "closed", "archived"]
    static let batch = 20
    static let scanMax = 1000
    static let tagSessionsMax = 1000
    static let termsMax = 10
    /// Ranking and snippets look at a message's first 32 KB: a few huge messages of one user
    /// must not hold a worker for seconds.
    static let contentScanBytes = 32 * 1024
    /// A request stops after the document that takes it past this much message text, and its
    /// cursor goes on from the next one.
    static let textScanBudget = 2 * 1024 * 1024

    func search(_ command: Command) throws -> Reply {
        let user = try command.requireUser()
        let query = try QueryReader(
            command, pathParams: [], allowed: ["q", "limit", "cursor", "status", "tag", "agentId"])
        guard let text = try query.string("q", maxLength: 200) else {
            throw APIError.invalid("q", "is required")
        }
        let terms = MessageSearch.terms(text)
        guard !terms.isEmpty else {
            throw APIError.invalid("q", "must contain a letter or a digit")
        }
        let limit = try query.limit()
        var position = 0
        var skipHits = 0
        if let cursor = try query.string("cursor", maxLength: 600) {
            let parts = try PageCursor.decode(cursor, parts: 2)
            guard let doc = Int(parts[0]), let hit = Int(parts[1]), doc >= 0, hit >= 0 else {
                throw APIError.invalid("cursor", "is not a cursor this API returned")
            }
            position = doc
            skipHits = hit
        }
        var filter: Document = ["$text": ["$search": .string(text)], "userId": .objectId(user)]
        if let status = try query.string("status", maxLength: 20) {
            guard MessageSearch.statuses.contains(status) else {
                throw APIError.invalid(
                    "status", "must be one of: \(MessageSearch.statuses.joined(separator: ", "))")
            }
            filter["status"] = .string(status)
        }
        if let key = try query.string("agentId", maxLength: AgentRules.slugMax) {
            guard let agent = try agentId(key) else { return MessageSearch.empty }
            filter["agentId"] = .objectId(agent)
        }
        if let tag = try query.string("tag", maxLength: SessionRules.tagMax) {
            // TODO: only the newest `tagSessionsMax` sessions with the tag are searched.
            // `$in`, not equality: on the stand-in, equality on an indexed array matches nothing.
            let tagged = try sessions.find(
                ["userId": .objectId(user), "tags": ["$in": [.string(tag)]]],
                sort: ["updatedAt": -1],
                limit: MessageSearch.tagSessionsMax, projection: ["sessionId": 1])
            let ids = tagged.compactMap { $0["sessionId"] }
            guard !ids.isEmpty else { return MessageSearch.empty }
            filter["conversationId"] = ["$in": .array(ids)]
        }

        let phrase = text.trimmingWhitespace
        var hits: [Value] = []
        var next: Value = .null
        var scanned = 0
        var textScanned = 0
        scanning: while scanned < MessageSearch.scanMax {
            let docs = try interactions.find(
                filter, sort: ["score": ["$meta": "textScore"], "_id": 1],
                limit: MessageSearch.batch,
                skip: position,
                projection: [
                    "score": ["$meta": "textScore"], "conversationId": 1, "userId": 1,
                    "messages": 1,
                ])
            for doc in docs {
                if doc["userId"]?.objectIdValue == user {
                    let ranked = MessageSearch.rank(
                        doc["messages"]?.arrayValue ?? [], terms, phrase,
                        textScanned: &textScanned)
                    var index = skipHits
                    while index < ranked.count {
                        if hits.count == limit {
                            next = .string(PageCursor.encode([String(position), String(index)]))
                            break scanning
                        }
                        hits.append(.document(MessageSearch.hit(ranked[index], doc, terms, phrase)))
                        index += 1
                    }
                }
                position += 1
                skipHits = 0
                scanned += 1
                if textScanned >= MessageSearch.textScanBudget {
                    next = .string(PageCursor.encode([String(position), "0"]))
                    break scanning
                }
            }
            if docs.count < MessageSearch.batch { break }
            if scanned >= MessageSearch.scanMax {
                next = .string(PageCursor.encode([String(position), "0"]))
            }
        }
        return Reply(status: 200, ["items": .array(hits), "nextCursor": next])
    }

    static let empty = Reply(status: 200, ["items": [], "nextCursor": .null])

    /// A 24-hex id as is; a slug through the catalog (deleted agents included: old messages
    /// still name them). nil when no agent has that slug.
    private func agentId(_ key: String) throws -> ObjectId? {
        if let id = ObjectId(hex: key) { return id }
        guard AgentRules.isSlug(key) else {
            throw APIError.invalid("agentId", "must be an agent's id or slug")
        }
        return try agents.findOne(["agentId": .string(key)], projection: ["_id": 1])?["_id"]?
            .objectIdValue
    }

    // MARK: matching

    /// The part of a message's text that is searched: its first `contentScanBytes`, cut where a
    /// scalar begins.
    static func searchedPart(_ content: String) -> String {
        let bytes = content.utf8
        guard bytes.count > contentScanBytes else { return content }
        var end = bytes.index(bytes.startIndex, offsetBy: contentScanBytes)
        while end > bytes.startIndex, UTF8.isContinuation(bytes[end]) {
            end = bytes.index(before: end)
        }
        return String(Substring(content.unicodeScalars[..<end]))
    }

    struct Ranked {
        let message: Document
        let score: Int
        /// The searched part of its text, folded once for the ranking and the snippet.
        let text: FoldedText
    }

    /// The words of the query, folded as the text is, with a light stemming so that "answers" finds
    /// "answer" as MongoDB's stemmer would.
    static func terms(_ text: String) -> [String] {
        var terms: [String] = []
        let folded = FoldedText.folding(text)
        for word in folded.split(whereSeparator: { !$0.isLetter && !$0.isNumber }) {
            var stem = String(word)
            for suffix in ["ing", "es", "ed", "s"] where stem.count > 4 && stem.hasSuffix(suffix) {
                stem.removeLast(suffix.count)
                break
            }
            if !terms.contains(stem) { terms.append(stem) }
            if terms.count == termsMax { break }
        }
        return terms
    }

    /// The messages that match, best first; adds the bytes of text read to `textScanned`.
    static func rank(
        _ messages: [Value], _ terms: [String], _ phrase: String, textScanned: inout Int
    ) -> [Ranked] {
        var ranked: [(Int, Ranked)] = []
        let phrasePattern = CaselessPattern(phrase)
        let termPatterns = terms.map(CaselessPattern.init)
        for (index, value) in messages.enumerated() {
            guard let message = value.lenientDocument, let content = message["content"]?.stringValue
            else {
                continue
            }
            let searched = searchedPart(content)
            textScanned += searched.utf8.count
            let folded = FoldedText(searched)
            var score = terms.count > 1 ? 3 * phrasePattern.count(in: folded) : 0
            for term in termPatterns { score += term.count(in: folded) }
            if score > 0 {
                ranked.append((index, Ranked(message: message, score: score, text: folded)))
            }
        }
        ranked.sort { $0.1.score != $1.1.score ? $0.1.score > $1.1.score : $0.0 < $1.0 }
        return ranked.map(\.1)
    }

    static func hit(_ ranked: Ranked, _ doc: Document, _ terms: [String], _ phrase: String)
        -> Document
    {
        let message = ranked.message
        return [
            "sessionId": doc["conversationId"] ?? .null,
            "messageId": message["messageId"] ?? .null,
            "role": message["role"] ?? .null,
            "snippet": .string(snippet(ranked.text, terms, phrase)),
            "score": .int64(Int64(ranked.score)),
            "createdAt": message["createdAt"]?.lenientDate.map { .date($0) } ?? .null,
        ]
    }

    /// About 160 characters around the first match, with an ellipsis where text was cut.
    /// Ranges are found in the text put in NFC, so the snippet is cut from that.
    static func snippet(_ folded: FoldedText, _ terms: [String], _ phrase: String) -> String {
        let normal = folded.text
        var match = CaselessPattern(phrase).firstRange(in: folded)
        if match == nil {
            match = terms.compactMap { CaselessPattern($0).firstRange(in: folded) }
                .min { $0.lowerBound < $1.lowerBound }
        }
        guard let match else { return String(normal.prefix(160)) }
        let start =
            normal.index(match.lowerBound, offsetBy: -60, limitedBy: normal.startIndex)
            ?? normal.startIndex
        let end =
            normal.index(match.upperBound, offsetBy: 100, limitedBy: normal.endIndex)
            ?? normal.endIndex
        var text = String(normal[start..<end])
        if start > normal.startIndex { text = "…" + text }
        if end < normal.endIndex { text += "…" }
        return text
    }
}
