import Core
import FoundationEssentials

/// The offline canvas provider: builds a complete static site (index.html, styles.css, app.js,
/// README.md) from the project's template or category, its settings and the prompt, whose
/// first sentence becomes the page's headline. Same input, same bytes.
public struct TemplateCanvasProvider: CanvasProvider {
    public static let modelName = "static-site-v1"
    public let name = "template"

    public init() {}

    /// The layouts it knows; a template or category naming none of them gets `saasLanding`.
    public enum Layout: String, Sendable, CaseIterable {
        case saasLanding = "SaaS Landing"
        case portfolio = "Portfolio"
        case blog = "Blog"
        case dashboard = "Dashboard"

        static func pick(template: String, category: String) -> Layout {
            for text in [template, category] {
                let lower = text.lowercased()
                if lower.contains("dashboard") || lower.contains("admin") { return .dashboard }
                if lower.contains("portfolio") { return .portfolio }
                if lower.contains("blog") { return .blog }
                if lower.contains("saas") || lower.contains("landing") { return .saasLanding }
            }
            return .saasLanding
        }
    }

    public func generate(_ request: CanvasRequest) throws(ProviderError) -> CanvasGeneration {
        let site = TemplateSite(request)
        let meta: (String, String) -> Document = { language, framework in
            ["language": .string(language), "framework": .string(framework), "dependencies": []]
        }
        let files = [
            GeneratedFile(
                path: "/index.html", type: "html", content: site.html,
                metadata: meta("html", "vanilla")),
            GeneratedFile(
                path: "/styles.css", type: "css", content: site.css,
                metadata: meta("css", "vanilla")),
            GeneratedFile(
                path: "/app.js", type: "js", content: site.javascript,
                metadata: meta("javascript", "vanilla")),
            GeneratedFile(
                path: "/README.md", type: "other", content: site.readme,
                metadata: meta("markdown", "none")),
        ]
        return CanvasGeneration(
            files: files, provider: name, model: TemplateCanvasProvider.modelName, usage: .zero,
            attempts: 1)
    }

    /// The headline a prompt gives: its first sentence or line, white space collapsed, at most
    /// 120 characters (cut at a word).
    public static func headline(from prompt: String) -> String {
        var first = ""
        var previous: Character = " "
        for character in prompt.trimmingWhitespace {
            if character == "\n" { break }
            if [".", "!", "?"].contains(previous) && character == " " { break }
            first.append(character)
            previous = character
        }
        var words = first.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        while words.count > 1 && words.joined(separator: " ").count > 120 { words.removeLast() }
        let joined = words.joined(separator: " ")
        let trimmed = joined.hasSuffix(".") ? String(joined.dropLast()) : joined
        return trimmed.isEmpty ? "Welcome" : String(trimmed.prefix(120))
    }
}

/// HTML text with `& < > " '` escaped.
func escapeHTML(_ text: String) -> String {
    text.escapingScalars { scalar in
        switch scalar {
        case "&": return "&amp;"
        case "<": return "&lt;"
        case ">": return "&gt;"
        case "\"": return "&quot;"
        case "'": return "&#39;"
        default: return nil
        }
    }
}

/// The four files of one site.
struct TemplateSite {
    let request: CanvasRequest
    let layout: TemplateCanvasProvider.Layout
    let headline: String

    init(_ request: CanvasRequest) {
        self.request = request
        layout = .pick(template: request.template, category: request.category)
        headline = TemplateCanvasProvider.headline(from: request.prompt)
    }

    private var name: String { escapeHTML(request.projectName) }
    private var lead: String {
        escapeHTML(
            request.description.isEmpty
                ? "Made with the \(layout.rawValue) template." : request.description)
    }
    private var reveal: String { request.animations ? " reveal" : "" }

