import CMongoc
import Core
import FoundationEssentials

/// What went wrong in a MongoDB call: unreachable, a duplicate key, or another server error.
public struct MongoError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable { case unavailable, duplicateKey, server, client }
    public let kind: Kind
    public let code: Int
    public let message: String

    public var description: String { "mongodb \(kind) (\(code)): \(message)" }

    static func from(_ error: bson_error_t) -> MongoError {
        var copy = error
        let message = withUnsafeBytes(of: &copy.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        let code = Int(error.code)
        let domain = Int(error.domain)
        let unreachableDomains = [
            Int(MONGOC_ERROR_STREAM.rawValue), Int(MONGOC_ERROR_SERVER_SELECTION.rawValue),
            Int(MONGOC_ERROR_CLIENT.rawValue),
        ]
        if code == 11000 || code == 11001 {
            return MongoError(kind: .duplicateKey, code: code, message: message)
        }
        if unreachableDomains.contains(domain) {
            return MongoError(kind: .unavailable, code: code, message: message)
        }
        return MongoError(kind: .server, code: code, message: message)
    }
}

/// Counts an update reports.
public struct UpdateResult: Sendable {
    public let matched: Int
    public let modified: Int
    public let upsertedId: Value?
}

/// A thread-safe pool of libmongoc clients; one client is popped per operation.
public final class MongoPool: @unchecked Sendable {
    private let pool: OpaquePointer
    private let uri: OpaquePointer
    public let databaseName: String

    private static let initialize: Void = {
        mongoc_init()
        DriverLog.install
    }()

    public init(uri text: String, appName: String) throws(MongoError) {
        _ = MongoPool.initialize
        var error = bson_error_t()
        guard let uri = mongoc_uri_new_with_error(text, &error) else {
            throw MongoError.from(error)
        }
        if !text.contains("serverSelectionTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, 3000)
        }
        if !text.contains("socketTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 10_000)
        }
        if !text.contains("connectTimeoutMS") {
            mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS, 2000)
        }
        guard let pool = mongoc_client_pool_new(uri) else {
            mongoc_uri_destroy(uri)
            throw MongoError(kind: .client, code: 0, message: "cannot create a client pool")
        }
        mongoc_client_pool_set_error_api(pool, 2)
        mongoc_client_pool_set_appname(pool, appName)
        self.uri = uri
        self.pool = pool
        let name = mongoc_uri_get_database(uri).map { String(cString: $0) }
        databaseName = name ?? "universal_chat"
    }

    deinit {
        mongoc_client_pool_destroy(pool)
        mongoc_uri_destroy(uri)
    }

    func withClient<R>(_ body: (OpaquePointer) throws(MongoError) -> R) throws(MongoError) -> R {
        guard let client = mongoc_client_pool_pop(pool) else {
            throw MongoError(kind: .unavailable, code: 0, message: "no client available")
        }
        defer { mongoc_client_pool_push(pool, client) }
        return try body(client)
    }

    public func collection(_ name: String) -> MongoCollection {
        MongoCollection(pool: self, database: databaseName, name: name)
    }

    /// Runs a database command and returns the server's reply document.
    @discardableResult
    public func command(_ command: Document) throws(MongoError) -> Document {
        try withClient { client throws(MongoError) in
            let cmd = BSONBridge.make(command)
            defer { uc_bson_free(cmd) }
            let reply = uc_bson_alloc()!
            defer { uc_bson_free(reply) }
            var error = bson_error_t()
            guard mongoc_client_command_simple(client, databaseName, cmd, nil, reply, &error) else {
                throw MongoError.from(error)
            }
            return BSONBridge.read(reply)
        }
    }

    /// True when the server answers a ping.
    public func ping() -> Bool {
        (try? command(["ping": 1])) != nil
    }
}

/// One collection: CRUD and aggregation over `Document`s.
public struct MongoCollection: Sendable {
    let pool: MongoPool
    public let database: String
    public let name: String

    private func with<R>(_ body: (OpaquePointer) throws(MongoError) -> R) throws(MongoError) -> R {
        try pool.withClient { client throws(MongoError) in
            guard let collection = mongoc_client_get_collection(client, database, name) else {
                throw MongoError(kind: .client, code: 0, message: "no collection \(name)")
            }
            defer { mongoc_collection_destroy(collection) }
            return try body(collection)
        }
    }

