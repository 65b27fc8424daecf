//! The human page: Swagger UI served from vendored files, no CDN.
//!
//! `gateway/assets/swagger-ui/` holds `swagger-ui-bundle.js` and `swagger-ui.css` from the
//! `swagger-ui-dist` npm package (version in [`SWAGGER_UI_VERSION`], Apache-2.0; its LICENSE,
//! NOTICE and the bundle's third-party notices are served next to it). The page loads no inline
//! script, so it works under a `script-src 'self'` Content-Security-Policy: the spec URL travels in
//! a `data-` attribute read by a small initializer served as an asset.

/// Version of the vendored `swagger-ui-dist` package.
pub const SWAGGER_UI_VERSION: &str = "5.35.0";

/// URL path under which the edge must serve [`asset`]`(name)` as `{DOCS_ASSETS_PATH}/{name}`.
pub const DOCS_ASSETS_PATH: &str = "/docs/assets";

const INIT_JS: &str = r##""use strict";
// Starts Swagger UI on the spec named by the page (data-spec-url); no external calls.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    defaultModelsExpandDepth: 0,
    // The default validator badge would send the spec to validator.swagger.io.
    validatorUrl: null
  });
});
"##;

const TEXT_CSS: &str = "text/css; charset=utf-8";
const TEXT_JS: &str = "text/javascript; charset=utf-8";
const TEXT_PLAIN: &str = "text/plain; charset=utf-8";

/// The vendored and generated files of the documentation page by name: `(content type, bytes)`,
/// or `None` for an unknown name.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    Some(match name {
        "swagger-ui-bundle.js" => (TEXT_JS, include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js")),
        "swagger-ui.css" => (TEXT_CSS, include_bytes!("../../assets/swagger-ui/swagger-ui.css")),
        "kem-swagger-init.js" => (TEXT_JS, INIT_JS.as_bytes()),
        "LICENSE" => (TEXT_PLAIN, include_bytes!("../../assets/swagger-ui/LICENSE")),
        "NOTICE" => (TEXT_PLAIN, include_bytes!("../../assets/swagger-ui/NOTICE")),
        "swagger-ui-bundle.js.LICENSE.txt" => {
            (TEXT_PLAIN, include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js.LICENSE.txt"))
        }
        _ => return None,
    })
}

/// A self-contained HTML page rendering the OpenAPI document at `spec_url` with Swagger UI; its
/// scripts and styles come from [`asset`] under [`DOCS_ASSETS_PATH`].
pub fn html_page(spec_url: &str) -> String {
    let spec = escape_attribute(spec_url);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kem — KT Event Marketing API</title>
<link rel="stylesheet" href="{DOCS_ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<noscript><p>This page needs JavaScript. The OpenAPI document itself is at <a href="{spec}">{spec}</a>.</p></noscript>
<div id="swagger-ui" data-spec-url="{spec}"></div>
<script src="{DOCS_ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{DOCS_ASSETS_PATH}/kem-swagger-init.js"></script>
</body>
</html>
"#
    )
}

fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_references_only_local_assets_that_exist() {
        let page = html_page("/openapi.json");
        assert!(page.contains(r#"data-spec-url="/openapi.json""#));
        assert!(!page.contains("http://") && !page.contains("https://"), "no external URL: {page}");
        assert!(!page.contains("<script>"), "no inline script (CSP friendly)");
        for src in page.split(&format!("{DOCS_ASSETS_PATH}/")).skip(1) {
            let name = src.split('"').next().expect("quoted asset name");
            let (content_type, bytes) = asset(name).unwrap_or_else(|| panic!("page references missing asset {name}"));
            assert!(!bytes.is_empty() && !content_type.is_empty(), "{name}");
        }
        let bundle = asset("swagger-ui-bundle.js").expect("bundle").1;
        assert!(bundle.len() > 1_000_000, "the real Swagger UI bundle is vendored");
        assert!(asset("../Cargo.toml").is_none() && asset("index.html").is_none());
    }

    #[test]
    fn spec_url_is_escaped() {
        let page = html_page(r#"/x"><script>alert(1)</script>"#);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(page.contains("&quot;&gt;&lt;script&gt;"));
    }
}
