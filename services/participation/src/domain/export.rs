//! CSV exports of an event's participants and winners: the file format (UTF-8 with a byte order
//! mark, CRLF, RFC 4180 quoting, the spreadsheet formula guard), the Korean + English headers, the
//! Asia/Seoul times, and when full names and phones may be revealed.
//!
//! Pure: the use case (`app::exports`) feeds rows page by page into a [`CsvWriter`], so a file is
//! built without holding the decrypted entries of the whole event.

use super::event::Millis;

/// The byte order mark: without it Excel reads a UTF-8 CSV as the system code page (CP949 on a
/// Korean Windows) and shows Korean as mojibake.
pub const BOM: &[u8] = "\u{feff}".as_bytes();
/// The response's content type.
pub const CONTENT_TYPE: &str = "text/csv; charset=utf-8";
/// Retention days when the event service does not say (its documented default).
pub const DEFAULT_RETENTION_DAYS: u32 = 30;
/// Asia/Seoul is UTC+9 all year (no daylight saving time since 1988).
const KST_OFFSET_MS: i64 = 9 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

/// What an export contains (`kem.participation.v1.ExportKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    /// Every entry in arrival order.
    Participants,
    /// The current winners in draw order.
    Winners,
}

impl ExportKind {
    /// The contract's enum number (stored in the audit log).
    pub fn number(self) -> i32 {
        match self {
            ExportKind::Participants => 1,
            ExportKind::Winners => 2,
        }
    }

    /// The kind of a contract number; `None` for UNSPECIFIED and unknown numbers.
    pub fn from_number(number: i32) -> Option<ExportKind> {
        match number {
            1 => Some(ExportKind::Participants),
            2 => Some(ExportKind::Winners),
            _ => None,
        }
    }

    /// The file name's prefix.
    fn slug(self) -> &'static str {
        match self {
            ExportKind::Participants => "participants",
            ExportKind::Winners => "winners",
        }
    }

    /// The header row: Korean for the owner, English for anyone they pass the file to.
    pub fn header(self) -> &'static [&'static str] {
        match self {
            ExportKind::Participants => &[
                "번호 No",
                "이름 Name",
                "휴대전화 Phone",
                "유입 채널 Channel",
                "참여 시각(KST) Entered at",
                "마케팅 수신 동의 Marketing consent",
                "상태 Status",
            ],
            ExportKind::Winners => &[
                "순위 Rank",
                "이름 Name",
                "휴대전화 Phone",
                "유입 채널 Channel",
                "참여 시각(KST) Entered at",
                "수령 상태 Claim state",
                "수령 기한(KST) Claim deadline",
                "수령 시각(KST) Claimed at",
                "당첨 알림 Notification",
            ],
        }
    }
}

/// Why full names and phones may not be revealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevealRefusal {
    /// Only winners may be revealed (the owner needs their contact to deliver prizes).
    NotWinners,
    /// Nothing was drawn: the retention period starts at the draw.
    NotDrawn,
    /// The retention period (draw + retention days) is over: the data is due for erasure.
    RetentionOver,
}

impl RevealRefusal {
    /// Machine-readable form for ErrorInfo metadata (`why`).
    pub fn code(self) -> &'static str {
        match self {
            RevealRefusal::NotWinners => "participants",
            RevealRefusal::NotDrawn => "not_drawn",
            RevealRefusal::RetentionOver => "retention_over",
        }
    }
}

/// Whether an export of `kind` may reveal full names and phones at `now`: WINNERS only, from the
/// current draw at `drawn_at` until `retention_days` after it (exclusive). 0 retention days means
/// the event service did not say, so its default applies.
pub fn may_reveal(
    kind: ExportKind,
    drawn_at: Option<Millis>,
    retention_days: u32,
    now: Millis,
) -> Result<(), RevealRefusal> {
    if kind != ExportKind::Winners {
        return Err(RevealRefusal::NotWinners);
    }
    let drawn_at = drawn_at.ok_or(RevealRefusal::NotDrawn)?;
    let days = if retention_days == 0 { DEFAULT_RETENTION_DAYS } else { retention_days };
    let until = drawn_at.saturating_add(i64::from(days).saturating_mul(DAY_MS));
    if now >= until { Err(RevealRefusal::RetentionOver) } else { Ok(()) }
}

/// Year, month, day of the proleptic Gregorian calendar for days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2026-12-07 18:00:00` in Asia/Seoul: the form spreadsheets read as a date and time (the header
/// says KST).
pub fn kst_time(ms: Millis) -> String {
    let local = ms.saturating_add(KST_OFFSET_MS);
    let (year, month, day) = civil_from_days(local.div_euclid(DAY_MS));
    let secs = local.rem_euclid(DAY_MS) / 1_000;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3_600, secs / 60 % 60, secs % 60)
}

/// `winners-<event id>-20261207.csv`: the kind, the event and the export's day in Asia/Seoul.
/// Characters a file system may refuse (an event id may contain `:`) become `_`.
pub fn filename(kind: ExportKind, event_id: &str, now: Millis) -> String {
    let (year, month, day) = civil_from_days(now.saturating_add(KST_OFFSET_MS).div_euclid(DAY_MS));
    let id: String =
        event_id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("{}-{id}-{year:04}{month:02}{day:02}.csv", kind.slug())
}

