//! The gateway's access records written straight to the log writer, in the layout the
//! `tracing` subscriber gives every other line (text or JSON), without its generic per-field
//! formatting (see `kem_gateway::access_log`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// `2026-11-26T06:23:51.495083Z  INFO kem_gateway::access: request request_id=… status=200 …`
fn text_line(line: &mut String, now: SystemTime, r: &AccessRecord<'_>) {
    rfc3339_micros(line, now);
    line.push_str("  INFO ");
    line.push_str(TARGET);
    line.push_str(": request request_id=");
    text_value(line, r.request_id);
    line.push_str(" method=");
    text_value(line, r.method);
    line.push_str(" path=");
    text_value(line, r.path);
    line.push_str(" rpc=");
    text_value(line, r.rpc.unwrap_or("-"));
    line.push_str(" owner=");
    text_value(line, r.owner.unwrap_or("-"));
    let _ = write!(line, " status={} duration_ms=", r.status);
    millis(line, r.duration.as_micros());
    line.push('\n');
}

/// The subscriber's JSON layout: timestamp, level, the fields (message first), target.
fn json_line(line: &mut String, now: SystemTime, r: &AccessRecord<'_>) {
    line.push_str("{\"timestamp\":\"");
    rfc3339_micros(line, now);
    line.push_str("\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":");
    json_string(line, r.request_id);
    line.push_str(",\"method\":");
    json_string(line, r.method);
    line.push_str(",\"path\":");
    json_string(line, r.path);
    line.push_str(",\"rpc\":");
    json_string(line, r.rpc.unwrap_or("-"));
    line.push_str(",\"owner\":");
    json_string(line, r.owner.unwrap_or("-"));
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
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let _ = write!(
        line,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        of_day / 3600,
        of_day / 60 % 60,
        of_day % 60,
        since.subsec_micros()
    );
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar (Howard
/// Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
    fn timestamps_match_the_time_crate_across_the_calendar() {
        for secs in [0_u64, 951_782_400, 1_709_164_800, 1_764_137_031, 4_107_542_399, 32_503_680_000] {
            let at = UNIX_EPOCH + Duration::new(secs, 495_083_999);
            let mut ours = String::new();
            rfc3339_micros(&mut ours, at);
            let expected = time::OffsetDateTime::from(at);
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
                expected.year(),
                u8::from(expected.month()),
                expected.day(),
                expected.hour(),
                expected.minute(),
                expected.second(),
                expected.microsecond()
            );
            assert_eq!(ours, expected, "{secs}");
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
