//! HTTP caching of raw answers (`response_body` naming a `bytes` field, e.g. image bytes), decided
//! from the contract alone, like everything else at the edge:
//!
//! - a response message with a `sha256` field beside its bytes is content-addressed: the answer
//!   carries `ETag: "<sha256>"`, and a GET (or HEAD) whose `If-None-Match` holds that tag (or `*`)
//!   is answered `304 Not Modified` without the bytes;
//! - such an answer of a route anyone may call without side effects (`ACCESS_PUBLIC`,
//!   `NO_SIDE_EFFECTS`: the public images) may be kept by any cache for a day without asking
//!   again: `Cache-Control: public, max-age=86400, immutable`. Owner routes keep no explicit
//!   policy (a shared cache never stores the answer to an authorized request unless told to), and
//!   so does every error: only a successful answer is ever made cacheable here.
//!
//! - a response message with a `filename` field beside its bytes is a download: the answer
//!   carries `Content-Disposition: attachment` with the name (an ASCII `filename` and the exact
//!   UTF-8 `filename*`, RFC 6266 / RFC 8187), and on owner routes `Cache-Control: no-store`
//!   (an export holds personal data: no cache, not even the browser's, keeps it).
//!
//! Raw answers are never gzipped at the edge when they are images (see `compress_when`), so the
//! tag always names the bytes as sent.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use kem_proto::contract::{Access, Idempotency};

use crate::routes::Route;

/// `Cache-Control` of a content-addressed answer of a public route without side effects.
pub const PUBLIC_IMMUTABLE: &str = "public, max-age=86400, immutable";

/// The name of the response field that makes a raw answer content-addressed.
pub const DIGEST_FIELD: &str = "sha256";

/// The name of the response field that makes a raw answer a download.
pub const FILENAME_FIELD: &str = "filename";

/// Longest file name sent, in characters; the rest is cut (the extension is kept).
const MAX_FILENAME_CHARS: usize = 120;

/// Characters sent as they are in `filename*` (RFC 8187 `attr-char`); all others percent-encoded.
const ATTR_CHAR_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `name` made safe to suggest: no control characters (CR, LF, NUL, ...), no quotes, no path
/// separators or other characters file systems refuse (each becomes `_`), no leading dots or
/// spaces (no hidden files, no `..`), at most [`MAX_FILENAME_CHARS`] characters keeping the
/// extension; `download` when nothing is left.
pub fn safe_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
        })
        .map(|c| if matches!(c, '"' | '\\' | '/' | ':' | '*' | '?' | '<' | '>' | '|' | '%' | ';') { '_' } else { c })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches(['.', ' ']).trim_end_matches(['.', ' ']);
    if trimmed.is_empty() {
        return "download".to_owned();
    }
    let count = trimmed.chars().count();
    if count <= MAX_FILENAME_CHARS {
        return trimmed.to_owned();
    }
    // Keep a short extension (".csv") at the end of a cut name.
    let extension = trimmed.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| (1..=8).contains(&ext.chars().count()));
    let keep = MAX_FILENAME_CHARS - extension.map_or(0, |ext| ext.chars().count() + 1);
    let mut out: String = trimmed.chars().take(keep).collect();
    if let Some(extension) = extension {
        out.push('.');
        out.push_str(extension);
    }
    out
}

/// `Content-Disposition: attachment` naming `name` (made safe by [`safe_filename`]): an ASCII
/// `filename` for old clients (every other character `_`) and the exact name as UTF-8 in
/// `filename*`, which current browsers prefer.
pub fn content_disposition(name: &str) -> HeaderValue {
    let safe = safe_filename(name);
    let ascii: String = safe.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '_' }).collect();
    let encoded = percent_encoding::utf8_percent_encode(&safe, ATTR_CHAR_ESCAPES);
    let value = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    // Only visible ASCII and spaces are left, so the value is always a valid header.
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("attachment"))
}

/// What a raw answer's message says about its bytes besides their type.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawMeta<'a> {
    /// Their digest (`sha256` field), when set: the answer is content-addressed.
    pub sha256: Option<&'a str>,
    /// The suggested file name (`filename` field), when set: the answer is a download.
    pub filename: Option<&'a str>,
}

/// The strong entity tag of bytes whose digest is `sha256` (`"<sha256>"`); `None` when the digest
/// is not a plausible one (empty, over-long, or not alphanumeric), so no tag is made up.
pub fn etag(sha256: &str) -> Option<HeaderValue> {
    let plausible = !sha256.is_empty() && sha256.len() <= 128 && sha256.bytes().all(|b| b.is_ascii_alphanumeric());
    if !plausible {
        return None;
    }
    HeaderValue::from_str(&format!("\"{sha256}\"")).ok()
}

