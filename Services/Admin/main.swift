import Core
import Crypt
import Foundation
import MongoKit

/// `uc-admin token [--sub HEX] [--role user|admin] [--ttl SECONDS]`: prints a signed access
/// token for trying the API, made with the same JWT_SECRET as the gateway.
/// `uc-admin migrate [--dry-run] [--batch-size N]`: builds `chat_sessions` from
/// `chatinteractions` in the database of MONGODB_URI (see Migration.swift).
let arguments = Array(CommandLine.arguments.dropFirst())
let environment = Environment()

func option(_ name: String) -> String? {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
    return arguments[index + 1]
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("uc-admin: \(message)\n".utf8))
    exit(2)
}

switch arguments.first {
case "token":
    let secret = environment.string("JWT_SECRET", "universal-chat-development-secret-change-me")
    let subject = option("--sub").map { ObjectId(hex: $0) } ?? ObjectId()
    guard let userId = subject else { fail("--sub must be 24 hexadecimal digits") }
    let ttl = Int64(option("--ttl") ?? "86400") ?? 86_400
    let role = option("--role") ?? "user"
    let now = Int64(Date().timeIntervalSince1970)
    let token = JWT(secret: secret).sign(TokenClaims(userId: userId, role: role, expiresAt: now + ttl))
    FileHandle.standardOutput.write(Data("\(token)\n".utf8))
case "migrate":
    let uri = environment.string("MONGODB_URI", "mongodb://127.0.0.1:27017/universal_chat")
    let batchSize = Int(option("--batch-size") ?? "500") ?? 0
    guard batchSize >= 1, batchSize <= 10_000 else { fail("--batch-size must be from 1 to 10000") }
    do {
        let pool = try MongoPool(uri: uri, appName: "uc-admin")
        let migration = Migration(
            interactions: pool.collection("chatinteractions"),
            sessions: pool.collection("chat_sessions"),
            dryRun: arguments.contains("--dry-run"), batchSize: batchSize
        ) { line in FileHandle.standardOutput.write(Data("\(line)\n".utf8)) }
        _ = try migration.run()
    } catch {
        fail("migration stopped: \(error.description)")
    }
default:
    fail(
        "usage: uc-admin token [--sub HEX24] [--role user|admin] [--ttl SECONDS]\n"
            + "       uc-admin migrate [--dry-run] [--batch-size N]   (database from MONGODB_URI)")
}
