//! What a distribution job asks for, read from the `DistributionJob` queue message and checked.

use super::channel::Channel;

/// Longest event id accepted (message ids derived from it must fit 128 characters).
pub const MAX_EVENT_ID_LEN: usize = 64;

/// The copy for one channel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Copy {
    /// Text written for the channel (or the event's title and description).
    pub text: String,
    /// Hashtags without `#`.
    pub hashtags: Vec<String>,
    /// The channel's entry link (`<public base>/e/<event>?ch=<channel>`), absolute; empty when
    /// none is known (then the post carries no link).
    pub entry_url: String,
}

/// Longest entry link accepted from a job (the event service's are about 80 characters).
pub const MAX_ENTRY_URL_LEN: usize = 2_048;

/// `url` when it can be put in a post as it is: an absolute `http(s)` URL of at most
/// [`MAX_ENTRY_URL_LEN`] characters, all printable ASCII (a link the event service builds is; no
/// whitespace, control or bidi characters that could break out of a caption line or reorder what
/// a reader sees); `None` otherwise. HTML and JSON escaping still apply where it is written.
pub fn checked_entry_url(url: &str) -> Option<&str> {
    let url = url.trim();
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let host_ok = url.split_once("://").is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'));
    let clean = url.chars().all(|c| c.is_ascii_graphic());
    (scheme_ok && host_ok && clean && url.len() <= MAX_ENTRY_URL_LEN).then_some(url)
}

/// The prize offered, as channels show it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrizeSpec {
    /// Short name ("아메리카노 1잔").
    pub name: String,
    /// Number of winners.
    pub winner_count: i32,
}

/// One publication of an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobSpec {
    /// The event.
    pub event_id: String,
    /// Its owner.
    pub owner_id: String,
    /// One entry per channel, in the order received.
    pub deliveries: Vec<(Channel, Copy)>,
    /// The content image to publish (empty when none was selected).
    pub image_id: String,
    /// Event title.
    pub title: String,
    /// Event description.
    pub description: String,
    /// Start of the entry period (ms; 0 when unknown).
    pub period_start_ms: i64,
    /// End of the entry period (ms, exclusive; 0 when unknown).
    pub period_end_ms: i64,
    /// The prize, when there is one.
    pub prize: Option<PrizeSpec>,
    /// "first-come" or "draw".
    pub first_come: bool,
}

impl JobSpec {
    /// The copy of `channel`, if the job delivers to it.
    pub fn copy_for(&self, channel: Channel) -> Option<&Copy> {
        self.deliveries.iter().find(|(c, _)| *c == channel).map(|(_, copy)| copy)
    }

    /// Whether the event's period is over at `now_ms` (unknown periods never end).
    pub fn ended(&self, now_ms: i64) -> bool {
        self.period_end_ms > 0 && now_ms >= self.period_end_ms
    }
}

/// Why a job message cannot be worked on (it is dead-lettered).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A required field is missing or malformed.
    #[error("invalid distribution job: {0}")]
    Invalid(String),
}

/// Checks what the contract promises about a job: an event and owner, 1–6 unique known channels.
/// `channels` are the raw channel numbers as received.
pub fn check(event_id: &str, owner_id: &str, channels: &[i32]) -> Result<Vec<Channel>, JobError> {
    if event_id.trim().is_empty() || event_id.len() > MAX_EVENT_ID_LEN || event_id.contains(char::is_whitespace) {
        return Err(JobError::Invalid(format!(
            "event_id {event_id:?} must be 1-{MAX_EVENT_ID_LEN} characters without spaces"
        )));
    }
    if owner_id.trim().is_empty() {
        return Err(JobError::Invalid("owner_id is empty".to_owned()));
    }
    if channels.is_empty() || channels.len() > Channel::ALL.len() {
        return Err(JobError::Invalid(format!("1 to 6 deliveries expected, got {}", channels.len())));
    }
    let mut seen = Vec::with_capacity(channels.len());
    for number in channels {
        let channel = Channel::from_number(*number)
            .ok_or_else(|| JobError::Invalid(format!("channel {number} is unspecified or unknown")))?;
        if seen.contains(&channel) {
            return Err(JobError::Invalid(format!("channel {channel} appears twice")));
        }
        seen.push(channel);
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_need_an_event_an_owner_and_unique_known_channels() {
        assert_eq!(check("e-1", "o-1", &[4, 6]), Ok(vec![Channel::Instagram, Channel::KakaoChannel]));
        for (event, owner, channels) in [
            ("", "o", &[4][..]),
            ("e 1", "o", &[4]),
            ("e", "", &[4]),
            ("e", "o", &[]),
            ("e", "o", &[0]),
            ("e", "o", &[9]),
            ("e", "o", &[4, 4]),
            ("e", "o", &[1, 2, 3, 4, 5, 6, 1]),
        ] {
            assert!(check(event, owner, channels).is_err(), "{event:?} {owner:?} {channels:?}");
        }
        assert!(check(&"x".repeat(65), "o", &[1]).is_err());
    }

    #[test]
    fn only_absolute_web_links_without_spaces_are_kept() {
        assert_eq!(
            checked_entry_url(" https://kem.example/e/1?ch=instagram "),
            Some("https://kem.example/e/1?ch=instagram")
        );
        assert_eq!(checked_entry_url("http://127.0.0.1:8080/e/1"), Some("http://127.0.0.1:8080/e/1"));
        for bad in [
            "",
            "kem.example/e/1",
            "javascript:alert(1)",
            "https://",
            "https:///e/1",
            "https://kem.example/e/1\n#광고",
            "https://kem.example/e 1",
            "https://kem.example/\u{202E}",
        ] {
            assert_eq!(checked_entry_url(bad), None, "{bad:?}");
        }
        assert_eq!(checked_entry_url(&format!("https://k.example/{}", "a".repeat(MAX_ENTRY_URL_LEN))), None);
    }

    #[test]
    fn unknown_periods_never_end() {
        let mut job = JobSpec::default();
        assert!(!job.ended(i64::MAX));
        job.period_end_ms = 10;
        assert!(!job.ended(9));
        assert!(job.ended(10));
    }
}
