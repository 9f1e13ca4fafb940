// swift-tools-version:6.0
import PackageDescription

/// Universal Chat: a gateway and four services that talk over Redis streams.
let package = Package(
    name: "UniversalChat",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "gateway", targets: ["Gateway"]),
        .executable(name: "sessions", targets: ["Sessions"]),
        .executable(name: "settings", targets: ["Settings"]),
        .executable(name: "feedback", targets: ["Feedback"]),
        .executable(name: "canvas", targets: ["Canvas"]),
        .executable(name: "uc-admin", targets: ["Admin"]),
        .executable(name: "uc-bench", targets: ["Bench"]),
    ],
    targets: [
        .systemLibrary(name: "CHiredis", path: "Shared/CHiredis", pkgConfig: "hiredis"),
        .systemLibrary(name: "CMongoc", path: "Shared/CMongoc", pkgConfig: "libmongoc-1.0"),
        .systemLibrary(name: "CMicroHTTPD", path: "Shared/CMicroHTTPD", pkgConfig: "libmicrohttpd"),
        .systemLibrary(name: "CJansson", path: "Shared/CJansson", pkgConfig: "jansson"),
        .systemLibrary(name: "COpenSSL", path: "Shared/COpenSSL", pkgConfig: "libcrypto"),
        .systemLibrary(name: "CCrypt", path: "Shared/CCrypt", pkgConfig: "libcrypt"),
        .systemLibrary(name: "CZip", path: "Shared/CZip", pkgConfig: "libzip"),
        .systemLibrary(name: "CCurl", path: "Shared/CCurl", pkgConfig: "libcurl"),
        .systemLibrary(name: "CSignal", path: "Shared/CSignal"),
        .systemLibrary(name: "CEpoll", path: "Shared/CEpoll"),

        .target(name: "Core", dependencies: ["CSignal", "CEpoll"], path: "Shared/Core"),
        .target(name: "JSONKit", dependencies: ["Core", "CJansson"], path: "Shared/JSONKit"),
        .target(
            name: "Crypt", dependencies: ["Core", "JSONKit", "COpenSSL", "CCrypt"],
            path: "Shared/Crypt"),
        .target(name: "RedisKit", dependencies: ["Core", "CHiredis"], path: "Shared/RedisKit"),
        .target(name: "MongoKit", dependencies: ["Core", "CMongoc"], path: "Shared/MongoKit"),
        .target(name: "HTTPKit", dependencies: ["Core", "CMicroHTTPD"], path: "Shared/HTTPKit"),
        .target(
            name: "Providers", dependencies: ["Core", "JSONKit", "CCurl"],
            path: "Shared/Providers"),
        .target(
            name: "Bus",
            dependencies: ["Core", "JSONKit", "Crypt", "RedisKit", "HTTPKit"],
            path: "Shared/Bus"
        ),
        .target(
            name: "ServiceKit",
            dependencies: ["Core", "JSONKit", "Crypt", "RedisKit", "MongoKit", "HTTPKit", "Bus"],
            path: "Shared/ServiceKit"
        ),

        .executableTarget(
            name: "Gateway",
            dependencies: ["Core", "JSONKit", "Crypt", "RedisKit", "HTTPKit", "Bus"],
            path: "Services/Gateway"
        ),
        .executableTarget(
            name: "Sessions",
            dependencies: [
                "Core", "JSONKit", "MongoKit", "RedisKit", "Bus", "ServiceKit", "Providers",
            ],
            path: "Services/Sessions"
        ),
        .executableTarget(
            name: "Settings",
            dependencies: [
                "Core", "JSONKit", "Crypt", "MongoKit", "RedisKit", "Bus", "ServiceKit",
            ],
            path: "Services/Settings"
        ),
        .executableTarget(
            name: "Feedback",
            dependencies: ["Core", "JSONKit", "MongoKit", "RedisKit", "Bus", "ServiceKit"],
            path: "Services/Feedback"
        ),
        .executableTarget(
            name: "Canvas",
            dependencies: [
                "Core", "JSONKit", "Crypt", "MongoKit", "RedisKit", "Bus", "ServiceKit",
                "Providers", "CZip",
            ],
            path: "Services/Canvas"
        ),
        .executableTarget(
            name: "Admin",
            dependencies: ["Core", "JSONKit", "Crypt", "RedisKit", "MongoKit", "Bus"],
            path: "Services/Admin"
        ),
        .executableTarget(
            name: "Bench",
            dependencies: ["Core", "HTTPKit", "MongoKit"],
            path: "bench/Tool"
        ),

        .testTarget(
            name: "UnitTests",
            dependencies: [
                "Core", "JSONKit", "Crypt", "Bus", "Settings", "Providers", "MongoKit", "RedisKit",
            ],
            path: "Tests/UnitTests"
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["Core", "JSONKit", "Crypt", "RedisKit", "MongoKit", "Bus", "Providers"],
            path: "Tests/IntegrationTests",
            exclude: ["Fixtures"]
        ),
    ]
)
