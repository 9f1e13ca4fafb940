import Bus
import Core
import Providers
import Testing

@Suite("Canvas paths, file sets, the template site and reply frames")
struct CanvasUnitTests {
    @Test(arguments: [
        ("index.html", "/index.html"), ("/index.html", "/index.html"),
        ("./css/./site.css", "/css/site.css"),
        ("project/index.html", "/project/index.html"), ("a b/ü.txt", "/a b/ü.txt"),
        ("e|f.js", "/e|f.js"),
    ])
    func acceptedPathsAreNormalised(raw: String, normal: String) throws {
        #expect(try CanvasPath.normalise(raw).get() == normal)
    }

    @Test(arguments: [
        "", "/", "..", "../a", "a/../b", "a/..", "a//b", "a/", "//server/share", "C:\\x", "c:/x",
        "\\..\\x",
        "a\\b", "~/x", "~", "a/\u{0}b", "a/\u{1F}b", "a/\u{7F}b", "a/\u{80}b", "a\u{9F}",
        "a\\\u{301}b", "c:\u{301}/x",
        // `/` and an accent make one Character; the `..` and `~` before or after it still count.
        "../\u{301}evil.txt", "a/../\u{301}b", "/\u{301}/x.txt", "~\u{301}x", "\u{301}",
        ".", "./", "http://x/y",
        String(repeating: "a", count: 256), Array(repeating: "a", count: 33).joined(separator: "/"),
    ])
    func escapingOrEmptyPathsAreRefused(raw: String) {
        #expect(throws: CanvasPath.PathError.self) { try CanvasPath.normalise(raw).get() }
    }

    @Test func pathsAreComparedInNFC() throws {
        let composed = try CanvasPath.normalise("caf\u{00E9}/r\u{00E9}sum\u{00E9}.md").get()
        let decomposed = try CanvasPath.normalise("cafe\u{0301}/re\u{0301}sume\u{0301}.md").get()
        // Swift's == already treats the two as equal; MongoDB compares the stored bytes.
        #expect(Array(composed.utf8) == Array(decomposed.utf8))
        #expect(Array(composed.utf8) == Array("/caf\u{00E9}/r\u{00E9}sum\u{00E9}.md".utf8))
    }

    @Test func fileTypesFollowTheExtension() {
        #expect(CanvasFileType.infer(fromName: "a.HTM") == "html")
        #expect(CanvasFileType.infer(fromName: "x.mjs") == "js")
        #expect(CanvasFileType.infer(fromName: "logo.svg") == "image")
        #expect(CanvasFileType.infer(fromName: "Makefile") == "other")
        #expect(CanvasFileType.infer(fromName: ".env") == "other")
    }

