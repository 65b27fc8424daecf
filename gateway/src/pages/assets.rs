//! The pages' one stylesheet, embedded in the binary and served under a content-hashed name, so
//! browsers may keep it for a year (`immutable`) and a new build is a new URL. No script at all:
//! every page works without JavaScript.

use std::sync::LazyLock;

/// The stylesheet.
pub const CSS: &str = include_str!("../../assets/pages/entry.css");

/// URL path prefix of the assets.
pub const PREFIX: &str = "/e/assets/";

/// `entry.<first 16 hex digits of the SHA-256 of the CSS>.css`.
static CSS_NAME: LazyLock<String> = LazyLock::new(|| {
    let digest = ring::digest::digest(&ring::digest::SHA256, CSS.as_bytes());
    format!("entry.{}.css", &kem_kit::hex::encode(digest.as_ref())[..16])
});

/// The stylesheet's path, `/e/assets/entry.<hash>.css`.
pub fn css_path() -> String {
    format!("{PREFIX}{}", *CSS_NAME)
}

/// The asset called `name`: `(content type, bytes)`; only the current hashed name exists.
pub fn asset(name: &str) -> Option<(&'static str, &'static [u8])> {
    (name == CSS_NAME.as_str()).then_some(("text/css; charset=utf-8", CSS.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_is_served_only_under_its_hash() {
        let path = css_path();
        let name = path.strip_prefix(PREFIX).expect("prefix");
        assert!(name.starts_with("entry.") && name.ends_with(".css") && name.len() == "entry..css".len() + 16);
        assert_eq!(asset(name).map(|(t, _)| t), Some("text/css; charset=utf-8"));
        assert_eq!(asset("entry.css"), None);
        assert_eq!(asset("../Cargo.toml"), None);
    }

    /// WCAG 2.x relative luminance of `#rrggbb`.
    fn luminance(hex: &str) -> f64 {
        let channel = |i: usize| {
            let value = f64::from(u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).expect("hex colour")) / 255.0;
            if value <= 0.039_28 { value / 12.92 } else { ((value + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
    }

    fn contrast(a: &str, b: &str) -> f64 {
        let (a, b) = (luminance(a), luminance(b));
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }

    fn colour(variable: &str) -> String {
        let declaration = format!("--{variable}: ");
        let at = CSS.find(&declaration).unwrap_or_else(|| panic!("--{variable} is declared")) + declaration.len();
        CSS[at..at + 7].to_owned()
    }

    #[test]
    fn text_colours_contrast_at_least_4_5_to_1() {
        let text_pairs = [
            ("ink", "paper"),
            ("ink", "panel"),
            ("muted", "paper"),
            ("muted", "panel"),
            ("brand", "paper"),
            ("brand-ink", "brand"),
            ("error", "paper"),
            ("error", "panel"),
            ("ok-ink", "ok-panel"),
        ];
        for (text, background) in text_pairs {
            let ratio = contrast(&colour(text), &colour(background));
            assert!(ratio >= 4.5, "--{text} on --{background}: {ratio:.2}:1");
        }
        // Borders and the focus ring are user-interface components: 3:1 (WCAG 1.4.11).
        for (part, background) in [("line", "paper"), ("focus", "ink")] {
            let ratio = contrast(&colour(part), &colour(background));
            assert!(ratio >= 3.0, "--{part} on --{background}: {ratio:.2}:1");
        }
    }

    #[test]
    fn nothing_is_loaded_from_elsewhere() {
        for forbidden in ["url(", "@import", "http:", "https:", "//"] {
            let outside_comments: String =
                CSS.split("/*").map(|part| part.split_once("*/").map_or(part, |(_, rest)| rest)).collect();
            assert!(!outside_comments.contains(forbidden), "the stylesheet must not contain {forbidden}");
        }
    }
}
