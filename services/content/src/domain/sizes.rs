//! The image sizes each channel needs, and the provider aspect ratio closest to a size.
//!
//! | channel | sizes | why |
//! |---|---|---|
//! | Instagram | 1080×1080, 1080×1350 | square and 4:5 portrait feed posts (Instagram's recommended widths) |
//! | Kakao Channel | 800×800 | square image of a 친구톡/브랜드메시지 feed template |
//! | Naver Blog | 966×644 | full width of the SmartEditor body column at 3:2 |
//! | 우리동네TV, 지니TV | 1920×1080 | full-HD 16:9 TV frame |
//! | 링고비즈 | none | a ring-back tone is audio: the channel needs no image |
//!
//! A request whose channels need no image at all (링고비즈 only) still gets one square
//! [`COVER`] image per style tagged with that channel: the event needs an image selected before it
//! can be published, and the cover doubles as the event's page image.

use super::values::{Channel, ImageSize};

/// Smallest width or height accepted in an explicit size.
pub const MIN_SIDE: u32 = 64;
/// Largest width or height accepted in an explicit size.
pub const MAX_SIDE: u32 = 4096;

/// The cover size used when no requested channel needs an image (see the module docs).
pub const COVER: (u32, u32) = (1080, 1080);

/// The standard sizes of `channel` (empty for channels that carry no image).
pub fn standard_sizes(channel: Channel) -> &'static [(u32, u32)] {
    match channel {
        Channel::Instagram => &[(1080, 1080), (1080, 1350)],
        Channel::KakaoChannel => &[(800, 800)],
        Channel::NaverBlog => &[(966, 644)],
        Channel::UridongneTv | Channel::GenieTv => &[(1920, 1080)],
        Channel::RingoBiz => &[],
    }
}

/// The sizes for `channels` in order, duplicates removed; the [`COVER`] of the first channel when
/// none of them needs an image.
pub fn sizes_for(channels: &[Channel]) -> Vec<ImageSize> {
    let mut sizes: Vec<ImageSize> = Vec::new();
    for &channel in channels {
        for &(width, height) in standard_sizes(channel) {
            let size = ImageSize { channel, width, height };
            if !sizes.contains(&size) {
                sizes.push(size);
            }
        }
    }
    if sizes.is_empty()
        && let Some(&channel) = channels.first()
    {
        sizes.push(ImageSize { channel, width: COVER.0, height: COVER.1 });
    }
    sizes
}

/// The aspect ratios Stability AI's v2beta generate endpoints accept (`aspect_ratio`).
pub const ASPECT_RATIOS: [(u32, u32); 9] = [(16, 9), (1, 1), (21, 9), (2, 3), (3, 2), (4, 5), (5, 4), (9, 16), (9, 21)];

/// The accepted aspect ratio closest to `width`×`height` (by the ratio's logarithm, so 2:1 and
/// 1:2 are equally far from 1:1), as the provider spells it: `4:5`.
pub fn closest_aspect_ratio(width: u32, height: u32) -> String {
    let target = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
    let mut best = (1, 1);
    let mut best_distance = f64::INFINITY;
    for (w, h) in ASPECT_RATIOS {
        let distance = ((f64::from(w) / f64::from(h)).ln() - target).abs();
        if distance < best_distance {
            best = (w, h);
            best_distance = distance;
        }
    }
    format!("{}:{}", best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_have_their_standard_sizes() {
        let sizes = sizes_for(&[Channel::Instagram, Channel::KakaoChannel, Channel::GenieTv, Channel::UridongneTv]);
        let dims: Vec<(Channel, u32, u32)> = sizes.iter().map(|s| (s.channel, s.width, s.height)).collect();
        assert_eq!(
            dims,
            vec![
                (Channel::Instagram, 1080, 1080),
                (Channel::Instagram, 1080, 1350),
                (Channel::KakaoChannel, 800, 800),
                (Channel::GenieTv, 1920, 1080),
                (Channel::UridongneTv, 1920, 1080),
            ]
        );
    }

    #[test]
    fn ring_back_tones_need_no_image_but_alone_get_a_cover() {
        assert!(standard_sizes(Channel::RingoBiz).is_empty());
        assert_eq!(sizes_for(&[Channel::RingoBiz, Channel::NaverBlog]).len(), 1);
        let cover = sizes_for(&[Channel::RingoBiz]);
        assert_eq!(cover, vec![ImageSize { channel: Channel::RingoBiz, width: 1080, height: 1080 }]);
        assert!(sizes_for(&[]).is_empty());
    }

    #[test]
    fn sizes_map_to_the_nearest_provider_ratio() {
        assert_eq!(closest_aspect_ratio(1080, 1080), "1:1");
        assert_eq!(closest_aspect_ratio(1080, 1350), "4:5");
        assert_eq!(closest_aspect_ratio(1920, 1080), "16:9");
        assert_eq!(closest_aspect_ratio(966, 644), "3:2");
        assert_eq!(closest_aspect_ratio(800, 800), "1:1");
        assert_eq!(closest_aspect_ratio(1080, 1920), "9:16");
        assert_eq!(closest_aspect_ratio(3000, 1000), "21:9");
    }
}
