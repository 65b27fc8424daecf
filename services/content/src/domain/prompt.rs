//! What an image provider is asked for: the prompt of a style, the seed, and the content address
//! of the result (the render key) under which identical requests share one generation.
//!
//! The prompt is English: Stability AI's generate endpoints refuse other languages (HTTP 422), and
//! event titles and concepts are Korean. So the prompt is built from the structured facts (business
//! kind, season, style) plus whatever ASCII words the owner's text contains (product names such as
//! "Americano", "1+1"); the Korean title itself is drawn by the local renderer and left out of
//! provider images ("no text" — image models garble Hangul).

use kem_kit::hex;
use ring::digest;
use serde::{Deserialize, Serialize};

use super::values::{ImageStyle, Millis};

/// Longest prompt sent (the provider accepts 10,000 characters).
pub const MAX_PROMPT_CHARS: usize = 2_000;
/// Longest ASCII excerpt of one free-text field in a prompt.
const MAX_EXCERPT_CHARS: usize = 300;

/// The kind of business, for the prompt's subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Business {
    /// 음식점.
    Restaurant,
    /// 카페.
    Cafe,
    /// 베이커리.
    Bakery,
    /// 주점.
    Bar,
    /// 미용.
    Beauty,
    /// 소매점.
    Retail,
    /// 운동.
    Fitness,
    /// 학원/교육.
    Education,
    /// 의료/약국.
    Healthcare,
    /// 생활서비스.
    LocalService,
    /// Anything else, or unknown.
    Other,
}

impl Business {
    fn noun(self) -> &'static str {
        match self {
            Business::Restaurant => "neighbourhood restaurant",
            Business::Cafe => "cozy cafe",
            Business::Bakery => "artisan bakery",
            Business::Bar => "casual pub",
            Business::Beauty => "beauty salon",
            Business::Retail => "local shop",
            Business::Fitness => "fitness studio",
            Business::Education => "learning academy",
            Business::Healthcare => "friendly pharmacy",
            Business::LocalService => "local service shop",
            Business::Other => "small local business",
        }
    }

    fn props(self) -> &'static str {
        match self {
            Business::Restaurant => "appetising dishes on a table",
            Business::Cafe => "coffee cups and desserts",
            Business::Bakery => "fresh bread and pastries",
            Business::Bar => "drinks and warm lights",
            Business::Beauty => "cosmetics and flowers",
            Business::Retail => "neatly displayed products and shopping bags",
            Business::Fitness => "sports gear and energetic motion",
            Business::Education => "books, notebooks and pencils",
            Business::Healthcare => "clean shelves and green leaves",
            Business::LocalService => "tidy storefront and friendly atmosphere",
            Business::Other => "gift boxes and a welcoming storefront",
        }
    }
}

/// The facts about an event an image is made from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Brief {
    /// The event's title (Korean, usually): drawn by the local renderer.
    pub title: String,
    /// The selected recommendation's concept.
    pub concept: String,
    /// The event's description.
    pub description: String,
    /// The prize's name, if any.
    pub prize: Option<String>,
    /// The event's period, if known.
    pub period: Option<(Millis, Millis)>,
    /// The store's name, if known.
    pub store_name: String,
    /// The kind of business, if known.
    pub business: Option<Business>,
}

/// What a provider is asked to draw for one style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// The positive prompt.
    pub text: String,
    /// What to avoid.
    pub negative: String,
    /// Stability `style_preset`.
    pub style_preset: String,
}

/// Text the local renderer draws onto its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caption {
    /// The headline: the event title.
    pub title: String,
    /// Smaller lines below it (prize, period, store).
    pub lines: Vec<String>,
}

const NEGATIVE: &str = "text, letters, words, typography, watermark, logo, signature, blurry, low quality, \
     distorted, deformed hands, nsfw";

fn style_words(style: ImageStyle) -> (&'static str, &'static str) {
    match style {
        ImageStyle::Simple => (
            "clean minimal composition, plain soft pastel background, generous empty space for a headline, soft \
             natural light, simple and calm",
            "photographic",
        ),
        ImageStyle::Fancy => (
            "luxurious premium look, rich warm colours, golden accents, bokeh lights, ribbons and decorative \
             ornaments, elegant and festive",
            "cinematic",
        ),
        ImageStyle::Trendy => (
            "bold saturated colours, playful 3D shapes, vibrant gradients, trendy Instagram aesthetic, fun and \
             energetic",
            "digital-art",
        ),
    }
}