    var html: String {
        let theme = ["light", "dark", "auto"].contains(request.theme) ? request.theme : "light"
        let viewport =
            request.responsive
            ? "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            : "<meta name=\"viewport\" content=\"width=1100\">"
        return """
            <!DOCTYPE html>
            <html lang="en" data-theme="\(theme)" data-layout="\(layout.rawValue)" \
            data-animations="\(request.animations)">
            <head>
              <meta charset="utf-8">
              \(viewport)
              <title>\(name)</title>
              <meta name="description" content="\(escapeHTML(headline))">
              <link rel="stylesheet" href="styles.css">
            </head>
            <body class="layout-\(layout.slug)">
            \(body)
              <script src="app.js"></script>
            </body>
            </html>

            """
    }

    private var body: String {
        switch layout {
        case .saasLanding: return saasBody
        case .portfolio: return portfolioBody
        case .blog: return blogBody
        case .dashboard: return dashboardBody
        }
    }

    private func header(_ links: [(String, String)]) -> String {
        let items = links.map { "        <li><a href=\"\($0.0)\">\($0.1)</a></li>" }.joined(
            separator: "\n")
        return """
              <header class="site-header">
                <nav class="nav container" aria-label="Main">
                  <a class="brand" href="#top">\(name)</a>
                  <button class="nav-toggle" type="button" aria-expanded="false" \
            aria-controls="nav-links">Menu</button>
                  <ul id="nav-links" class="nav-links">
            \(items)
                  </ul>
                </nav>
              </header>
            """
    }

    private func hero(_ eyebrow: String, actions: String) -> String {
        """
            <section class="hero">
              <div class="container">
                <p class="eyebrow">\(escapeHTML(eyebrow))</p>
                <h1 id="headline">\(escapeHTML(headline))</h1>
                <p class="lead">\(lead)</p>
                \(actions)
              </div>
            </section>
        """
    }

    private var footer: String {
        """
          <footer class="site-footer">
            <div class="container">&copy; <span data-year>2024</span> \(name). All rights reserved.</div>
          </footer>
        """
    }

    private func cards(_ items: [(String, String)], columns: String = "three") -> String {
        let cards = items.map { title, text in
            """
                      <article class="card\(reveal)">
                        <h3>\(title)</h3>
                        <p>\(text)</p>
                      </article>
            """
        }
        return "        <div class=\"grid \(columns)\">\n" + cards.joined(separator: "\n")
            + "\n        </div>"
    }

    private var saasBody: String {
        let features = cards([
            ("Set up in minutes", "Connect your data and invite your team without writing code."),
            (
                "Real-time insights",
                "Dashboards refresh as events arrive, not at the end of the day."
            ),
            (
                "Secure by default",
                "Single sign-on, audit logs and encryption at rest on every plan."
            ),
            ("Built for teams", "Share views, leave comments and assign follow-ups in one place."),
            ("Integrations", "Works with the tools you already use through a documented API."),
            ("Friendly support", "Real people answer within hours, every day of the week."),
        ])
        let tiers = [
            ("Starter", "$0", "For side projects", ["1 project", "Community support"]),
            ("Pro", "$29", "For growing teams", ["Unlimited projects", "Priority support", "SSO"]),
            ("Business", "$99", "For organisations", ["Everything in Pro", "Audit logs", "SLA"]),
        ]
        let pricing = tiers.map { tier in
            let perks = tier.3.map { "              <li>\($0)</li>" }.joined(separator: "\n")
            return """
                      <article class="card price\(reveal)">
                        <h3>\(tier.0)</h3>
                        <p class="amount">\(tier.1)<span>/month</span></p>
                        <p>\(tier.2)</p>
                        <ul>
                \(perks)
                        </ul>
                        <a class="button" href="#signup">Choose \(tier.0)</a>
                      </article>
                """
        }.joined(separator: "\n")
        let actions =
            "<div class=\"actions\"><a class=\"button\" href=\"#signup\">Start free trial</a>"
            + "<a class=\"button ghost\" href=\"#features\">See features</a></div>"
        return header([
            ("#features", "Features"), ("#pricing", "Pricing"), ("#signup", "Get started"),
        ])
            + """

              <main id="top">
            \(hero(request.category, actions: actions))
                <section id="features" class="section">
                  <div class="container">
                    <h2>Everything you need</h2>
            \(features)
                  </div>
                </section>
                <section id="pricing" class="section alt">
                  <div class="container">
                    <h2>Simple pricing</h2>
                    <div class="grid three">
            \(pricing)
                    </div>
                  </div>
                </section>
                <section id="signup" class="section cta">
                  <div class="container narrow">
                    <h2>Start your free trial</h2>
                    <form class="signup" data-demo-form>
                      <label for="email">Work email</label>
                      <input id="email" type="email" name="email" required placeholder="you@company.com">
                      <button class="button" type="submit">Get started</button>
                      <p class="form-status" data-form-status role="status"></p>
                    </form>
                  </div>
                </section>
              </main>
            \(footer)
            """
    }