    @Test func fileSetAnswersAreValidatedAsAWhole() {
        let limits = CanvasLimits(maxFileBytes: 10, maxFiles: 2)
        let good =
            #"```json"# + "\n"
            + #"{"files":[{"path":"a.js","content":"1"},"#
            + #"{"path":"b/c.css","type":"css","content":"x","extra":1}]}"#
            + "\n```"
        let files = (try? CanvasFileSet.parse(good, limits: limits).get()) ?? []
        #expect(files.map(\.path) == ["/a.js", "/b/c.css"])
        #expect(files.first?.type == "js" && files.first?.metadata == ["dependencies": []])
        let refused = [
            #"{"files":[]}"#, #"{"files":"x"}"#, #"[]"#,
            #"{"files":[{"path":"a","content":"01234567890"}]}"#,
            #"{"files":[{"path":"a","content":1}]}"#,
            #"{"files":[{"path":"a","content":"","type":"pdf"}]}"#,
            #"{"files":[{"path":"a","content":""},{"path":"/a","content":""}]}"#,
            #"{"files":[{"path":"a/b","content":""},{"path":"a","content":""}]}"#,
            #"{"files":[{"path":"a","content":""},{"path":"b","content":""},"#
                + #"{"path":"c","content":""}]}"#,
        ]
        for text in refused {
            #expect(throws: CanvasFileSet.Invalid.self, "\(text)") {
                try CanvasFileSet.parse(text, limits: limits).get()
            }
        }
    }

    @Test func headlineIsThePromptsFirstSentence() {
        #expect(
            TemplateCanvasProvider.headline(from: "  Launch Orbit today.  Then more.")
                == "Launch Orbit today")
        #expect(TemplateCanvasProvider.headline(from: "Line one\nLine two") == "Line one")
        #expect(TemplateCanvasProvider.headline(from: "v1.2 is here! Yes") == "v1.2 is here!")
        #expect(TemplateCanvasProvider.headline(from: "   ") == "Welcome")
        let long = Array(repeating: "word", count: 60).joined(separator: " ")
        #expect(TemplateCanvasProvider.headline(from: long).count <= 120)
    }

    @Test func templateSiteIsTheSameForTheSameRequest() throws {
        let request = CanvasRequest(
            prompt: "Hello <b>&", projectName: "P \"Q\"", template: "Blog", category: "x",
            theme: "dark")
        let one = try TemplateCanvasProvider().generate(request)
        let two = try TemplateCanvasProvider().generate(request)
        #expect(one.files == two.files)
        let html = one.files[0].content
        #expect(html.contains("<title>P &quot;Q&quot;</title>"))
        #expect(html.contains("Hello &lt;b&gt;&amp;"))
        #expect(html.contains("data-layout=\"Blog\""))

        // A `"` with an accent after it is one Character, and still ends an attribute.
        let accented = CanvasRequest(
            prompt: "Hello \"\u{301} onmouseover=alert(1) x=\"\u{301} end",
            projectName: "*/\u{301}x",
            template: "Blog", category: "x", theme: "dark")
        let site = try TemplateCanvasProvider().generate(accented).files
        func count(_ needle: String, in text: String) -> Int {
            let bytes = Array(text.utf8)
            let pattern = Array(needle.utf8)
            guard bytes.count >= pattern.count else { return 0 }
            return (0...(bytes.count - pattern.count)).filter {
                bytes[$0..<$0 + pattern.count].elementsEqual(pattern)
            }.count
        }
        let page = site[0].content
        #expect(count("\"\u{301}", in: page) == 0)
        #expect(count("&quot;\u{301} onmouseover=alert(1)", in: page) > 0)
        let css = try #require(site.first { $0.path.hasSuffix(".css") }?.content)
        let header = String(css.prefix { $0 != "\n" })
        #expect(header.hasPrefix("/* * /\u{301}x"))
        #expect(count("*/", in: header) == 1)
    }

    @Test func replyFramesCarryHeadersAndAnyBytes() throws {
        let body: [UInt8] = [0x50, 0x4B, 0x0A, 0x00, 0xFF, 0x0A]
        let reply = Reply(
            status: 200, body: body,
            headers: [
                ("Content-Type", "application/zip"), ("X-Bad", "a\r\nInjected: 1"),
                ("Content-Disposition", "x"),
            ])
        let (id, parsed) = try #require(Reply.parse(frame: reply.frame(requestId: "cmd1")))
        #expect(id == "cmd1" && parsed.status == 200 && parsed.body == body)
        #expect(parsed.headers.map(\.0) == ["Content-Type", "Content-Disposition"])
        #expect(parsed.headers.first?.1 == "application/zip")

        let plain = Reply(status: 404, body: Array(#"{"a":1}"#.utf8))
        #expect(plain.frame(requestId: "c") == Array("c\n404\n{\"a\":1}".utf8))
        let (_, back) = try #require(Reply.parse(frame: plain.frame(requestId: "c")))
        #expect(back.headers.isEmpty && back.body == plain.body)
        #expect(Reply.parse(frame: Array("c\n200 5\nA: b\n".utf8)) == nil)
    }
}
