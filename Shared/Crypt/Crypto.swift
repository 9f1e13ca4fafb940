import CCrypt
import COpenSSL
import Core
import FoundationEssentials
import Glibc
import Synchronization

/// Hashing, HMAC, randomness and bcrypt, from OpenSSL and libxcrypt.
public enum Crypto {
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        data.withUnsafeBufferPointer { input in
            _ = SHA256(input.baseAddress, input.count, &digest)
        }
        return digest
    }

    public static func sha256Hex(_ data: [UInt8]) -> String { Hex.encode(sha256(data)) }

    public static func hmacSHA256(key: [UInt8], data: [UInt8]) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                _ = HMAC(
                    EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, &digest,
                    &length)
            }
        }
        return Array(digest.prefix(Int(length)))
    }

    /// Compares in time that depends only on the length.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { x in
            b.withUnsafeBytes { y in CRYPTO_memcmp(x.baseAddress, y.baseAddress, a.count) == 0 }
        }
    }

    public static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        if RAND_bytes(&bytes, Int32(count)) != 1 {
            for i in 0..<count { bytes[i] = UInt8.random(in: 0...255) }
        }
        return bytes
    }

    public static func randomHex(_ byteCount: Int) -> String { Hex.encode(randomBytes(byteCount)) }

    /// Random hex for ids on hot paths (command and request ids, not secrets). glibc's
    /// `arc4random_buf` makes a `getrandom` call each time, so bytes are drawn 4 KB at a time.
    public static func fastRandomHex(_ byteCount: Int) -> String {
        randomPool.withLock { pool in pool.hex(byteCount) }
    }

    /// A `$2b$` bcrypt hash of the password at the given cost, or nil if libxcrypt refused.
    public static func bcryptHash(_ password: String, cost: Int) -> String? {
        let salt = randomBytes(16)
        var setting = [CChar](repeating: 0, count: Int(CRYPT_GENSALT_OUTPUT_SIZE))
        let made = salt.withUnsafeBufferPointer { raw in
            raw.baseAddress!.withMemoryRebound(to: CChar.self, capacity: raw.count) {
                crypt_gensalt_rn(
                    "$2b$", UInt(cost), $0, Int32(raw.count), &setting, Int32(setting.count))
            }
        }
        guard made != nil else { return nil }
        return crypt(password, setting: setting)
    }

    /// Checks a password against a stored bcrypt hash in constant time.
    public static func bcryptVerify(_ password: String, hash: String) -> Bool {
        guard hash.hasPrefix("$2"), let computed = crypt(password, setting: Array(hash.utf8CString))
        else {
            return false
        }
        return constantTimeEqual(Array(computed.utf8), Array(hash.utf8))
    }

    private static func crypt(_ password: String, setting: [CChar]) -> String? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        memset(data, 0, MemoryLayout<crypt_data>.size)
        guard let result = crypt_rn(password, setting, data, Int32(MemoryLayout<crypt_data>.size))
        else {
            return nil
        }
        let text = String(cString: result)
        return text.hasPrefix("*") ? nil : text
    }
}

/// Base64url without padding, as JWTs use it; translated byte by byte to Foundation's base64.
public enum Base64URL {
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 4 / 3 + 4)
        for byte in Data(bytes).base64EncodedData() {
            switch byte {
            case UInt8(ascii: "+"): out.append(UInt8(ascii: "-"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "_"))
            case UInt8(ascii: "="): continue
            default: out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: Substring) -> [UInt8]? {
        var bytes = [UInt8]()
        bytes.reserveCapacity(text.utf8.count + 3)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "-"): bytes.append(UInt8(ascii: "+"))
            case UInt8(ascii: "_"): bytes.append(UInt8(ascii: "/"))
            case UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "/"): return nil
            default: bytes.append(byte)
            }
        }
        while bytes.count % 4 != 0 { bytes.append(UInt8(ascii: "=")) }
        return Data(base64Encoded: Data(bytes)).map { Array($0) }
    }
}

/// Random bytes drawn from `arc4random_buf` in blocks and handed out in small pieces.
struct RandomPool: ~Copyable {
    private var buffer = [UInt8](repeating: 0, count: 4096)
    private var used = 4096

    mutating func hex(_ byteCount: Int) -> String {
        guard byteCount <= buffer.count else {
            var bytes = [UInt8](repeating: 0, count: byteCount)
            arc4random_buf(&bytes, byteCount)
            return Hex.encode(bytes)
        }
        if used + byteCount > buffer.count {
            buffer.withUnsafeMutableBytes { raw in
                if let base = raw.baseAddress { arc4random_buf(base, raw.count) }
            }
            used = 0
        }
        let start = used
        used += byteCount
        return buffer.withUnsafeBytes { raw in
            Hex.encode(UnsafeRawBufferPointer(rebasing: raw[start..<start + byteCount]))
        }
    }
}

private let randomPool = Mutex(RandomPool())
