//! What a partner QR code may encode: the one rule the signer (distribution), the edge and the
//! renderer (content) all apply, so a text one of them accepts is accepted by the others.
//!
//! The text is an absolute `http`/`https` URL (the event's entry link) of at most
//! [`MAX_QR_TEXT_LEN`] bytes, with no control characters and no whitespace, and no user name or
//! password in it. It is taken exactly as given — never normalised — because the QR code must
//! carry the very link that was signed.

/// Longest QR text accepted, in bytes: an entry link is well under 200; 512 keeps the token of
/// the longest accepted text within [`MAX_TOKEN_LEN`](super::MAX_TOKEN_LEN) (739 characters) and
/// the QR code at version 20 or less at level M (97 modules), readable across a room at a
/// quarter of a screen's shorter side.
pub const MAX_QR_TEXT_LEN: usize = 512;

/// Why a text cannot go in a partner QR code. The messages never quote the text (it may be
/// huge or hostile); they say what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QrTextError {
    /// Nothing given.
    #[error("is required: give the absolute http(s) URL the QR code should open")]
    Empty,
    /// Past [`MAX_QR_TEXT_LEN`].
    #[error("is {0} bytes long; give a URL of at most {MAX_QR_TEXT_LEN} bytes")]
    TooLong(usize),
    /// A control character (C0, DEL or C1), an invisible format character (bidirectional
    /// overrides, zero-width characters) or whitespace: no URL has one, and a scanner would show
    /// or open something else than what was checked.
    #[error("contains a control or whitespace character; percent-encode it or remove it")]
    ControlCharacter,
    /// Not an absolute URL.
    #[error("is not an absolute URL; give one such as https://kem.example/e/abc")]
    NotAnAbsoluteUrl,
    /// Another scheme than http or https (`javascript:`, `data:`, `tel:`, ...).
    #[error("must be an http or https URL")]
    NotHttp,
    /// A user name or password in the URL (`https://kem.example@evil.example/` shows one host
    /// and opens another).
    #[error("must not carry a user name or password")]
    Credentials,
}

/// Checks `text` against the rules of [the module](self).
pub fn check_qr_text(text: &str) -> Result<(), QrTextError> {
    if text.is_empty() {
        return Err(QrTextError::Empty);
    }
    // The length first: nothing past it is even scanned.
    if text.len() > MAX_QR_TEXT_LEN {
        return Err(QrTextError::TooLong(text.len()));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace() || is_invisible_format(c)) {
        return Err(QrTextError::ControlCharacter);
    }
    // The WHATWG parser takes `https:kem.example` and `https:\\evil.example` as absolute URLs;
    // a scanner may not. Only the plain form, so what is checked is what every reader sees.
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        let scheme_only = text
            .split_once(':')
            .is_some_and(|(s, _)| !s.eq_ignore_ascii_case("http") && !s.eq_ignore_ascii_case("https"));
        return Err(if scheme_only { QrTextError::NotHttp } else { QrTextError::NotAnAbsoluteUrl });
    }
    if text.contains('\\') {
        return Err(QrTextError::NotAnAbsoluteUrl);
    }
    let url = reqwest::Url::parse(text).map_err(|_| QrTextError::NotAnAbsoluteUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(QrTextError::NotHttp);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(QrTextError::NotAnAbsoluteUrl);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(QrTextError::Credentials);
    }
    Ok(())
}

/// Bidirectional marks, embeddings, overrides and isolates, zero-width characters and the byte
/// order mark: invisible, and able to make a link read as another (`Trojan Source`).
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{061C}')
}
