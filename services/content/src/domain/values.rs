//! The vocabulary of the content service: channels (the platform's, from the kit), styles, sizes,
//! provenance, time.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A distribution channel an image is sized for: the platform's one vocabulary (stable names as
/// stored, serde, proto numbers). Its image sizes are content's own ([`super::sizes`]).
pub use kem_kit::channel::Channel;

/// Visual style of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ImageStyle {
    /// 심플: clean layout, plain background.
    Simple,
    /// 화려한: rich, premium, decorative.
    Fancy,
    /// 트렌디: bold colours, playful.
    Trendy,
}

impl ImageStyle {
    /// The three styles, in the order generated when none are asked for.
    pub const ALL: [ImageStyle; 3] = [ImageStyle::Simple, ImageStyle::Fancy, ImageStyle::Trendy];

    /// Stable upper-case name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageStyle::Simple => "SIMPLE",
            ImageStyle::Fancy => "FANCY",
            ImageStyle::Trendy => "TRENDY",
        }
    }

    /// The style stored as `name`.
    pub fn parse(name: &str) -> Option<ImageStyle> {
        ImageStyle::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// Pixel size of an image for a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageSize {
    /// The channel it is for.
    pub channel: Channel,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl ImageSize {
    /// `1080x1350`.
    pub fn dimensions(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// Whether a result came from the real provider or the built-in local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProviderKind {
    /// A real external provider (Stability AI).
    External,
    /// The built-in local renderer (demo images, not the provider's).
    Local,
}

impl ProviderKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::External => "EXTERNAL",
            ProviderKind::Local => "LOCAL",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<ProviderKind> {
        match name {
            "EXTERNAL" => Some(ProviderKind::External),
            "LOCAL" => Some(ProviderKind::Local),
            _ => None,
        }
    }
}

/// Which provider produced an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Real or local.
    pub kind: ProviderKind,
    /// `stability-ai` or `local:stability-ai`.
    pub name: String,
    /// `stable-image-core`, or the local renderer's version.
    pub model: String,
    /// The provider's request id (`x-request-id`); empty for the local renderer.
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.as_str()), Some(c));
        }
        for s in ImageStyle::ALL {
            assert_eq!(ImageStyle::parse(s.as_str()), Some(s));
        }
        for k in [ProviderKind::External, ProviderKind::Local] {
            assert_eq!(ProviderKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(Channel::parse("TIKTOK"), None);
    }
}
