import Core
import Crypt
import Foundation

/// `uc-admin token [--sub HEX] [--role user|admin] [--ttl SECONDS]`: prints a signed access
/// token for trying the API, made with the same JWT_SECRET as the gateway.
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
default:
    fail("usage: uc-admin token [--sub HEX24] [--role user|admin] [--ttl SECONDS]")
}
