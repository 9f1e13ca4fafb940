import Bus
import Core
import Foundation
import JSONKit
import Testing

/// openapi.json against the route table, and the copy the gateway embeds against openapi.json.
@Suite("The OpenAPI document")
struct OpenAPIContractTests {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/"
            && !FileManager.default.fileExists(
                atPath: url.appendingPathComponent("Package.swift").path)
        {
            url.deleteLastPathComponent()
        }
        return url
    }()

    /// What the gateway answers by itself, before the route table.
    static let gatewayRoutes = ["GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"]

    func document() throws -> Document {
        let data = try Data(contentsOf: Self.root.appendingPathComponent("openapi.json"))
        return try JSONParser.parseObject(Array(data))
    }

    /// `GET /api/chat/sessions/{id}` for every operation of the document.
    func documented(_ doc: Document) throws -> [String] {
        let paths = try #require(doc["paths"]?.documentValue)
        var operations: [String] = []
        for path in paths.pairs {
            for method in path.value.documentValue?.keys ?? [] {
                operations.append("\(method.uppercased()) \(path.key)")
            }
        }
        return operations
    }

    /// `:id` in the route table is `{id}` in the document.
    static func openAPIPath(_ route: Route) -> String {
        "/"
            + route.segments.map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : $0 }
            .joined(separator: "/")
    }

    @Test func everyRouteIsDocumentedAndEveryDocumentedOperationIsARoute() throws {
        let documented = Set(try documented(try document()))
        let routes = Set(
            Routes.all.map { "\($0.method) \(Self.openAPIPath($0))" } + Self.gatewayRoutes)
        #expect(
            routes.count == Routes.all.count + Self.gatewayRoutes.count, "a route is listed twice")
        let undocumented = routes.subtracting(documented).sorted()
        let unrouted = documented.subtracting(routes).sorted()
        #expect(undocumented.isEmpty, "routes missing from openapi.json: \(undocumented)")
        #expect(unrouted.isEmpty, "operations in openapi.json that no route serves: \(unrouted)")
    }

    @Test func routesWithoutATokenAreTheOnesDocumentedWithoutSecurity() throws {
        let doc = try document()
        for route in Routes.all {
            let operation = doc.value(at: "paths")?.documentValue?[Self.openAPIPath(route)]?
                .documentValue?[route.method.lowercased()]?.documentValue
            let open = operation?["security"]?.arrayValue?.isEmpty == true
            #expect(open == !route.authenticated, "\(route.method) \(route.path)")
            let statuses = operation?["responses"]?.documentValue?.keys ?? []
            if route.authenticated {
                #expect(statuses.contains("401"), "\(route.method) \(route.path)")
            }
            #expect(statuses.contains("503") && statuses.contains("504"), "\(route.path)")
        }
        #expect(
            doc.value(at: "components.securitySchemes.bearerAuth.scheme")?.stringValue == "bearer")
        #expect(doc["openapi"]?.stringValue == "3.1.0")
    }

    @Test func pathParametersMatchTheRouteTable() throws {
        let doc = try document()
        for route in Routes.all {
            let names = route.segments.filter { $0.hasPrefix(":") }.map { String($0.dropFirst()) }
            let operation = doc.value(at: "paths")?.documentValue?[Self.openAPIPath(route)]?
                .documentValue?[route.method.lowercased()]?.documentValue
            let declared = (operation?["parameters"]?.arrayValue ?? []).compactMap { parameter in
                parameter.documentValue?["in"]?.stringValue == "path"
                    ? parameter.documentValue?["name"]?.stringValue : nil
            }
            #expect(declared == names, "\(route.method) \(route.path)")
        }
    }

    @Test func gatewayEmbedsExactlyTheDocument() throws {
        let file = try String(
            contentsOf: Self.root.appendingPathComponent("openapi.json"), encoding: .utf8)
        let swift = try String(
            contentsOf: Self.root.appendingPathComponent("Services/Gateway/OpenAPIDocument.swift"),
            encoding: .utf8)
        let start = try #require(swift.range(of: "##\"\"\"\n"))
        let end = try #require(swift.range(of: "\n\"\"\"##", options: .backwards))
        let embedded = String(swift[start.upperBound..<end.lowerBound]) + "\n"
        #expect(Array(embedded.utf8) == Array(file.utf8), "run `make openapi`")
    }
}
