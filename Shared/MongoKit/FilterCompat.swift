import Core

/// Rewrites filters into forms that mean the same on MongoDB and that the stand-in
/// (nx-27017 0.8.1) also evaluates right:
/// - `{field: ObjectId}` becomes `{field: {$in: [ObjectId]}}`: plain equality on a non-`_id`
///   ObjectId field matches nothing there.
/// - `{a: 1, $or: [...]}` becomes `{$and: [{a: 1}, {$or: [...]}]}`: next to other fields, the
///   stand-in lets an `$or` branch match documents that fail the other fields.
enum FilterCompat {
    static func rewrite(_ filter: Document) -> Document {
        let rewritten = Document(
            filter.pairs.map { pair -> (String, Value) in
                switch (pair.key, pair.value) {
                case ("_id", _):
                    return (pair.key, pair.value)
                case (let key, .objectId) where !key.hasPrefix("$"):
                    return (key, ["$in": [pair.value]])
                case ("$or", .array(let branches)), ("$and", .array(let branches)),
                    ("$nor", .array(let branches)):
                    return (
                        pair.key,
                        .array(
                            branches.map { branch in
                                branch.documentValue.map { .document(rewrite($0)) } ?? branch
                            })
                    )
                default:
                    return (pair.key, pair.value)
                }
            })
        guard let or = rewritten["$or"], rewritten.count > 1 else { return rewritten }
        let rest = rewritten.removing(["$or"])
        return ["$and": [.document(rest), .document(["$or": or])]]
    }
}
