import Bus
import Core
import Crypt
import Foundation
import JSONKit
import MongoKit
import RedisKit

/// `uc-admin`: operator commands. See `uc-admin help`.
let arguments = Array(CommandLine.arguments.dropFirst())
let environment = Environment()
let asJSON = arguments.contains("--json")
let positional = arguments.filter { !$0.hasPrefix("--") && !isOptionValue($0) }

func isOptionValue(_ word: String) -> Bool {
    guard let index = arguments.firstIndex(of: word), index > 0 else { return false }
    return ["--sub", "--role", "--ttl", "--count", "--batch-size", "--user", "--quiet-ms"]
        .contains(arguments[index - 1])
}

func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else {
        return nil
    }
    return arguments[index + 1]
}

func out(_ text: String) { FileHandle.standardOutput.write(Data((text + "\n").utf8)) }

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("uc-admin: \(message)\n".utf8))
    exit(2)
}

let usage = """
    usage:
      uc-admin token [--sub HEX24] [--role user|admin] [--ttl SECONDS]
      uc-admin status [--json]                      streams, groups, pending, consumers
      uc-admin dead list SERVICE [--count N] [--json]
      uc-admin dead show SERVICE ENTRY-ID [--json]
      uc-admin dead replay SERVICE ENTRY-ID         send it again with a fresh deadline
      uc-admin purge-replies                        delete reply keys that have no TTL
      uc-admin migrate [--dry-run] [--batch-size N] chat_sessions from chatinteractions (see README)
      uc-admin recount [--user HEX24] [--quiet-ms N] session stats from their messages, by the
                                                    sessions service (sessions quiet for N ms)
    environment: REDIS_URL, JWT_SECRET, MONGODB_URI
    """

let redis = RedisConnection(
    address: RedisAddress(url: environment.string("REDIS_URL", "redis://127.0.0.1:6379")))

func run(_ args: [RedisArgument]) -> RedisReply {
    do { return try redis.run(args) } catch { fail("\(error)") }
}

func fields(_ reply: RedisReply) -> [String: RedisReply] {
    var map: [String: RedisReply] = [:]
    let items = reply.array ?? []
    var index = 0
    while index + 1 < items.count {
        if let key = items[index].text { map[key] = items[index + 1] }
        index += 2
    }
    return map
}

func entryDocument(_ entry: RedisReply) -> Document {
    guard let parts = entry.array, parts.count == 2 else { return [:] }
    var doc: Document = ["entryId": .string(parts[0].text ?? "")]
    for (key, value) in fields(parts[1]) { doc[key] = .string(value.text ?? "") }
    return doc
}

func status() {
    var services: [Value] = []
    let names = Routes.services
    for service in names {
        let stream = BusNames.commandStream(service)
        let length = run(["XLEN", .init(stream)]).integer ?? 0
        let dead = run(["XLEN", .init(BusNames.deadLetterStream(service))]).integer ?? 0
        var doc: Document = [
            "service": .string(service), "stream": .string(stream), "length": .int64(length),
            "deadLetters": .int64(dead),
        ]
        let groups = (try? redis.run(["XINFO", "GROUPS", .init(stream)]))?.array ?? []
        if let group = groups.map(fields).first(where: { $0["name"]?.text == service }) {
            doc["pending"] = .int64(group["pending"]?.integer ?? 0)
            doc["lag"] = .int64(group["lag"]?.integer ?? 0)
            doc["lastDeliveredId"] = .string(group["last-delivered-id"]?.text ?? "")
            let summary = run(["XPENDING", .init(stream), .init(service)]).array ?? []
            if summary.count > 1, let oldest = summary[1].text,
                let millis = Int64(oldest.split(separator: "-")[0])
            {
                doc["oldestPendingAgeMs"] = .int64(Timestamp.now().milliseconds - millis)
            }
            let consumers =
                (try? redis.run(["XINFO", "CONSUMERS", .init(stream), .init(service)]))?.array ?? []
            doc["consumers"] = .array(
                consumers.map(fields).map { consumer in
                    .document([
                        "name": .string(consumer["name"]?.text ?? ""),
                        "pending": .int64(consumer["pending"]?.integer ?? 0),
                        "idleMs": .int64(consumer["idle"]?.integer ?? 0),
                    ])
                })
        } else {
            doc["group"] = "missing"
        }
        services.append(.document(doc))
    }
    if asJSON { return out(JSONWriter.string(.array(services))) }
    for case .document(let doc) in services {
        out(
            "\(doc["service"]?.stringValue ?? "")  stream=\(doc["stream"]?.stringValue ?? "")"
                + " length=\(doc["length"]?.intValue ?? 0) pending=\(doc["pending"]?.intValue ?? 0)"
                + " lag=\(doc["lag"]?.intValue ?? 0) dead=\(doc["deadLetters"]?.intValue ?? 0)"
                + " oldestPendingAgeMs=\(doc["oldestPendingAgeMs"]?.intValue ?? 0)")
        for case .document(let consumer) in doc["consumers"]?.arrayValue ?? [] {
            out(
                "    consumer \(consumer["name"]?.stringValue ?? "")"
                    + " pending=\(consumer["pending"]?.intValue ?? 0)"
                    + " idleMs=\(consumer["idleMs"]?.intValue ?? 0)")
        }
    }
}