/// Whether a spreadsheet would read a cell starting with `c` as a formula (or as the start of
/// one, after it trims a tab or carriage return): OWASP's CSV injection list.
fn starts_formula(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// A CSV file being written: UTF-8 with a byte order mark, CRLF line ends, fields quoted when
/// they contain a comma, a quote or a line break (RFC 4180, quotes doubled), and every cell a
/// spreadsheet would run as a formula prefixed with `'`.
#[derive(Debug)]
pub struct CsvWriter {
    out: Vec<u8>,
    rows: u64,
}

impl CsvWriter {
    /// A file with the byte order mark and `header`.
    pub fn new(header: &[&str]) -> CsvWriter {
        let mut writer = CsvWriter { out: BOM.to_vec(), rows: 0 };
        writer.write(header.iter().copied());
        writer
    }

    fn write<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) {
        for (i, cell) in cells.into_iter().enumerate() {
            if i > 0 {
                self.out.push(b',');
            }
            let guard = cell.starts_with(starts_formula);
            let quote = cell.contains([',', '"', '\r', '\n']);
            if quote {
                self.out.push(b'"');
            }
            if guard {
                self.out.push(b'\'');
            }
            for piece in cell.split_inclusive('"') {
                self.out.extend_from_slice(piece.as_bytes());
                if quote && piece.ends_with('"') {
                    self.out.push(b'"');
                }
            }
            if quote {
                self.out.push(b'"');
            }
        }
        self.out.extend_from_slice(b"\r\n");
    }

    /// Appends a data row.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) {
        self.write(cells);
        self.rows += 1;
    }

    /// Data rows written (the header not counted).
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The file.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(writer: CsvWriter) -> String {
        let bytes = writer.finish();
        assert!(bytes.starts_with(BOM));
        String::from_utf8(bytes[BOM.len()..].to_vec()).expect("utf-8")
    }

    #[test]
    fn cells_are_quoted_as_rfc_4180_says() {
        let mut w = CsvWriter::new(&["a", "b"]);
        w.row(["plain", "with,comma"]);
        w.row(["say \"hi\"", "two\r\nlines"]);
        w.row(["", "김*수"]);
        assert_eq!(w.rows(), 3);
        assert_eq!(text(w), "a,b\r\nplain,\"with,comma\"\r\n\"say \"\"hi\"\"\",\"two\r\nlines\"\r\n,김*수\r\n");
    }

    #[test]
    fn formulas_are_never_run() {
        let mut w = CsvWriter::new(&["x"]);
        for cell in ["=1+1", "+82", "-2", "@SUM(A1)", "\tx", "\rx", "=HYPERLINK(\"http://x\",\"y\")", "a=b"] {
            w.row([cell]);
        }
        assert_eq!(
            text(w),
            "x\r\n'=1+1\r\n'+82\r\n'-2\r\n'@SUM(A1)\r\n'\tx\r\n\"'\rx\"\r\n\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r\na=b\r\n"
        );
    }

    #[test]
    fn times_are_seoul_times() {
        // 2026-12-07T09:00:00Z is 18:00 in Seoul.
        assert_eq!(kst_time(1_796_634_000_000), "2026-12-07 18:00:00");
        // 15:00 UTC is midnight of the next day in Seoul.
        assert_eq!(kst_time(1_796_655_600_000), "2026-12-08 00:00:00");
        assert_eq!(kst_time(0), "1970-01-01 09:00:00");
        assert_eq!(kst_time(951_782_400_000 - 9 * 3_600_000), "2000-02-29 00:00:00", "leap day");
        assert_eq!(filename(ExportKind::Winners, "ev:1/2", 1_796_655_600_000), "winners-ev_1_2-20261208.csv");
    }

    #[test]
    fn only_winners_are_revealed_inside_the_retention_period() {
        let day = DAY_MS;
        assert_eq!(may_reveal(ExportKind::Participants, Some(0), 30, 1), Err(RevealRefusal::NotWinners));
        assert_eq!(may_reveal(ExportKind::Winners, None, 30, 1), Err(RevealRefusal::NotDrawn));
        assert_eq!(may_reveal(ExportKind::Winners, Some(0), 30, 30 * day - 1), Ok(()));
        assert_eq!(may_reveal(ExportKind::Winners, Some(0), 30, 30 * day), Err(RevealRefusal::RetentionOver));
        assert_eq!(may_reveal(ExportKind::Winners, Some(0), 1, day), Err(RevealRefusal::RetentionOver));
        assert_eq!(may_reveal(ExportKind::Winners, Some(0), 0, 29 * day), Ok(()), "unsaid: the default 30 days");
        assert_eq!(ExportKind::from_number(0), None);
        assert_eq!(ExportKind::from_number(ExportKind::Winners.number()), Some(ExportKind::Winners));
    }
}
