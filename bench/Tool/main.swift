import Core
import Foundation
import HTTPKit
import MongoKit
import Synchronization

/// `uc-bench`: the floors the benchmark compares against, and fast seeding.
///   uc-bench floor PORT
///       a trivial libmicrohttpd handler, same settings as the gateway
///   uc-bench direct URI OP THREADS SECONDS USER SESSION
///       the same MongoDB operation as a route, straight through libmongoc
///   uc-bench seed URI USER SESSIONS MESSAGES
///       sessions for USER; MESSAGES messages in its first session
let arguments = Array(CommandLine.arguments.dropFirst())

/// The tool's one result line, read by bench/run.sh.
func output(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("uc-bench: \(message)\n".utf8))
    exit(2)
}

func floor(port: Int) -> Never {
    let body = Array(#"{"pong":true}"#.utf8)
    let server = HTTPServer(
        config: HTTPServerConfig(
            host: "127.0.0.1", port: port, threads: 2, maxBodyBytes: 1 << 20,
            connectionTimeoutSeconds: 15,
            connectionLimit: 4000, defaultHeaders: [("Cache-Control", "no-store")]),
        handler: { _, responder in responder.respond(.json(200, body)) })
    do { try server.start() } catch { fail(error.message) }
    while true { sleep(60) }
}

/// Runs the MongoDB work of one route in a loop on THREADS threads and prints operations/s.
func direct(uri: String, op: String, threads: Int, seconds: Double, user: ObjectId, session: String)
{
    guard let pool = try? MongoPool(uri: uri, appName: "bench") else { fail("bad uri") }
    let sessions = pool.collection("chat_sessions")
    let interactions = pool.collection("chatinteractions")
    let count = Atomic<Int>(0)
    let stop = Date().addingTimeInterval(seconds)
    let group = DispatchGroup()
    for thread in 0..<threads {
        group.enter()
        Thread {
            var index = 0
            while Date() < stop {
                index += 1
                let now = Timestamp.now()
                do {
                    switch op {
                    case "create":
                        try sessions.insertOne([
                            "_id": .objectId(ObjectId()),
                            "sessionId": .string("bench-\(thread)-\(index)-\(ObjectId().hex)"),
                            "userId": .objectId(user), "name": "bench session", "isActive": true,
                            "isArchived": false,
                            // The document the service stores for `{"name": "bench session"}`.
                            "tags": [],
                            "settings": [
                                "temperature": 0.7, "maxTokens": .int64(2000), "mode": "balanced",
                                "provider": "mistral",
                            ],
                            "stats": [
                                "messageCount": .int64(0), "totalTokens": .int64(0),
                                "durationMs": .int64(0),
                            ],
                            "createdAt": .date(now),
                            "updatedAt": .date(now),
                        ])
                    case "append":
                        _ = try sessions.findOne([
                            "sessionId": .string(session), "userId": .objectId(user),
                        ])
                        try interactions.updateOne(
                            ["conversationId": .string(session), "bucket": 0],
                            [
                                "$push": [
                                    "messages": [
                                        "role": "user", "content": "hello", "createdAt": .date(now),
                                    ]
                                ],
                                "$inc": ["metrics.turnCount": 1],
                            ])
                        try sessions.updateOne(
                            ["sessionId": .string(session)],
                            ["$inc": ["stats.messageCount": 1], "$set": ["updatedAt": .date(now)]])
                    case "list":
                        _ = try sessions.find(
                            ["userId": .objectId(user)], sort: ["updatedAt": -1, "sessionId": -1],
                            limit: 21)
                    case "page":
                        _ = try interactions.find(
                            ["conversationId": .string(session), "bucket": ["$gte": 0]],
                            sort: ["bucket": 1], limit: 3)
                    case "search":
                        // The first batch of `GET /api/chat/search?q=hello`, as the service asks.
                        _ = try interactions.find(
                            ["$text": ["$search": "hello"], "userId": .objectId(user)],
                            sort: ["score": ["$meta": "textScore"], "_id": 1], limit: 20,
                            projection: [
                                "score": ["$meta": "textScore"], "conversationId": 1,
                                "userId": 1, "messages": 1,
                            ])
                    default:
                        fail("unknown op \(op)")
                    }
                    count.add(1, ordering: .relaxed)
                } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                }
            }
            group.leave()
        }.start()
    }
    group.wait()
    output(String(format: "%.1f", Double(count.load(ordering: .relaxed)) / seconds))
}

func seed(uri: String, user: ObjectId, sessions count: Int, messages: Int) {
    guard let pool = try? MongoPool(uri: uri, appName: "bench") else { fail("bad uri") }
    let sessions = pool.collection("chat_sessions")
    let interactions = pool.collection("chatinteractions")
    let base = Timestamp.now().milliseconds - Int64(count) * 1000
    var batch: [Document] = []
    var first = ""
    for index in 0..<count {
        let id = "session-seed-\(user.hex.suffix(8))-\(index)"
        if index == 0 { first = id }
        let at = Value.date(Timestamp(milliseconds: base + Int64(index) * 1000))
        batch.append([
            "_id": .objectId(ObjectId()), "sessionId": .string(id), "userId": .objectId(user),
            "name": .string("seed \(index)"),
            "isActive": true, "isArchived": false, "tags": [],
            "settings": ["temperature": 0.7, "maxTokens": 2000],
            "stats": ["messageCount": 0, "totalTokens": 0, "durationMs": 0], "createdAt": at,
            "updatedAt": at,
        ])
        if batch.count == 500 {
            _ = try? sessions.insertMany(batch)
            batch = []
        }
    }
    _ = try? sessions.insertMany(batch)
    var bucket: [Value] = []
    var number: Int64 = 0
    var buckets: [Document] = []
    for index in 0..<messages {
        bucket.append([
            "messageId": .string("msg-seed-\(index)"), "role": "user",
            "content": .string("message \(index)"),
            "attachments": [], "createdAt": .date(Timestamp(milliseconds: base + Int64(index))),
        ])
        if bucket.count == 100 || index == messages - 1 {
            buckets.append([
                "_id": .objectId(ObjectId()), "conversationId": .string(first),
                "bucket": .int64(number),
                "userId": .objectId(user), "messages": .array(bucket),
                "metrics": [
                    "turnCount": .int64(Int64(bucket.count)), "totalTokens": 0, "contentBytes": 0,
                ],
                "status": "active", "createdAt": .date(Timestamp.now()),
                "updatedAt": .date(Timestamp.now()),
            ])
            bucket = []
            number += 1
        }
    }
    _ = try? interactions.insertMany(buckets)
    _ = try? sessions.updateOne(
        ["sessionId": .string(first)], ["$set": ["stats.messageCount": .int64(Int64(messages))]])
    output(first)
}

switch arguments.first {
case "floor":
    floor(port: Int(arguments.dropFirst().first ?? "") ?? 8099)
case "direct":
    guard arguments.count >= 7, let threads = Int(arguments[3]), let seconds = Double(arguments[4]),
        let user = ObjectId(hex: arguments[5])
    else { fail("usage: direct URI OP THREADS SECONDS USER SESSION") }
    direct(
        uri: arguments[1], op: arguments[2], threads: threads, seconds: seconds, user: user,
        session: arguments[6])
case "seed":
    guard arguments.count >= 5, let user = ObjectId(hex: arguments[2]),
        let count = Int(arguments[3]),
        let messages = Int(arguments[4])
    else { fail("usage: seed URI USER SESSIONS MESSAGES") }
    seed(uri: arguments[1], user: user, sessions: count, messages: messages)
default:
    fail("usage: uc-bench floor PORT | direct ... | seed ...")
}