func deadLetters() {
    guard positional.count >= 3 else { fail(usage) }
    let service = positional[2]
    let stream = BusNames.deadLetterStream(service)
    switch positional[1] {
    case "list":
        let count = option("--count") ?? "20"
        let entries =
            (run(["XREVRANGE", .init(stream), "+", "-", "COUNT", .init(count)]).array ?? []).map(
                entryDocument)
        if asJSON {
            return out(JSONWriter.string(.array(entries.map { .document($0.removing(["body"])) })))
        }
        for entry in entries {
            out(
                "\(entry["entryId"]?.stringValue ?? "")  \(entry["type"]?.stringValue ?? "")"
                    + "  command=\(entry["id"]?.stringValue ?? "")"
                    + "  error=\(entry["error"]?.stringValue ?? "")"
            )
        }
    case "show", "replay":
        guard positional.count >= 4 else { fail(usage) }
        let id = positional[3]
        guard let entry = run(["XRANGE", .init(stream), .init(id), .init(id)]).array?.first else {
            fail("no dead letter \(id) in \(stream)")
        }
        let doc = entryDocument(entry)
        if positional[1] == "show" { return out(JSONWriter.string(doc)) }
        var replay: [RedisArgument] = ["XADD", .init(BusNames.commandStream(service)), "*"]
        let deadline = Timestamp.now().milliseconds + 30_000
        // Fields at their defaults are not on the entry (`Command.fields`); they stay off.
        for key in ["id", "rid", "type", "user", "role", "params", "body", "keyed"] {
            if let value = doc[key]?.stringValue { replay += [.init(key), .init(value)] }
        }
        replay += ["reply", .init(BusNames.replyKey("admin-replay")), "deadline", .init(deadline)]
        let added = run(replay)
        _ = run(["XDEL", .init(stream), .init(id)])
        out(
            "replayed as \(added.text ?? "?") on \(BusNames.commandStream(service));"
                + " the reply lands on " + BusNames.replyKey("admin-replay"))
    default:
        fail(usage)
    }
}

/// Sends `sessions.recount` page by page and prints each fix; the sessions service does the
/// writes, since it owns `chat_sessions`.
func recount() {
    let address = RedisAddress(url: environment.string("REDIS_URL", "redis://127.0.0.1:6379"))
    let requester = BusRequester(
        address: address, name: "admin-recount-\(Crypto.randomHex(4))",
        logger: Logger(service: "uc-admin"))
    var params: [String: String] = ["limit": "500"]
    if let user = option("--user") {
        guard ObjectId(hex: user) != nil else { fail("--user must be 24 hexadecimal digits") }
        params["userId"] = user
    }
    if let quiet = option("--quiet-ms") {
        guard let value = Int(quiet), value >= 0 else { fail("--quiet-ms must be a number") }
        params["quietMs"] = String(value)
    }
    var checked: Int64 = 0
    var fixed = 0
    var busy: Int64 = 0
    while true {
        let deadline = Timestamp.now().milliseconds + 60_000
        guard
            let reply = requester.request(
                "sessions.recount", to: "sessions", userId: nil, role: "admin", params: params,
                deadline: deadline)
        else { fail("the sessions service did not answer within 60 s") }
        guard reply.status == 200, let page = try? JSONParser.parseObject(reply.body) else {
            fail(
                "sessions.recount answered \(reply.status): "
                    + String(decoding: reply.body, as: UTF8.self)
            )
        }
        checked += page["checked"]?.intValue ?? 0
        busy += page["skippedBusy"]?.intValue ?? 0
        for item in page["fixed"]?.arrayValue ?? [] {
            fixed += 1
            out(JSONWriter.string(item))
        }
        guard let next = page["next"]?.stringValue else { break }
        params["after"] = next
    }
    requester.stop()
    out("checked \(checked) sessions, fixed \(fixed), skipped \(busy) with recent writes")
}

func purgeReplies() {
    var cursor = "0"
    var removed = 0
    repeat {
        let reply = run([
            "SCAN", .init(cursor), "MATCH", .init(BusNames.replyPrefix + "*"), "COUNT", "500",
        ])
        guard let parts = reply.array, parts.count == 2 else { break }
        cursor = parts[0].text ?? "0"
        for key in parts[1].array ?? [] {
            guard let name = key.text, run(["PTTL", .init(name)]).integer == -1 else { continue }
            _ = run(["DEL", .init(name)])
            removed += 1
        }
    } while cursor != "0"
    out("removed \(removed) reply keys without a TTL")
}

switch positional.first {
case "token":
    let secret = environment.string("JWT_SECRET", "universal-chat-development-secret-change-me")
    let subject = option("--sub").map { ObjectId(hex: $0) } ?? ObjectId()
    guard let userId = subject else { fail("--sub must be 24 hexadecimal digits") }
    let ttl = Int64(option("--ttl") ?? "86400") ?? 86_400
    let role = option("--role") ?? "user"
    let now = Int64(Date().timeIntervalSince1970)
    out(JWT(secret: secret).sign(TokenClaims(userId: userId, role: role, expiresAt: now + ttl)))
case "status":
    status()
case "dead":
    deadLetters()
case "purge-replies":
    purgeReplies()
case "migrate":
    // chat_sessions from chatinteractions in the database of MONGODB_URI; see Migration.swift.
    let uri = environment.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
    let batchSize = Int(option("--batch-size") ?? "500") ?? 0
    guard batchSize >= 1, batchSize <= 10_000 else { fail("--batch-size must be from 1 to 10000") }
    do {
        let pool = try MongoPool(uri: uri, appName: "uc-admin")
        let migration = Migration(
            interactions: pool.collection("chatinteractions"),
            sessions: pool.collection("chat_sessions"),
            dryRun: arguments.contains("--dry-run"), batchSize: batchSize, output: out)
        _ = try migration.run()
    } catch {
        fail("migration stopped: \(error.description)")
    }
case "recount":
    recount()
default:
    fail(usage)
}