    private var portfolioActions: String {
        "<div class=\"actions\"><a class=\"button\" href=\"#work\">See my work</a></div>"
    }

    private var portfolioBody: String {
        let work = (1...6).map { index in
            """
                      <article class="card work\(reveal)">
                        <div class="thumb thumb-\(index)" role="img" aria-label="Project \(index) preview"></div>
                        <h3>Project \(index)</h3>
                        <p>\(["Brand identity", "Web app", "Editorial design", "Mobile app",
                               "Data story", "Campaign site"][index - 1])</p>
                      </article>
            """
        }.joined(separator: "\n")
        return header([("#work", "Work"), ("#about", "About"), ("#contact", "Contact")])
            + """

              <main id="top">
            \(hero(request.category, actions: portfolioActions))
                <section id="work" class="section">
                  <div class="container">
                    <h2>Selected work</h2>
                    <div class="grid three">
            \(work)
                    </div>
                  </div>
                </section>
                <section id="about" class="section alt">
                  <div class="container narrow">
                    <h2>About</h2>
                    <p>I design and build clear, fast websites and products for people who care \
            about the details.</p>
                  </div>
                </section>
                <section id="contact" class="section cta">
                  <div class="container narrow">
                    <h2>Let's work together</h2>
                    <form class="signup" data-demo-form>
                      <label for="email">Your email</label>
                      <input id="email" type="email" name="email" required placeholder="you@example.com">
                      <button class="button" type="submit">Say hello</button>
                      <p class="form-status" data-form-status role="status"></p>
                    </form>
                  </div>
                </section>
              </main>
            \(footer)
            """
    }

    private var blogBody: String {
        let posts = [
            ("Getting started", "2024-01-08", "A short guide to the ideas behind this blog."),
            ("Lessons from a year of shipping", "2024-02-14", "What went well, what did not."),
            ("Designing for clarity", "2024-03-21", "Fewer words, better structure, calmer pages."),
            ("Notes on performance", "2024-04-30", "Small habits that keep a site fast."),
        ]
        let list = posts.map { post in
            """
                      <article class="card post\(reveal)" data-post>
                        <p class="meta"><time datetime="\(post.1)">\(post.1)</time></p>
                        <h3><a href="#top">\(post.0)</a></h3>
                        <p>\(post.2)</p>
                      </article>
            """
        }.joined(separator: "\n")
        return header([("#posts", "Posts"), ("#about", "About")])
            + """

              <main id="top">
            \(hero(request.category, actions: ""))
                <section id="posts" class="section">
                  <div class="container with-sidebar">
                    <div class="posts">
                      <label class="search" for="post-search">Search posts</label>
                      <input id="post-search" type="search" placeholder="Search posts">
            \(list)
                    </div>
                    <aside id="about" class="card sidebar">
                      <h2>About</h2>
                      <p>\(lead)</p>
                      <h3>Topics</h3>
                      <ul class="tags"><li>design</li><li>engineering</li><li>notes</li></ul>
                    </aside>
                  </div>
                </section>
              </main>
            \(footer)
            """
    }

