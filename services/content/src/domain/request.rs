//! A `content-generation` work request, validated: which images (style × size) to make for which
//! event and owner, by when.

use super::prompt::Brief;
use super::sizes::{self, MAX_SIDE, MIN_SIDE};
use super::values::{Channel, ImageSize, ImageStyle, Millis};

/// Most explicit sizes one request may carry.
pub const MAX_SIZES: usize = 20;

/// An enum value as received: known, unset (0), or a number this build does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnumInput<T> {
    /// A known value.
    Known(T),
    /// 0 / UNSPECIFIED.
    Unset,
    /// A number outside the enum.
    Unknown(i32),
}

/// An explicit size as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeInput {
    /// The channel it is for.
    pub channel: EnumInput<Channel>,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
}

/// A work request as received (decoded, not yet validated).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestInput {
    /// The job to report on.
    pub job_id: String,
    /// The event.
    pub event_id: String,
    /// Its owner.
    pub owner_id: String,
    /// What the images show.
    pub brief: Brief,
    /// Channels to size images for.
    pub channels: Vec<EnumInput<Channel>>,
    /// Explicit sizes (empty: the channels' standard sizes).
    pub sizes: Vec<SizeInput>,
    /// Styles (empty: all three).
    pub styles: Vec<EnumInput<ImageStyle>>,
    /// After this the event service fails the job; the worker stops.
    pub deadline: Option<Millis>,
}

/// A valid work request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerationRequest {
    /// The job to report on.
    pub job_id: String,
    /// The event.
    pub event_id: String,
    /// Its owner (images are owner-scoped by it).
    pub owner_id: String,
    /// What the images show.
    pub brief: Brief,
    /// Sizes to make, in order, unique, at least one.
    pub sizes: Vec<ImageSize>,
    /// Styles to make, in order, unique, at least one.
    pub styles: Vec<ImageStyle>,
    /// When the job expires, if the producer set it.
    pub deadline: Option<Millis>,
}

impl GenerationRequest {
    /// One slot per style × size, style-major (all sizes of the first style first).
    pub fn slots(&self) -> Vec<Slot> {
        self.styles.iter().flat_map(|&style| self.sizes.iter().map(move |&size| Slot { style, size })).collect()
    }
}

/// One image to make: a style at a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The style.
    pub style: ImageStyle,
    /// The size (and channel).
    pub size: ImageSize,
}

impl Slot {
    /// Stable name of the slot within a job: `SIMPLE/INSTAGRAM/1080x1350`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.style.as_str(), self.size.channel.as_str(), self.size.dimensions())
    }
}

/// Why a request cannot be worked: field violations with the camelCase paths of the message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Violations(pub Vec<(String, String)>);

impl Violations {
    fn push(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push((field.into(), description.into()));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(field, why)| format!("{field} {why}")).collect();
        f.write_str(&parts.join("; "))
    }
}

fn known<T: Copy>(values: &[EnumInput<T>], field: &str, what: &str, errors: &mut Violations) -> Vec<(usize, T)> {
    let mut out = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match value {
            EnumInput::Known(v) => out.push((i, *v)),
            EnumInput::Unset => errors.push(format!("{field}[{i}]"), format!("must be a {what}, not UNSPECIFIED")),
            EnumInput::Unknown(n) => errors.push(format!("{field}[{i}]"), format!("{n} is not a known {what}")),
        }
    }
    out
}

