//! The pages' whole template language: an HTML buffer whose only way to take markup is a string
//! *literal* in the `html!` macro; every expression is escaped through [`Render`].
//!
//! Why not a template crate: the pages are a handful of small views, and `askama` would bring a
//! proc-macro and its own syntax for what plain Rust already does; the one property that matters —
//! nothing the caller or a service supplied reaches the page unescaped — is enforced here by the
//! type system (markup is `&'static str` written in this crate, or a [`Markup`] built by this
//! buffer), not by remembering a filter in a template.

/// HTML text under construction.
#[derive(Debug, Default)]
pub struct Html(String);

/// A finished, already escaped fragment (built with an [`Html`]): rendered as is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Markup(String);

impl Markup {
    /// The markup as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Html {
    /// An empty buffer.
    pub fn new() -> Html {
        Html(String::with_capacity(8 * 1024))
    }

    /// Appends markup written in this crate: only string literals (`&'static str`) get here.
    pub fn raw(&mut self, markup: &'static str) {
        self.0.push_str(markup);
    }

    /// Appends `text` escaped for element content and quoted attribute values alike.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.0, text);
    }

    /// Appends anything renderable.
    pub fn put(&mut self, value: &(impl Render + ?Sized)) {
        value.render(self);
    }

    /// The finished fragment.
    pub fn into_markup(self) -> Markup {
        Markup(self.0)
    }

    /// The finished document.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// What may appear between braces in `html!`: escaped text, numbers, finished
/// fragments.
pub trait Render {
    /// Appends `self` to `out`.
    fn render(&self, out: &mut Html);
}

impl Render for str {
    fn render(&self, out: &mut Html) {
        out.text(self);
    }
}

impl Render for String {
    fn render(&self, out: &mut Html) {
        out.text(self);
    }
}

impl<T: Render + ?Sized> Render for &T {
    fn render(&self, out: &mut Html) {
        (**self).render(out);
    }
}

impl Render for Markup {
    fn render(&self, out: &mut Html) {
        out.0.push_str(&self.0);
    }
}

impl<T: Render> Render for Option<T> {
    fn render(&self, out: &mut Html) {
        if let Some(value) = self {
            value.render(out);
        }
    }
}

macro_rules! render_display {
    ($($t:ty),*) => {$(
        impl Render for $t {
            fn render(&self, out: &mut Html) {
                use std::fmt::Write as _;
                // Numbers hold no markup characters; writing to a String cannot fail.
                let _ = write!(out.0, "{self}");
            }
        }
    )*};
}
render_display!(i32, i64, u32, u64, usize);

/// Appends to an [`Html`]: string literals as markup, `{expression}` escaped through [`Render`].
///
/// ```ignore
/// html!(out; "<h1 class=\"title\">" {event.title} "</h1>");
/// ```
macro_rules! html {
    ($out:expr; $($part:tt)*) => {{
        let out: &mut $crate::pages::html::Html = $out;
        $( $crate::pages::html::html!(@part out, $part); )*
    }};
    (@part $out:ident, $markup:literal) => { $out.raw($markup) };
    (@part $out:ident, { $($value:tt)* }) => { $out.put(&($($value)*)) };
}
pub(crate) use html;

/// Escapes `text` into `out` for HTML content and single- or double-quoted attribute values.
pub fn escape_into(out: &mut String, text: &str) {
    let mut rest = text;
    while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
        out.push_str(&rest[..at]);
        let entity = match rest.as_bytes()[at] {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            _ => "&#39;",
        };
        out.push_str(entity);
        rest = &rest[at + 1..];
    }
    out.push_str(rest);
}

/// `text` escaped (for tests and one-off values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_markup_character_is_escaped() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(escape("평일 점심 🍱"), "평일 점심 🍱", "other text passes unchanged");
        assert_eq!(escape(""), "");
    }

    #[test]
    fn literals_are_markup_and_braces_are_text() {
        let title = "<img src=x onerror=alert(1)>";
        let mut out = Html::new();
        html!(&mut out; "<h1 title=\"" {title} "\">" {title} "</h1><p>" {3_i32} "</p>");
        let fragment = {
            let mut inner = Html::new();
            html!(&mut inner; "<b>" {"a&b"} "</b>");
            inner.into_markup()
        };
        html!(&mut out; {fragment} {None::<String>} {Some("<")});
        assert_eq!(
            out.into_string(),
            "<h1 title=\"&lt;img src=x onerror=alert(1)&gt;\">&lt;img src=x onerror=alert(1)&gt;</h1><p>3</p>\
             <b>a&amp;b</b>&lt;"
        );
    }

    proptest::proptest! {
        /// Whatever the input, the escaped form contains no character that could open a tag, end
        /// an attribute or start an entity of its own.
        #[test]
        fn escaped_text_never_contains_markup(text in "\\PC{0,64}") {
            let escaped = escape(&text);
            proptest::prop_assert!(!escaped.contains(['<', '>', '"', '\'']));
            proptest::prop_assert_eq!(escaped.matches('&').count(), escaped.matches(';').count() - text.matches(';').count());
        }
    }
}