    public func insertOne(_ document: Document) throws(MongoError) {
        try with { collection throws(MongoError) in
            let doc = BSONBridge.make(document)
            defer { uc_bson_free(doc) }
            var error = bson_error_t()
            guard mongoc_collection_insert_one(collection, doc, nil, nil, &error) else {
                throw MongoError.from(error)
            }
        }
    }

    /// Inserts in one call; with `ordered: false` duplicates are skipped and counted.
    @discardableResult
    public func insertMany(_ documents: [Document], ordered: Bool = true) throws(MongoError) -> Int
    {
        guard !documents.isEmpty else { return 0 }
        return try with { collection throws(MongoError) in
            var docs = documents.map { BSONBridge.make($0) }
            defer { docs.forEach { uc_bson_free($0) } }
            let opts = BSONBridge.make(["ordered": .bool(ordered)])
            defer { uc_bson_free(opts) }
            let reply = uc_bson_alloc()!
            defer { uc_bson_free(reply) }
            var error = bson_error_t()
            var pointers: [OpaquePointer?] = docs
            let ok = mongoc_collection_insert_many(
                collection, &pointers, pointers.count, opts, reply, &error)
            let inserted = Int(BSONBridge.read(reply)["insertedCount"]?.intValue ?? 0)
            if !ok {
                let failure = MongoError.from(error)
                if failure.kind == .duplicateKey && !ordered { return inserted }
                throw failure
            }
            return inserted
        }
    }

    public func find(
        _ filter: Document, sort: Document? = nil, limit: Int? = nil, skip: Int? = nil,
        projection: Document? = nil
    ) throws(MongoError) -> [Document] {
        var options = Document()
        if let sort { options["sort"] = .document(sort) }
        if let limit { options["limit"] = .int64(Int64(limit)) }
        if let skip, skip > 0 { options["skip"] = .int64(Int64(skip)) }
        if let projection { options["projection"] = .document(projection) }
        return try with { collection throws(MongoError) in
            let query = BSONBridge.make(FilterCompat.rewrite(filter))
            defer { uc_bson_free(query) }
            let opts = BSONBridge.make(options)
            defer { uc_bson_free(opts) }
            guard let cursor = mongoc_collection_find_with_opts(collection, query, opts, nil) else {
                throw MongoError(kind: .client, code: 0, message: "find failed")
            }
            defer { mongoc_cursor_destroy(cursor) }
            return try drain(cursor)
        }
    }

    public func findOne(
        _ filter: Document, sort: Document? = nil, projection: Document? = nil
    ) throws(MongoError) -> Document? {
        try find(filter, sort: sort, limit: 1, projection: projection).first
    }

    public func aggregate(_ pipeline: [Document]) throws(MongoError) -> [Document] {
        try with { collection throws(MongoError) in
            let stages = BSONBridge.make(["pipeline": .array(pipeline.map { .document($0) })])
            defer { uc_bson_free(stages) }
            guard
                let cursor = mongoc_collection_aggregate(
                    collection, MONGOC_QUERY_NONE, stages, nil, nil)
            else { throw MongoError(kind: .client, code: 0, message: "aggregate failed") }
            defer { mongoc_cursor_destroy(cursor) }
            return try drain(cursor)
        }
    }

    private func drain(_ cursor: OpaquePointer) throws(MongoError) -> [Document] {
        var results: [Document] = []
        var current: OpaquePointer?
        while mongoc_cursor_next(cursor, &current) {
            if let current { results.append(BSONBridge.read(current)) }
        }
        var error = bson_error_t()
        if mongoc_cursor_error(cursor, &error) { throw MongoError.from(error) }
        return results
    }

    @discardableResult
    public func updateOne(_ filter: Document, _ update: Document, upsert: Bool = false)
        throws(MongoError)
        -> UpdateResult
    {
        try change(filter, update, upsert: upsert, many: false)
    }

    @discardableResult
    public func updateMany(_ filter: Document, _ update: Document) throws(MongoError)
        -> UpdateResult
    {
        try change(filter, update, upsert: false, many: true)
    }