/// Whether `If-None-Match` values (`*`, or a list of entity tags, each possibly weak `W/"..."`)
/// match `etag` under the weak comparison RFC 9110 prescribes for it. A value that cannot be read
/// matches nothing, so the full answer is sent.
pub fn none_match<'a>(if_none_match: impl IntoIterator<Item = &'a HeaderValue>, etag: &HeaderValue) -> bool {
    let Ok(tag) = etag.to_str() else { return false };
    let opaque = tag.strip_prefix("W/").unwrap_or(tag);
    if_none_match.into_iter().any(|value| {
        let Ok(value) = value.to_str() else { return false };
        if value.trim() == "*" {
            return true;
        }
        tags(value).any(|tag| tag == opaque)
    })
}

/// The entity tags of an `If-None-Match` list (quotes kept, weakness dropped); stops at the first
/// thing that is not one.
fn tags(list: &str) -> impl Iterator<Item = &str> {
    let mut rest = list;
    std::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let inner = tag.strip_prefix('"')?;
        let end = inner.find('"')?;
        let (quoted, after) = tag.split_at(end + 2);
        rest = after;
        Some(quoted)
    })
}

/// Whether content-addressed answers of a route with `access` and `idempotency` may be kept by any
/// cache ([`PUBLIC_IMMUTABLE`]): anyone may call it, and calling it changes nothing.
pub fn publicly_cacheable(access: Access, idempotency: Idempotency) -> bool {
    access == Access::Public && idempotency == Idempotency::NoSideEffects
}

/// The `Cache-Control` of a content-addressed answer of `route`: public and immutable for a
/// public route without side effects, none (left to the defaults) otherwise.
pub fn cache_control(route: &Route) -> Option<HeaderValue> {
    publicly_cacheable(route.access, route.idempotency).then(|| HeaderValue::from_static(PUBLIC_IMMUTABLE))
}

