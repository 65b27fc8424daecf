//! The gateway's access records written straight to the log writer, in the layout the
//! `tracing` subscriber gives every other line (text or JSON), without its generic per-field
//! formatting (see `kem_gateway::access_log`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::SystemTime;

use kem_gateway::access_log::{AccessRecord, Sink, TARGET};

use super::log_writer::NonBlockingWriter;
use crate::config::LogFormat;

/// Access lines in `format`, to `writer`.
pub struct AccessLines {
    writer: NonBlockingWriter,
    format: LogFormat,
}

impl AccessLines {
    /// Lines in `format` written to `writer`.
    pub fn new(writer: NonBlockingWriter, format: LogFormat) -> AccessLines {
        AccessLines { writer, format }
    }
}

impl Sink for AccessLines {
    fn write(&self, record: &AccessRecord<'_>) {
        let mut line = String::with_capacity(256);
        match self.format {
            LogFormat::Text => text_line(&mut line, SystemTime::now(), record),
            LogFormat::Json => json_line(&mut line, SystemTime::now(), record),
        }
        // The writer never blocks and never fails (a full buffer drops and counts the line).
        let _ = self.writer.clone().write_all(line.as_bytes());
    }
}

/// The text fields of a record, in log order.
fn text_fields<'a>(r: &AccessRecord<'a>) -> [(&'static str, &'a str); 5] {
    [
        ("request_id", r.request_id),
        ("method", r.method),
        ("path", r.path),
        ("rpc", r.rpc.unwrap_or("-")),
        ("owner", r.owner.unwrap_or("-")),
    ]
}

/// `2026-11-26T06:23:51.495083Z  INFO kem_gateway::access: request request_id=… status=200 …`
fn text_line(line: &mut String, now: SystemTime, r: &AccessRecord<'_>) {
    rfc3339_micros(line, now);
    line.push_str("  INFO ");
    line.push_str(TARGET);
    line.push_str(": request");
    for (name, value) in text_fields(r) {
        let _ = write!(line, " {name}=");
        text_value(line, value);
    }
    let _ = write!(line, " status={} duration_ms=", r.status);
    millis(line, r.duration.as_micros());
    line.push('\n');
}

/// The subscriber's JSON layout: timestamp, level, the fields (message first), target.
fn json_line(line: &mut String, now: SystemTime, r: &AccessRecord<'_>) {
    line.push_str("{\"timestamp\":\"");
    rfc3339_micros(line, now);
    line.push_str("\",\"level\":\"INFO\",\"message\":\"request\"");
    for (name, value) in text_fields(r) {
        let _ = write!(line, ",\"{name}\":");
        json_string(line, value);
    }
    let _ = write!(line, ",\"status\":{},\"duration_ms\":", r.status);
    millis(line, r.duration.as_micros());
    line.push_str(",\"target\":\"");
    line.push_str(TARGET);
    line.push_str("\"}\n");
}

/// A value as is when it is plain visible ASCII, else quoted and escaped (so a request id or
/// path can never forge another field or line).
fn text_value(line: &mut String, value: &str) {
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
        line.push_str(value);
    } else {
        let _ = write!(line, "{value:?}");
    }
}

fn json_string(line: &mut String, value: &str) {
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(line, "\\u{:04x}", u32::from(c));
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// Microseconds as milliseconds with three decimals: `0.471`.
fn millis(line: &mut String, micros: u128) {
    let _ = write!(line, "{}.{:03}", micros / 1000, micros % 1000);
}

/// `2026-11-26T06:23:51.495083Z`: UTC, microseconds, as the subscriber's default timer writes.
fn rfc3339_micros(line: &mut String, now: SystemTime) {
    let at = time::OffsetDateTime::from(now);
    let _ = write!(
        line,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    );
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn record<'a>(path: &'a str, owner: Option<&'a str>) -> AccessRecord<'a> {
        AccessRecord {
            request_id: "8b6a062f344aa186e4baaa2edf2ea09a",
            method: "GET",
            path,
            rpc: Some("/kem.event.v1.EventService/GetEvent"),
            owner,
            status: 200,
            duration: Duration::from_micros(1_471),
        }
    }

    #[test]
    fn timestamps_are_utc_with_microseconds() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_782_400, 999_999, "2000-02-29T00:00:00.000999Z"),
            (1_764_137_031, 495_083_999, "2025-11-26T06:03:51.495083Z"),
        ];
        for (secs, nanos, expected) in cases {
            let mut line = String::new();
            rfc3339_micros(&mut line, UNIX_EPOCH + Duration::new(secs, nanos));
            assert_eq!(line, expected);
        }
    }

    #[test]
    fn text_lines_have_the_subscriber_layout() {
        let at = UNIX_EPOCH + Duration::new(1_764_137_031, 495_083_000);
        let mut line = String::new();
        text_line(&mut line, at, &record("/api/v1/events/ev-1", Some("owner-1")));
        assert_eq!(
            line,
            "2025-11-26T06:03:51.495083Z  INFO kem_gateway::access: request \
             request_id=8b6a062f344aa186e4baaa2edf2ea09a method=GET path=/api/v1/events/ev-1 \
             rpc=/kem.event.v1.EventService/GetEvent owner=owner-1 status=200 duration_ms=1.471\n"
        );
    }

    #[test]
    fn text_values_cannot_forge_fields_or_lines() {
        let mut line = String::new();
        text_line(&mut line, UNIX_EPOCH, &record("/a b\n2025 INFO x status=500", None));
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        assert!(line.contains(r#"path="/a b\n2025 INFO x status=500""#), "{line}");
        assert!(line.contains(" owner=- "), "{line}");
    }

    #[test]
    fn json_lines_parse_and_carry_every_field() {
        let mut line = String::new();
        json_line(&mut line, UNIX_EPOCH, &record("/api/\"quoted\"\\\u{1}", Some("o")));
        assert!(line.ends_with("}\n"));
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["message"], "request");
        assert_eq!(value["path"], "/api/\"quoted\"\\\u{1}");
        assert_eq!(value["owner"], "o");
        assert_eq!(value["status"], 200);
        assert_eq!(value["duration_ms"], 1.471);
        assert_eq!(value["target"], TARGET);
    }
}