    private func change(_ filter: Document, _ update: Document, upsert: Bool, many: Bool)
        throws(MongoError)
        -> UpdateResult
    {
        try with { collection throws(MongoError) in
            let selector = BSONBridge.make(FilterCompat.rewrite(filter))
            defer { uc_bson_free(selector) }
            let change = BSONBridge.make(update)
            defer { uc_bson_free(change) }
            let opts = BSONBridge.make(upsert ? ["upsert": true] : [:])
            defer { uc_bson_free(opts) }
            let reply = uc_bson_alloc()!
            defer { uc_bson_free(reply) }
            var error = bson_error_t()
            let ok =
                many
                ? mongoc_collection_update_many(collection, selector, change, opts, reply, &error)
                : mongoc_collection_update_one(collection, selector, change, opts, reply, &error)
            guard ok else { throw MongoError.from(error) }
            let result = BSONBridge.read(reply)
            return UpdateResult(
                matched: Int(result["matchedCount"]?.intValue ?? 0),
                modified: Int(result["modifiedCount"]?.intValue ?? 0),
                upsertedId: result["upsertedId"])
        }
    }

    /// Atomically updates one document and returns it (after the change unless `returnNew` is
    /// false), or nil when nothing matched.
    public func findOneAndUpdate(
        _ filter: Document, _ update: Document, upsert: Bool = false, returnNew: Bool = true,
        sort: Document? = nil, projection: Document? = nil
    ) throws(MongoError) -> Document? {
        try with { collection throws(MongoError) in
            let query = BSONBridge.make(FilterCompat.rewrite(filter))
            defer { uc_bson_free(query) }
            let change = BSONBridge.make(update)
            defer { uc_bson_free(change) }
            guard let opts = mongoc_find_and_modify_opts_new() else {
                throw MongoError(kind: .client, code: 0, message: "cannot allocate options")
            }
            defer { mongoc_find_and_modify_opts_destroy(opts) }
            mongoc_find_and_modify_opts_set_update(opts, change)
            var flags = MONGOC_FIND_AND_MODIFY_NONE.rawValue
            if upsert { flags |= MONGOC_FIND_AND_MODIFY_UPSERT.rawValue }
            if returnNew { flags |= MONGOC_FIND_AND_MODIFY_RETURN_NEW.rawValue }
            mongoc_find_and_modify_opts_set_flags(
                opts, mongoc_find_and_modify_flags_t(rawValue: flags))
            if let sort {
                let sortBSON = BSONBridge.make(sort)
                defer { uc_bson_free(sortBSON) }
                mongoc_find_and_modify_opts_set_sort(opts, sortBSON)
            }
            if let projection {
                let fields = BSONBridge.make(projection)
                defer { uc_bson_free(fields) }
                mongoc_find_and_modify_opts_set_fields(opts, fields)
            }
            let reply = uc_bson_alloc()!
            defer { uc_bson_free(reply) }
            var error = bson_error_t()
            guard
                mongoc_collection_find_and_modify_with_opts(collection, query, opts, reply, &error)
            else {
                throw MongoError.from(error)
            }
            return BSONBridge.read(reply)["value"]?.documentValue
        }
    }

    @discardableResult
    public func deleteOne(_ filter: Document) throws(MongoError) -> Int {
        try delete(filter, many: false)
    }

    @discardableResult
    public func deleteMany(_ filter: Document) throws(MongoError) -> Int {
        try delete(filter, many: true)
    }

    private func delete(_ filter: Document, many: Bool) throws(MongoError) -> Int {
        try with { collection throws(MongoError) in
            let selector = BSONBridge.make(FilterCompat.rewrite(filter))
            defer { uc_bson_free(selector) }
            let reply = uc_bson_alloc()!
            defer { uc_bson_free(reply) }
            var error = bson_error_t()
            let ok =
                many
                ? mongoc_collection_delete_many(collection, selector, nil, reply, &error)
                : mongoc_collection_delete_one(collection, selector, nil, reply, &error)
            guard ok else { throw MongoError.from(error) }
            return Int(BSONBridge.read(reply)["deletedCount"]?.intValue ?? 0)
        }
    }

    /// Counts matching documents by reading their ids: the stand-in's `count` command and
    /// `$count` stage fail on ObjectId values, so this stays exact on both servers.
    // TODO: use the count command on real MongoDB once the stand-in answers it with ObjectIds.
    public func count(_ filter: Document) throws(MongoError) -> Int {
        try find(filter, projection: ["_id": 1]).count
    }

    /// True when at least one document matches.
    public func exists(_ filter: Document) throws(MongoError) -> Bool {
        try find(filter, limit: 1, projection: ["_id": 1]).isEmpty == false
    }
}