/// The HTTP answer of raw bytes: `Content-Type`, and for content-addressed bytes (`sha256` set)
/// the `ETag`, the route's `Cache-Control`, and `304 Not Modified` when the client already holds
/// them (`if_none_match`, which the caller passes for GET and HEAD requests only); for a download
/// (`filename` set) the `Content-Disposition`, and `no-store` on owner routes.
pub fn raw_response(
    route: &Route,
    content_type: &str,
    data: Vec<u8>,
    meta: RawMeta<'_>,
    if_none_match: &[HeaderValue],
) -> Response {
    let etag = meta.sha256.and_then(etag);
    let not_modified = etag.as_ref().is_some_and(|tag| none_match(if_none_match, tag));
    let mut response = if not_modified {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        let mut response = Response::new(Body::from(data));
        if let Ok(value) = HeaderValue::from_str(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    if let Some(tag) = etag {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, tag);
        if let Some(policy) = cache_control(route) {
            headers.insert(header::CACHE_CONTROL, policy);
        }
    }
    if let Some(name) = meta.filename {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_DISPOSITION, content_disposition(name));
        if route.access == Access::Owner {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::{Lookup, RouteTable};

    const SHA: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn value(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header value")
    }

    fn meta(sha256: Option<&str>) -> RawMeta<'_> {
        RawMeta { sha256, filename: None }
    }

    fn route(method: http::Method, path: &str) -> Route {
        let table = RouteTable::from_pool(kem_proto::descriptor_pool()).expect("routes");
        match table.lookup(&method, path) {
            Lookup::Found(route, _) => route.clone(),
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn tags_are_quoted_digests_and_nothing_else() {
        assert_eq!(etag(SHA).expect("tag").to_str().expect("ascii"), format!("\"{SHA}\""));
        for implausible in ["", "a\"b", "a b", "é", &"a".repeat(129), "a,b"] {
            assert!(etag(implausible).is_none(), "{implausible:?}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_reads_lists() {
        let tag = etag(SHA).expect("tag");
        let quoted = format!("\"{SHA}\"");
        for matching in [
            quoted.clone(),
            format!("W/{quoted}"),
            "*".to_owned(),
            format!("\"other\", {quoted}"),
            format!("W/\"a,b\",W/{quoted}"),
            format!("  {quoted}  "),
        ] {
            assert!(none_match([&value(&matching)], &tag), "{matching}");
        }
        for other in ["\"other\"", "W/\"x\", \"y\"", "", "\"unterminated", "**", SHA, &format!("x{quoted}")] {
            assert!(!none_match([&value(other)], &tag), "{other}: unquoted or malformed tags match nothing");
        }
        assert!(none_match([&value("\"other\""), &value(&quoted)], &tag), "several header lines");
        assert!(!none_match(std::iter::empty::<&HeaderValue>(), &tag));
    }

    #[test]
    fn only_public_reads_are_publicly_cacheable() {
        let public = route(http::Method::GET, "/api/v1/public/images/i-1");
        assert_eq!(cache_control(&public).expect("public").to_str().expect("ascii"), PUBLIC_IMMUTABLE);
        let owner = route(http::Method::GET, "/api/v1/images/i-1/content");
        assert!(cache_control(&owner).is_none(), "owner answers stay as they were");
    }

    #[test]
    fn a_held_tag_is_304_without_the_bytes_and_a_missing_digest_gets_no_tag() {
        let public = route(http::Method::GET, "/api/v1/public/images/i-1");
        let held = [value(&format!("\"{SHA}\""))];
        let full = raw_response(&public, "image/png", vec![1, 2, 3], meta(Some(SHA)), &[]);
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()[header::CONTENT_TYPE], "image/png");
        assert_eq!(full.headers()[header::ETAG], held[0]);
        assert_eq!(full.headers()[header::CACHE_CONTROL], PUBLIC_IMMUTABLE);

        let not_modified = raw_response(&public, "image/png", vec![1, 2, 3], meta(Some(SHA)), &held);
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], held[0]);
        assert_eq!(not_modified.headers()[header::CACHE_CONTROL], PUBLIC_IMMUTABLE);
        assert!(not_modified.headers().get(header::CONTENT_TYPE).is_none());

        let untagged = raw_response(&public, "image/png", vec![1], meta(None), &held);
        assert_eq!(untagged.status(), StatusCode::OK, "nothing to match without a digest");
        assert!(untagged.headers().get(header::ETAG).is_none());
        assert!(untagged.headers().get(header::CACHE_CONTROL).is_none(), "not content-addressed: no promise");
    }

    #[test]
    fn downloads_name_their_file_safely_in_ascii_and_utf8() {
        let header = |name: &str| content_disposition(name).to_str().expect("ascii").to_owned();
        assert_eq!(
            header("winners-ev-1-20261207.csv"),
            "attachment; filename=\"winners-ev-1-20261207.csv\"; filename*=UTF-8''winners-ev-1-20261207.csv"
        );
        assert_eq!(
            header("당첨자 명단.csv"),
            "attachment; filename=\"___ __.csv\"; filename*=UTF-8''%EB%8B%B9%EC%B2%A8%EC%9E%90%20%EB%AA%85%EB%8B%A8.csv"
        );
        // Quotes, CR/LF, NUL and path separators cannot break out of the header or the folder.
        assert_eq!(safe_filename("../../etc/passwd"), "_.._etc_passwd");
        assert_eq!(safe_filename("a\"; filename=evil.exe\r\nSet-Cookie: x=1"), "a__ filename=evil.exeSet-Cookie_ x=1");
        assert_eq!(safe_filename("..\\..\\boot.ini"), "_.._boot.ini");
        assert_eq!(safe_filename("\u{0}\u{7}"), "download");
        assert_eq!(safe_filename(" .hidden.csv"), "hidden.csv");
        assert_eq!(safe_filename("a\u{202E}vsc.exe"), "avsc.exe", "no bidi override to disguise the extension");
        let long = format!("{}.csv", "가".repeat(500));
        let cut = safe_filename(&long);
        assert_eq!(cut.chars().count(), MAX_FILENAME_CHARS);
        assert!(cut.ends_with(".csv"));
        for hostile in ["\r\n", "\"", "a/b\\c", "%00", "x;y", &"é".repeat(1000)] {
            let value = header(hostile);
            assert!(!value.contains(['\r', '\n']) && value.matches('"').count() == 2, "{hostile:?}: {value}");
        }
    }

    #[test]
    fn owner_downloads_are_attachments_never_stored() {
        let export = route(http::Method::GET, "/api/v1/events/ev-1/participants:export");
        let meta = RawMeta { sha256: None, filename: Some("participants-ev-1.csv") };
        let response = raw_response(&export, "text/csv; charset=utf-8", b"a\r\n".to_vec(), meta, &[]);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert!(response.headers()[header::CONTENT_DISPOSITION].to_str().expect("ascii").starts_with("attachment;"));
        let image = route(http::Method::GET, "/api/v1/images/i-1/content");
        let plain = raw_response(&image, "image/png", vec![1], RawMeta::default(), &[]);
        assert!(plain.headers().get(header::CONTENT_DISPOSITION).is_none(), "no file name, no download");
    }
}
