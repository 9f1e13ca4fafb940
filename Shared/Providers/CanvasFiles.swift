import Core
import FoundationEssentials
import JSONKit

/// The `type` enum of `chat_canvas_files`, and the type a file name suggests.
public enum CanvasFileType {
    public static let all = ["html", "css", "js", "tsx", "json", "image", "other"]

    public static func infer(fromName name: String) -> String {
        let ext =
            name.split(separator: ".").count > 1
            ? name.split(separator: ".").last.map(String.init) : nil
        switch ext?.lowercased() {
        case "html", "htm": return "html"
        case "css": return "css"
        case "js", "mjs", "cjs": return "js"
        case "tsx": return "tsx"
        case "json": return "json"
        case "png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "avif": return "image"
        default: return "other"
        }
    }
}

/// File paths inside a project: `/` plus segments joined by `/` (`/index.html`,
/// `/css/site.css`). A leading `/` or `./` is optional on input; `.` segments are dropped.
/// Refused: `..`, empty segments (`a//b`, a trailing `/`, a leading `//`), backslashes,
/// drive letters and other colons, `~` as the first segment, control characters, segments over
/// 255 bytes, more than 32 segments or more than 1024 characters. Paths are compared in NFC.
public enum CanvasPath {
    public static let maxLength = 1024
    public static let maxDepth = 32

    /// The normalised path, or why the input is not one. Text is put in Unicode NFC first, so
    /// `é` typed as one character or as `e` and an accent names the same file.
    public static func normalise(_ input: String) -> Result<String, PathError> {
        let raw = input.nfc
        guard !raw.isEmpty else { return .failure(PathError("must not be empty")) }
        guard raw.unicodeScalars.count <= maxLength else {
            return .failure(PathError("must be at most \(maxLength) characters"))
        }
        if raw.unicodeScalars.contains(where: {
            $0.value < 0x20 || (0x7F...0x9F).contains($0.value)
        }) {
            return .failure(PathError("must not contain control characters"))
        }
        // By code point: a `\` or `:` followed by an accent is one Character, not `\` or `:`.
        if raw.unicodeScalars.contains("\\") {
            return .failure(PathError("must use / as the separator, not \\"))
        }
        if raw.unicodeScalars.contains(":") {
            return .failure(PathError("must not contain ':' (drive letters, URLs)"))
        }
        // Split by code point too: `/` and an accent after it make one Character, and `..`
        // before such a `/` must still be seen as a segment of its own.
        var rest = Substring(raw).unicodeScalars
        if rest.first == "/" { rest = rest.dropFirst() }
        var segments: [String] = []
        for scalars in rest.split(separator: "/", omittingEmptySubsequences: false) {
            let part = String(Substring(scalars))
            if scalars.first?.isCombiningMark == true {
                return .failure(PathError("a segment must not start with a combining mark"))
            }
            switch part {
            case "":
                return .failure(
                    PathError("must not contain empty segments ('//' or a trailing '/')"))
            case ".":
                continue
            case "..":
                return .failure(PathError("must not contain '..'"))
            default:
                guard part.utf8.count <= 255 else {
                    return .failure(PathError("each segment must be at most 255 bytes"))
                }
                if segments.isEmpty && scalars.first == "~" {
                    return .failure(PathError("must not start with '~'"))
                }
                segments.append(part)
            }
        }
        guard !segments.isEmpty else { return .failure(PathError("must name a file")) }
        guard segments.count <= maxDepth else {
            return .failure(PathError("must have at most \(maxDepth) segments"))
        }
        return .success("/" + segments.joined(separator: "/"))
    }

    /// The folders a normalised path lies in, outermost first: `/a/b/c` is in `/a` and `/a/b`.
    public static func folders(of path: String) -> [String] {
        var folders: [String] = []
        var folder = ""
        for segment in path.unicodeScalars.split(separator: "/").dropLast() {
            folder += "/" + String(Substring(segment))
            folders.append(folder)
        }
        return folders
    }

    /// The last segment of a normalised path: the file's `name`.
    public static func name(of path: String) -> String {
        path.unicodeScalars.split(separator: "/").last.map { String(Substring($0)) } ?? path
    }

    public struct PathError: Error, Sendable, Equatable {
        public let message: String
        init(_ message: String) { self.message = message }
    }
}

/// One file a provider made, validated.
public struct GeneratedFile: Sendable, Equatable {
    public let path: String
    public let name: String
    public let type: String
    public let content: String
    public let metadata: Document

    public init(path: String, type: String, content: String, metadata: Document) {
        self.path = path
        self.name = CanvasPath.name(of: path)
        self.type = type
        self.content = content
        self.metadata = metadata
    }

    public var size: Int { content.utf8.count }
}

/// Limits on what a generation may write.
public struct CanvasLimits: Sendable {
    public let maxFileBytes: Int
    public let maxFiles: Int

    public init(maxFileBytes: Int, maxFiles: Int) {
        self.maxFileBytes = maxFileBytes
        self.maxFiles = maxFiles
    }
}