/// The ASCII words of `text` (runs of other scripts dropped, whitespace collapsed), cut to a bound.
fn ascii_excerpt(text: &str) -> String {
    let kept: String = text.chars().map(|c| if c.is_ascii_graphic() { c } else { ' ' }).collect();
    let words: Vec<&str> = kept
        .split_whitespace()
        // A lone punctuation mark left from a Korean phrase says nothing.
        .filter(|w| w.chars().any(|c| c.is_ascii_alphanumeric()))
        .collect();
    let joined = words.join(" ");
    // Numbers alone ("1잔" → "1") mean nothing without the words around them.
    if !joined.chars().any(|c| c.is_ascii_alphabetic()) {
        return String::new();
    }
    joined.chars().take(MAX_EXCERPT_CHARS).collect()
}

/// Meteorological season of an instant in Korea (UTC+9).
fn season(at: Millis) -> &'static str {
    match month_kst(at) {
        3..=5 => "spring",
        6..=8 => "summer",
        9..=11 => "autumn",
        _ => "winter",
    }
}

/// `(year, month, day)` in Korea (UTC+9) of an instant.
pub fn date_kst(at: Millis) -> (i64, u32, u32) {
    let days = (at + 9 * 3_600_000).div_euclid(86_400_000);
    civil_from_days(days)
}

fn month_kst(at: Millis) -> u32 {
    date_kst(at).1
}

/// Howard Hinnant's days-to-civil conversion (proleptic Gregorian).
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

/// The prompt of `style` for `brief`.
pub fn build(brief: &Brief, style: ImageStyle) -> Prompt {
    let business = brief.business.unwrap_or(Business::Other);
    let (look, preset) = style_words(style);
    let mut text = format!(
        "Promotional social media image for a {} running a customer event, featuring {}",
        business.noun(),
        business.props()
    );
    if let Some((start, _)) = brief.period {
        text.push_str(&format!(", {} season mood", season(start)));
    }
    text.push('.');
    for (label, value) in [
        ("Theme", &brief.title),
        ("Concept", &brief.concept),
        ("Details", &brief.description),
        ("Store", &brief.store_name),
    ] {
        let excerpt = ascii_excerpt(value);
        if !excerpt.is_empty() {
            text.push_str(&format!(" {label}: {excerpt}."));
        }
    }
    if let Some(prize) = &brief.prize {
        let excerpt = ascii_excerpt(prize);
        if excerpt.is_empty() {
            text.push_str(" A gift prize for winners is shown.");
        } else {
            text.push_str(&format!(" Prize shown: {excerpt}."));
        }
    }
    text.push_str(&format!(" Style: {look}. No text or lettering in the image."));
    let text: String = text.chars().take(MAX_PROMPT_CHARS).collect();
    Prompt { text, negative: NEGATIVE.to_owned(), style_preset: preset.to_owned() }
}

/// The caption the local renderer draws: the title, then the prize and the period's end.
pub fn caption(brief: &Brief) -> Caption {
    let mut lines = Vec::new();
    if let Some(prize) = brief.prize.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        lines.push(format!("경품: {prize}"));
    }
    if let Some((_, end)) = brief.period {
        // The period's end is exclusive; the last day of the event is the day before it ends.
        let (_, month, day) = date_kst(end - 1);
        lines.push(format!("~ {month}/{day} 까지"));
    }
    if !brief.store_name.trim().is_empty() {
        lines.push(brief.store_name.trim().to_owned());
    }
    Caption { title: brief.title.trim().to_owned(), lines }
}

/// The seed asked of the provider: derived from the prompt, so the same prompt gives the same
/// image (reproducible, and consistent with the cache). In `1..=4_294_967_294` (0 means random).
pub fn seed(prompt: &Prompt) -> i64 {
    let hash = digest::digest(
        &digest::SHA256,
        format!("{}\n{}\n{}", prompt.text, prompt.negative, prompt.style_preset).as_bytes(),
    );
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash.as_ref()[..8]);
    (u64::from_be_bytes(first) % 4_294_967_294) as i64 + 1
}

/// Everything that decides a provider's output, for the render key.
#[derive(Debug, Clone, Copy)]
pub struct RenderInputs<'a> {
    /// Provider name (`stability-ai`, `local:stability-ai`).
    pub provider: &'a str,
    /// Provider model.
    pub model: &'a str,
    /// The prompt.
    pub prompt: &'a Prompt,
    /// The caption (drawn by the local renderer; part of the identity of the request).
    pub caption: &'a Caption,
    /// The style.
    pub style: ImageStyle,
    /// Aspect ratio asked (`4:5`).
    pub aspect_ratio: &'a str,
    /// Seed asked.
    pub seed: i64,
    /// Exact pixel size, for providers that render at the requested size (the local renderer);
    /// `None` for providers that render by aspect ratio (their output is then fitted to each size).
    pub exact_size: Option<(u32, u32)>,
}