    private var dashboardBody: String {
        let kpis = [
            ("Revenue", "$48,210", "+12%"), ("Active users", "3,482", "+4%"),
            ("Conversion", "3.9%", "+0.3 pt"), ("Churn", "1.2%", "-0.2 pt"),
        ]
        let kpiCards = kpis.map { kpi in
            """
                      <article class="card kpi\(reveal)">
                        <h3>\(kpi.0)</h3>
                        <p class="amount">\(kpi.1)</p>
                        <p class="trend">\(kpi.2)</p>
                      </article>
            """
        }.joined(separator: "\n")
        let rows = [
            ("Acme Corp", "Pro", "1,240", "Active"), ("Globex", "Business", "8,900", "Active"),
            ("Initech", "Starter", "0", "Trial"), ("Umbrella", "Pro", "2,310", "Past due"),
        ]
        let tableRows = rows.map {
            "              <tr><td>\($0.0)</td><td>\($0.1)</td><td>$\($0.2)</td><td>\($0.3)</td></tr>"
        }.joined(separator: "\n")
        return """
              <div class="dashboard" id="top">
                <aside class="sidebar-nav">
                  <a class="brand" href="#top">\(name)</a>
                  <button class="nav-toggle" type="button" aria-expanded="false" \
            aria-controls="nav-links">Menu</button>
                  <ul id="nav-links" class="nav-links">
                    <li><a href="#overview">Overview</a></li>
                    <li><a href="#activity">Customers</a></li>
                  </ul>
                </aside>
                <main class="dashboard-main">
                  <header class="dashboard-header">
                    <p class="eyebrow">\(escapeHTML(request.category))</p>
                    <h1 id="headline">\(escapeHTML(headline))</h1>
                    <p class="lead">\(lead)</p>
                  </header>
                  <section id="overview" class="grid four">
            \(kpiCards)
                  </section>
                  <section class="card">
                    <h2>Monthly revenue</h2>
                    <div id="chart" class="chart" data-labels="Jan,Feb,Mar,Apr,May,Jun" \
            data-values="32,41,38,45,52,61" role="img" aria-label="Monthly revenue bar chart"></div>
                  </section>
                  <section id="activity" class="card">
                    <h2>Customers</h2>
                    <table data-sortable>
                      <thead><tr><th>Customer</th><th>Plan</th><th>MRR</th><th>Status</th></tr></thead>
                      <tbody>
            \(tableRows)
                      </tbody>
                    </table>
                  </section>
                </main>
              </div>
            """
    }

    var css: String {
        let light = """
              --bg: #ffffff; --surface: #f5f7fb; --text: #1b1f2a; --muted: #5b6475;
              --accent: #4f46e5; --accent-contrast: #ffffff; --border: #e3e7ef;
            """
        let dark = """
              --bg: #0f1117; --surface: #181b24; --text: #e8eaf0; --muted: #9aa3b5;
              --accent: #818cf8; --accent-contrast: #0f1117; --border: #2a2f3c;
            """
        var palette: String
        switch request.theme {
        case "dark": palette = ":root {\n\(dark)\n}\n"
        case "auto":
            palette =
                ":root {\n\(light)\n}\n@media (prefers-color-scheme: dark) {\n  :root {\n\(dark)\n  }\n}\n"
        default: palette = ":root {\n\(light)\n}\n"
        }
        var css = "/* \(request.projectName.replacingBytes(of: "*/", with: "* /")): "
        css +=
            "\(layout.rawValue) layout, theme \(request.theme). */\n" + palette
            + TemplateSite.baseCSS
        css += request.responsive ? TemplateSite.responsiveCSS : TemplateSite.fixedCSS
        if request.animations { css += TemplateSite.animationCSS }
        return css
    }