/// The JSON shape models are asked to answer in, and its validation:
///
/// ```json
/// {"files": [{"path": "index.html", "type": "html", "content": "<!DOCTYPE html>...",
///             "metadata": {"language": "html", "framework": "vanilla", "dependencies": []}}]}
/// ```
///
/// `path` and `content` are required; `type` (from the files enum) is inferred from the
/// extension when missing; `metadata` is optional. Other keys are ignored. The whole answer may
/// be wrapped in a ```json fence. Paths follow `CanvasPath` and must be unique.
public enum CanvasFileSet {
    public static let shapeDescription = """
        Answer with one JSON object and nothing else, in this shape:
        {"files": [{"path": "index.html", "type": "html", "content": "<full file text>",
          "metadata": {"language": "html", "framework": "vanilla", "dependencies": []}}]}
        "path" is relative to the project root, with "/" between folders and no "..".
        "type" is one of: html, css, js, tsx, json, image, other.
        Give every file in full; do not abbreviate content.
        """

    public static func parse(_ text: String, limits: CanvasLimits) -> Result<
        [GeneratedFile], Invalid
    > {
        let root: Value
        do {
            root = try JSONParser.parse(Array(unfenced(text).utf8))
        } catch {
            return .failure(Invalid("the answer is not JSON: \(error.message)"))
        }
        guard let files = root.documentValue?["files"]?.arrayValue else {
            return .failure(Invalid("the answer has no \"files\" array"))
        }
        guard !files.isEmpty else { return .failure(Invalid("the answer has no files")) }
        guard files.count <= limits.maxFiles else {
            return .failure(
                Invalid(
                    "the answer has \(files.count) files; at most \(limits.maxFiles) are allowed"))
        }
        var result: [GeneratedFile] = []
        var seen: Set<String> = []
        for (index, item) in files.enumerated() {
            guard let file = item.documentValue else {
                return .failure(Invalid("files[\(index)] is not an object"))
            }
            guard let rawPath = file["path"]?.stringValue else {
                return .failure(Invalid("files[\(index)].path is missing or not a string"))
            }
            let path: String
            switch CanvasPath.normalise(rawPath) {
            case .success(let normal): path = normal
            case .failure(let error):
                return .failure(Invalid("files[\(index)].path \(error.message)"))
            }
            guard seen.insert(path).inserted else {
                return .failure(Invalid("files[\(index)].path repeats \(path)"))
            }
            guard let content = file["content"]?.stringValue else {
                return .failure(Invalid("files[\(index)].content is missing or not a string"))
            }
            guard content.utf8.count <= limits.maxFileBytes else {
                return .failure(
                    Invalid("files[\(index)] is larger than \(limits.maxFileBytes) bytes"))
            }
            var type = CanvasFileType.infer(fromName: CanvasPath.name(of: path))
            if let given = file["type"] {
                guard let text = given.stringValue, CanvasFileType.all.contains(text) else {
                    let types = CanvasFileType.all.joined(separator: ", ")
                    return .failure(Invalid("files[\(index)].type must be one of \(types)"))
                }
                type = text
            }
            let metadata = sanitisedMetadata(file["metadata"]?.documentValue)
            result.append(
                GeneratedFile(path: path, type: type, content: content, metadata: metadata))
        }
        // A file inside another file (`/a` and `/a/b`) could not be stored or unpacked.
        for path in seen {
            if let parent = CanvasPath.folders(of: path).first(where: seen.contains) {
                return .failure(Invalid("\(path) is inside the file \(parent)"))
            }
        }
        return .success(result)
    }

    /// Why an answer is not a usable file set.
    public struct Invalid: Error, Sendable {
        public let message: String
        init(_ message: String) { self.message = message }
    }

    /// Keeps the spec's metadata fields with the right types; drops anything else.
    public static func sanitisedMetadata(_ raw: Document?) -> Document {
        var clean = Document()
        guard let raw else { return ["dependencies": []] }
        if let language = raw["language"]?.stringValue {
            clean["language"] = .string(String(language.prefix(50)))
        }
        if let framework = raw["framework"]?.stringValue {
            clean["framework"] = .string(String(framework.prefix(50)))
        }
        let deps = (raw["dependencies"]?.arrayValue ?? []).compactMap { $0.stringValue }.prefix(50)
        clean["dependencies"] = .array(deps.map { .string(String($0.prefix(100))) })
        return clean
    }

    /// The text inside a ``` fence when the whole answer is one; else the text itself.
    static func unfenced(_ text: String) -> String {
        let trimmed = text.trimmingWhitespace
        guard trimmed.hasPrefix("```"), trimmed.hasSuffix("```"), trimmed.count >= 6 else {
            return trimmed
        }
        var inner = trimmed.dropFirst(3).dropLast(3)
        if let newline = inner.firstIndex(of: "\n") {
            inner = inner[inner.index(after: newline)...]
        }
        return inner.trimmingWhitespace
    }
}