/// The content address of a render: lower-case hex SHA-256 over every input that decides it.
/// Identical requests (same prompt, same provider, same ratio and seed) share one generation for
/// the cache's lifetime.
pub fn render_key(inputs: &RenderInputs<'_>) -> String {
    let size = inputs.exact_size.map(|(w, h)| format!("{w}x{h}")).unwrap_or_else(|| "*".to_owned());
    let canonical = format!(
        "kem-content/render/v1\nprovider={}\nmodel={}\nstyle={}\nprompt={}\nnegative={}\npreset={}\ncaption={}\n\
         lines={}\naspect={}\nseed={}\nsize={size}",
        inputs.provider,
        inputs.model,
        inputs.style.as_str(),
        inputs.prompt.text,
        inputs.prompt.negative,
        inputs.prompt.style_preset,
        inputs.caption.title,
        inputs.caption.lines.join("\u{1f}"),
        inputs.aspect_ratio,
        inputs.seed,
    );
    hex::encode(digest::digest(&digest::SHA256, canonical.as_bytes()))
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief() -> Brief {
        Brief {
            title: "가을 신메뉴 Americano 1+1 이벤트".into(),
            concept: "평일 점심 직장인을 위한 할인".into(),
            description: String::new(),
            prize: Some("아메리카노 1잔".into()),
            // 2025-11-01T00:00+09:00 .. 2025-12-01T00:00+09:00
            period: Some((1_761_922_800_000, 1_764_514_800_000)),
            store_name: "카페 온기".into(),
            business: Some(Business::Cafe),
        }
    }

    #[test]
    fn prompts_are_english_with_the_ascii_words_of_the_owner_text() {
        let prompt = build(&brief(), ImageStyle::Fancy);
        assert!(prompt.text.contains("cozy cafe"), "{}", prompt.text);
        assert!(prompt.text.contains("Theme: Americano 1+1."), "{}", prompt.text);
        assert!(prompt.text.contains("autumn"), "{}", prompt.text);
        assert!(prompt.text.contains("A gift prize"), "{}", prompt.text);
        assert!(prompt.text.is_ascii(), "{}", prompt.text);
        assert!(!prompt.text.contains("Concept"), "a Korean-only field adds nothing: {}", prompt.text);
        assert_eq!(prompt.style_preset, "cinematic");
        assert_ne!(build(&brief(), ImageStyle::Simple), prompt);
    }

    #[test]
    fn captions_carry_the_title_prize_and_last_day() {
        let caption = caption(&brief());
        assert_eq!(caption.title, "가을 신메뉴 Americano 1+1 이벤트");
        assert_eq!(caption.lines, vec!["경품: 아메리카노 1잔", "~ 11/30 까지", "카페 온기"]);
    }

    #[test]
    fn dates_are_korean_calendar_days() {
        assert_eq!(date_kst(0), (1970, 1, 1));
        // 2024-02-29T15:00:00Z is 2024-03-01 in Korea.
        assert_eq!(date_kst(1_709_218_800_000), (2024, 3, 1));
        assert_eq!(season(1_709_218_800_000), "spring");
    }

    #[test]
    fn seeds_and_render_keys_are_deterministic_and_input_sensitive() {
        let prompt = build(&brief(), ImageStyle::Trendy);
        let s = seed(&prompt);
        assert!((1..=4_294_967_294).contains(&s));
        assert_eq!(s, seed(&prompt));
        let caption = caption(&brief());
        let inputs = RenderInputs {
            provider: "stability-ai",
            model: "stable-image-core",
            prompt: &prompt,
            caption: &caption,
            style: ImageStyle::Trendy,
            aspect_ratio: "1:1",
            seed: s,
            exact_size: None,
        };
        let key = render_key(&inputs);
        assert_eq!(key.len(), 64);
        assert_eq!(key, render_key(&inputs));
        assert_ne!(key, render_key(&RenderInputs { aspect_ratio: "4:5", ..inputs }));
        assert_ne!(key, render_key(&RenderInputs { exact_size: Some((800, 800)), ..inputs }));
        assert_ne!(key, render_key(&RenderInputs { provider: "local:stability-ai", ..inputs }));
    }
}