    static let baseCSS = """
        * { box-sizing: border-box; }
        html { scroll-behavior: smooth; }
        body {
          margin: 0; background: var(--bg); color: var(--text); line-height: 1.6;
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
        }
        a { color: var(--accent); }
        .container { max-width: 1100px; margin: 0 auto; padding: 0 1.25rem; }
        .narrow { max-width: 640px; }
        .site-header { border-bottom: 1px solid var(--border); background: var(--bg); }
        .nav { display: flex; align-items: center; justify-content: space-between; min-height: 64px; }
        .brand { font-weight: 700; font-size: 1.15rem; color: var(--text); text-decoration: none; }
        .nav-links { display: flex; gap: 1.25rem; list-style: none; margin: 0; padding: 0; }
        .nav-links a { color: var(--muted); text-decoration: none; }
        .nav-links a:hover { color: var(--text); }
        .nav-toggle { display: none; }
        .hero { padding: 5rem 0 4rem; background: var(--surface); text-align: center; }
        .hero h1 { font-size: 2.75rem; line-height: 1.15; margin: 0.25rem auto 1rem; max-width: 18em; }
        .eyebrow { text-transform: uppercase; letter-spacing: 0.08em; color: var(--accent); }
        .lead { font-size: 1.2rem; color: var(--muted); max-width: 40em; margin: 0 auto 2rem; }
        .actions { display: flex; gap: 0.75rem; justify-content: center; flex-wrap: wrap; }
        .button {
          display: inline-block; padding: 0.7rem 1.3rem; border-radius: 8px; border: 2px solid var(--accent);
          background: var(--accent); color: var(--accent-contrast); font-weight: 600;
          text-decoration: none; cursor: pointer; font-size: 1rem;
        }
        .button.ghost { background: transparent; color: var(--accent); }
        .section { padding: 4rem 0; }
        .section.alt { background: var(--surface); }
        .section h2 { text-align: center; font-size: 2rem; margin-top: 0; }
        .grid { display: grid; gap: 1.25rem; }
        .grid.three { grid-template-columns: repeat(3, 1fr); }
        .grid.four { grid-template-columns: repeat(4, 1fr); }
        .card {
          background: var(--bg); border: 1px solid var(--border); border-radius: 12px; padding: 1.5rem;
        }
        .card h3 { margin-top: 0; }
        .price .amount, .kpi .amount { font-size: 2rem; font-weight: 700; margin: 0.5rem 0; }
        .price .amount span { font-size: 1rem; color: var(--muted); font-weight: 400; }
        .price ul { padding-left: 1.2rem; color: var(--muted); }
        .cta { text-align: center; }
        .signup { display: grid; gap: 0.75rem; text-align: left; }
        .signup input, .search + input {
          padding: 0.7rem; border-radius: 8px; border: 1px solid var(--border);
          background: var(--surface); color: var(--text); font-size: 1rem; width: 100%;
        }
        .form-status { min-height: 1.5em; color: var(--accent); }
        .thumb { height: 160px; border-radius: 8px; margin-bottom: 1rem; }
        .thumb-1 { background: linear-gradient(135deg, #6366f1, #ec4899); }
        .thumb-2 { background: linear-gradient(135deg, #14b8a6, #3b82f6); }
        .thumb-3 { background: linear-gradient(135deg, #f59e0b, #ef4444); }
        .thumb-4 { background: linear-gradient(135deg, #22c55e, #0ea5e9); }
        .thumb-5 { background: linear-gradient(135deg, #a855f7, #6366f1); }
        .thumb-6 { background: linear-gradient(135deg, #f43f5e, #f97316); }
        .with-sidebar { display: grid; grid-template-columns: 2fr 1fr; gap: 2rem; align-items: start; }
        .posts { display: grid; gap: 1rem; }
        .post .meta { color: var(--muted); margin: 0; font-size: 0.9rem; }
        .search { font-weight: 600; }
        .tags { display: flex; gap: 0.5rem; list-style: none; padding: 0; flex-wrap: wrap; }
        .tags li { background: var(--surface); border-radius: 999px; padding: 0.2rem 0.7rem; }
        .dashboard { display: grid; grid-template-columns: 220px 1fr; min-height: 100vh; }
        .sidebar-nav { background: var(--surface); border-right: 1px solid var(--border); padding: 1.5rem; }
        .sidebar-nav .nav-links { flex-direction: column; margin-top: 1.5rem; }
        .dashboard-main { padding: 2rem; display: grid; gap: 1.5rem; align-content: start; }
        .dashboard-header h1 { margin: 0; font-size: 2rem; }
        .dashboard-header .lead { margin: 0.5rem 0 0; }
        .trend { color: var(--accent); margin: 0; }
        .chart { display: flex; align-items: flex-end; gap: 1rem; height: 220px; padding-top: 1rem; }
        .chart .bar {
          flex: 1; background: var(--accent); border-radius: 6px 6px 0 0; position: relative; min-height: 4px;
        }
        .chart .bar span {
          position: absolute; bottom: -1.6rem; left: 0; right: 0; text-align: center;
          color: var(--muted); font-size: 0.85rem;
        }
        table { width: 100%; border-collapse: collapse; margin-top: 2rem; }
        th, td { text-align: left; padding: 0.6rem; border-bottom: 1px solid var(--border); }
        th { cursor: pointer; color: var(--muted); }
        .site-footer { padding: 2rem 0; color: var(--muted); border-top: 1px solid var(--border); }

        """