/// Validates `input`. Duplicated channels, sizes or styles are dropped (they would make the same
/// images twice) rather than refused.
pub fn validate(input: RequestInput) -> Result<GenerationRequest, Violations> {
    let mut errors = Violations::default();
    for (field, value) in [("jobId", &input.job_id), ("eventId", &input.event_id), ("ownerId", &input.owner_id)] {
        if value.trim().is_empty() {
            errors.push(field, "is required");
        }
    }
    let channels: Vec<Channel> = {
        let mut unique = Vec::new();
        for (_, channel) in known(&input.channels, "channels", "channel", &mut errors) {
            if !unique.contains(&channel) {
                unique.push(channel);
            }
        }
        unique
    };
    let mut sizes: Vec<ImageSize> = Vec::new();
    if input.sizes.len() > MAX_SIZES {
        errors.push("sizes", format!("at most {MAX_SIZES} sizes per request, got {}", input.sizes.len()));
    }
    for (i, size) in input.sizes.iter().enumerate() {
        let channel = match size.channel {
            EnumInput::Known(c) => Some(c),
            EnumInput::Unset => {
                errors.push(format!("sizes[{i}].channel"), "must be a channel, not UNSPECIFIED");
                None
            }
            EnumInput::Unknown(n) => {
                errors.push(format!("sizes[{i}].channel"), format!("{n} is not a known channel"));
                None
            }
        };
        let side = |value: i32, name: &str, errors: &mut Violations| -> Option<u32> {
            match u32::try_from(value) {
                Ok(v) if (MIN_SIDE..=MAX_SIDE).contains(&v) => Some(v),
                _ => {
                    errors.push(
                        format!("sizes[{i}].{name}"),
                        format!("must be between {MIN_SIDE} and {MAX_SIDE} pixels, got {value}"),
                    );
                    None
                }
            }
        };
        let width = side(size.width, "width", &mut errors);
        let height = side(size.height, "height", &mut errors);
        if let (Some(channel), Some(width), Some(height)) = (channel, width, height) {
            let size = ImageSize { channel, width, height };
            if !sizes.contains(&size) {
                sizes.push(size);
            }
        }
    }
    if input.sizes.is_empty() {
        if input.channels.is_empty() {
            errors.push("channels", "at least one channel is required (or explicit sizes)");
        }
        sizes = sizes::sizes_for(&channels);
    }
    let mut styles: Vec<ImageStyle> = Vec::new();
    for (_, style) in known(&input.styles, "styles", "style", &mut errors) {
        if !styles.contains(&style) {
            styles.push(style);
        }
    }
    if input.styles.is_empty() {
        styles = ImageStyle::ALL.to_vec();
    }
    let mut brief = input.brief;
    brief.title = brief.title.trim().to_owned();
    if brief.title.is_empty() {
        errors.push("title", "is required (the event's title, or the recommendation's)");
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(GenerationRequest {
        job_id: input.job_id.trim().to_owned(),
        event_id: input.event_id.trim().to_owned(),
        owner_id: input.owner_id.trim().to_owned(),
        brief,
        sizes,
        styles,
        deadline: input.deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RequestInput {
        RequestInput {
            job_id: "job-1".into(),
            event_id: "event-1".into(),
            owner_id: "owner-1".into(),
            brief: Brief { title: "가을 이벤트".into(), ..Brief::default() },
            channels: vec![EnumInput::Known(Channel::Instagram), EnumInput::Known(Channel::Instagram)],
            ..RequestInput::default()
        }
    }

    #[test]
    fn defaults_are_all_styles_at_the_channels_standard_sizes() {
        let request = validate(input()).expect("valid");
        assert_eq!(request.styles, ImageStyle::ALL.to_vec());
        assert_eq!(request.sizes.len(), 2, "Instagram's two sizes, the duplicate channel dropped");
        let slots = request.slots();
        assert_eq!(slots.len(), 6);
        assert_eq!(slots[0].key(), "SIMPLE/INSTAGRAM/1080x1080");
        assert_eq!(slots[1].key(), "SIMPLE/INSTAGRAM/1080x1350");
        assert_eq!(slots[5].key(), "TRENDY/INSTAGRAM/1080x1350");
    }

    #[test]
    fn explicit_sizes_and_styles_win() {
        let mut i = input();
        i.sizes = vec![SizeInput { channel: EnumInput::Known(Channel::NaverBlog), width: 320, height: 200 }];
        i.styles = vec![EnumInput::Known(ImageStyle::Trendy)];
        let request = validate(i).expect("valid");
        assert_eq!(request.sizes, vec![ImageSize { channel: Channel::NaverBlog, width: 320, height: 200 }]);
        assert_eq!(request.styles, vec![ImageStyle::Trendy]);
    }

    #[test]
    fn violations_name_the_camel_case_fields() {
        let mut i = input();
        i.owner_id = " ".into();
        i.brief.title = String::new();
        i.channels = vec![EnumInput::Unset, EnumInput::Unknown(42)];
        i.styles = vec![EnumInput::Unset];
        i.sizes = vec![SizeInput { channel: EnumInput::Known(Channel::Instagram), width: 10, height: 100_000 }];
        let errors = validate(i).expect_err("invalid");
        let fields: Vec<&str> = errors.0.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            vec!["ownerId", "channels[0]", "channels[1]", "sizes[0].width", "sizes[0].height", "styles[0]", "title"]
        );
        let mut none = input();
        none.channels.clear();
        assert_eq!(validate(none).expect_err("no channel").0[0].0, "channels");
    }
}