    static let responsiveCSS = """
        @media (max-width: 900px) {
          .grid.three, .grid.four { grid-template-columns: repeat(2, 1fr); }
          .with-sidebar { grid-template-columns: 1fr; }
          .dashboard { grid-template-columns: 1fr; }
          .sidebar-nav { border-right: 0; border-bottom: 1px solid var(--border); }
        }
        @media (max-width: 600px) {
          .grid.three, .grid.four { grid-template-columns: 1fr; }
          .hero h1 { font-size: 2rem; }
          .nav-toggle {
            display: inline-block; background: none; border: 1px solid var(--border);
            color: var(--text); border-radius: 8px; padding: 0.4rem 0.8rem;
          }
          .nav-links { display: none; }
          .nav-links.open {
            display: flex; flex-direction: column; position: absolute; top: 64px; left: 0; right: 0;
            background: var(--bg); padding: 1rem 1.25rem; border-bottom: 1px solid var(--border);
          }
          .sidebar-nav .nav-links.open { position: static; padding: 0; }
        }

        """

    static let fixedCSS = """
        body { min-width: 1100px; }

        """

    static let animationCSS = """
        .hero h1, .hero .lead, .dashboard-header { animation: rise 0.7s ease-out both; }
        .button, .card { transition: transform 0.2s ease, box-shadow 0.2s ease; }
        .button:hover, .card:hover { transform: translateY(-2px); box-shadow: 0 8px 24px rgb(0 0 0 / 12%); }
        html.js .reveal { opacity: 0; transform: translateY(16px); transition: opacity 0.6s, transform 0.6s; }
        html.js .reveal.visible { opacity: 1; transform: none; }
        @keyframes rise { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }
        @media (prefers-reduced-motion: reduce) {
          *, *::before, *::after { animation: none !important; transition: none !important; }
          html.js .reveal { opacity: 1; transform: none; }
        }

        """

    var javascript: String {
        "// \(layout.rawValue) behaviour: navigation, reveal animations, forms, search, chart, sorting.\n"
            + TemplateSite.appJS
    }

    static let appJS = """
        (function () {
          "use strict";
          var root = document.documentElement;
          root.classList.add("js");
          var animations = root.getAttribute("data-animations") === "true";

          document.querySelectorAll("[data-year]").forEach(function (el) {
            el.textContent = String(new Date().getFullYear());
          });

          var toggle = document.querySelector(".nav-toggle");
          var links = document.getElementById("nav-links");
          if (toggle && links) {
            toggle.addEventListener("click", function () {
              var open = links.classList.toggle("open");
              toggle.setAttribute("aria-expanded", String(open));
            });
          }

          var hidden = document.querySelectorAll(".reveal");
          if (animations && "IntersectionObserver" in window) {
            var observer = new IntersectionObserver(function (entries) {
              entries.forEach(function (entry) {
                if (entry.isIntersecting) {
                  entry.target.classList.add("visible");
                  observer.unobserve(entry.target);
                }
              });
            }, { threshold: 0.1 });
            hidden.forEach(function (el) { observer.observe(el); });
          } else {
            hidden.forEach(function (el) { el.classList.add("visible"); });
          }

          document.querySelectorAll("form[data-demo-form]").forEach(function (form) {
            form.addEventListener("submit", function (event) {
              event.preventDefault();
              var status = form.querySelector("[data-form-status]");
              var email = form.querySelector("input[type=email]");
              if (status) {
                status.textContent = "Thanks! We will be in touch at " + (email ? email.value : "you") + ".";
              }
              form.reset();
            });
          });

          var search = document.getElementById("post-search");
          if (search) {
            search.addEventListener("input", function () {
              var query = search.value.trim().toLowerCase();
              document.querySelectorAll("[data-post]").forEach(function (post) {
                post.hidden = query !== "" && post.textContent.toLowerCase().indexOf(query) === -1;
              });
            });
          }

          var chart = document.getElementById("chart");
          if (chart) {
            var labels = (chart.getAttribute("data-labels") || "").split(",");
            var values = (chart.getAttribute("data-values") || "").split(",").map(Number);
            var max = Math.max.apply(null, values.concat([1]));
            values.forEach(function (value, index) {
              var bar = document.createElement("div");
              bar.className = "bar";
              bar.style.height = Math.round((value / max) * 100) + "%";
              bar.title = (labels[index] || "") + ": " + value;
              var label = document.createElement("span");
              label.textContent = labels[index] || "";
              bar.appendChild(label);
              chart.appendChild(bar);
            });
          }

          document.querySelectorAll("table[data-sortable] th").forEach(function (th, column) {
            th.addEventListener("click", function () {
              var table = th.closest("table");
              var body = table.tBodies[0];
              var rows = Array.prototype.slice.call(body.rows);
              var ascending = th.getAttribute("aria-sort") !== "ascending";
              rows.sort(function (a, b) {
                var x = a.cells[column].textContent;
                var y = b.cells[column].textContent;
                var nx = parseFloat(x.replace(/[^0-9.-]/g, ""));
                var ny = parseFloat(y.replace(/[^0-9.-]/g, ""));
                var order = !isNaN(nx) && !isNaN(ny) ? nx - ny : x.localeCompare(y);
                return ascending ? order : -order;
              });
              table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
              th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
              rows.forEach(function (row) { body.appendChild(row); });
            });
          });
        })();

        """

    var readme: String {
        let yes: (Bool) -> String = { $0 ? "yes" : "no" }
        var text = "# \(request.projectName)\n\n"
        if !request.description.isEmpty { text += "\(request.description)\n\n" }
        text += """
            Generated by Universal Chat's offline `template` provider with the \
            \(layout.rawValue) layout (template "\(request.template)", category "\(request.category)").

            Prompt:

            """
        text += request.prompt.split(separator: "\n", omittingEmptySubsequences: false)
            .map { "> \($0)" }.joined(separator: "\n")
        text += """


            ## Files

            | file | what it holds |
            |---|---|
            | `index.html` | the page, with the headline "\(headline)" |
            | `styles.css` | the \(request.theme) theme, layout\(request.responsive ? ", breakpoints" : "")\
            \(request.animations ? " and animations" : "") |
            | `app.js` | navigation toggle, reveal animations, forms, search, chart and table sorting |
            | `README.md` | this file |

            ## Open it

            Open `index.html` in a browser: there is no build step. To serve it, run
            `python3 -m http.server` in this folder and visit http://localhost:8000.

            ## Settings

            - theme: \(request.theme)
            - responsive: \(yes(request.responsive))
            - animations: \(yes(request.animations))

            """
        return text
    }
}

extension TemplateCanvasProvider.Layout {
    var slug: String { rawValue.lowercased().replacingBytes(of: " ", with: "-") }
}
