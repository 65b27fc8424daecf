//! The built-in local image provider for `kem up` and tests without a Stability AI key: a real PNG
//! of the exact requested size, deterministic for a given request (style, seed, caption, size):
//! a style-dependent gradient with simple shapes, the event title and its details drawn as text,
//! and a "LOCAL DEMO" label, so nobody takes it for a provider image.

pub mod canvas;
pub mod font;

use std::time::Duration;

use bytes::Bytes;

use crate::app::Generated;
use crate::app::ports::{GeneratorLabel, ImageGenerator, RenderRequest};
use crate::domain::failure::{Failure, FailureKind};
use crate::domain::values::{ImageStyle, ProviderKind};
use crate::infra::imaging::{Raster, encode_png};
use crate::infra::stability;
use canvas::{Canvas, Rgb, lerp};

/// Version of the renderer (its images change when it does; part of every render key).
pub const MODEL: &str = "kem-local-png-v1";

/// The label drawn in a corner of every local image.
const DEMO_LABEL: &str = "LOCAL DEMO";

/// A tiny deterministic generator (xorshift64*), seeded per image.
struct Dice(u64);

impl Dice {
    fn new(seed: i64) -> Dice {
        Dice((seed as u64) ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// Colours of a style.
struct Palette {
    from: Rgb,
    to: Rgb,
    shapes: Rgb,
    panel: Rgb,
    panel_alpha: f64,
    title: Rgb,
    text: Rgb,
}

fn palette(style: ImageStyle, dice: &mut Dice) -> Palette {
    match style {
        ImageStyle::Simple => {
            let (from, to) = dice.pick(&[
                ([250, 243, 232], [236, 224, 206]),
                ([236, 244, 240], [214, 232, 224]),
                ([240, 240, 248], [222, 224, 240]),
            ]);
            Palette {
                from,
                to,
                shapes: [255, 255, 255],
                panel: [255, 255, 255],
                panel_alpha: 0.78,
                title: [40, 44, 52],
                text: [90, 96, 108],
            }
        }
        ImageStyle::Fancy => {
            let (from, to) = dice.pick(&[([28, 18, 52], [92, 24, 60]), ([12, 30, 48], [60, 20, 70])]);
            Palette {
                from,
                to,
                shapes: [232, 190, 92],
                panel: [12, 8, 24],
                panel_alpha: 0.55,
                title: [246, 214, 130],
                text: [240, 230, 210],
            }
        }
        ImageStyle::Trendy => {
            let (from, to) = dice.pick(&[
                ([255, 64, 129], [255, 171, 64]),
                ([0, 200, 220], [124, 77, 255]),
                ([255, 94, 58], [255, 42, 104]),
            ]);
            Palette {
                from,
                to,
                shapes: [255, 255, 255],
                panel: [20, 20, 30],
                panel_alpha: 0.35,
                title: [255, 255, 255],
                text: [255, 246, 230],
            }
        }
    }
}

/// Draws the whole image for `request` (exact size).
pub fn render(request: &RenderRequest) -> Raster {
    let (w, h) = (request.width, request.height);
    let (fw, fh) = (f64::from(w), f64::from(h));
    let unit = fw.min(fh);
    let mut dice = Dice::new(request.seed);
    let colours = palette(request.style, &mut dice);
    let mut canvas = Canvas::new(w, h);
    match request.style {
        ImageStyle::Simple => {
            canvas.gradient(colours.from, colours.to, 0.0, 1.0);
            for _ in 0..5 {
                let (x, y, r) = (dice.unit() * fw, dice.unit() * fh, unit * (0.08 + dice.unit() * 0.18));
                canvas.disc(x, y, r, colours.shapes, 0.35);
            }
            canvas.line((fw * 0.08, fh * 0.9), (fw * 0.92, fh * 0.9), (unit / 200.0).max(1.0), colours.text, 0.5);
        }
        ImageStyle::Fancy => {
            canvas.gradient(colours.from, colours.to, 1.0, 1.0);
            for _ in 0..24 {
                let (x, y, r) = (dice.unit() * fw, dice.unit() * fh, unit * (0.01 + dice.unit() * 0.06));
                canvas.disc(x, y, r, colours.shapes, 0.12 + dice.unit() * 0.25);
            }
            let inset = unit * 0.04;
            let stroke = (unit / 160.0).max(1.0);
            let corners = [(inset, inset), (fw - inset, inset), (fw - inset, fh - inset), (inset, fh - inset)];
            for i in 0..4 {
                canvas.line(corners[i], corners[(i + 1) % 4], stroke, colours.shapes, 0.9);
            }
            for &(x, y) in &corners {
                canvas.ring(x, y, unit * 0.03, stroke, colours.shapes, 0.9);
            }
        }
        ImageStyle::Trendy => {
            canvas.gradient(colours.from, colours.to, 1.0, -0.6);
            for i in 0..6 {
                let (x, y, r) = (dice.unit() * fw, dice.unit() * fh, unit * (0.06 + dice.unit() * 0.16));
                if i % 2 == 0 {
                    canvas.disc(x, y, r, colours.shapes, 0.22);
                } else {
                    canvas.ring(x, y, r, unit * 0.02, colours.shapes, 0.5);
                }
            }
            let band = unit * 0.05;
            for k in 0..3 {
                let y = fh * (0.12 + 0.05 * f64::from(k));
                canvas.line(
                    (-band, y + fw * 0.2),
                    (fw + band, y),
                    band * 0.4,
                    lerp(colours.to, [255, 255, 255], 0.3),
                    0.5,
                );
            }
        }
    }
    draw_caption(&mut canvas, request, &colours, unit);
    // The demo label, bottom right.
    let label_size = (unit / 28.0).max(8.0);
    let label_w = font::measure(DEMO_LABEL, label_size);
    let (lx, ly) = (fw - label_w - unit * 0.05, fh - label_size - unit * 0.035);
    let backing = (lx - label_size * 0.4, ly - label_size * 0.25, label_w + label_size * 0.8, label_size * 1.5);
    canvas.rounded_rect(backing, label_size * 0.4, [0, 0, 0], 0.45);
    font::draw_text(&mut canvas, DEMO_LABEL, lx, ly, label_size, [255, 255, 255]);
    canvas.into_raster()
}

/// The title (as large as fits in three lines) and the detail lines, centred on a panel.
fn draw_caption(canvas: &mut Canvas, request: &RenderRequest, colours: &Palette, unit: f64) {
    let (fw, fh) = (f64::from(canvas.width()), f64::from(canvas.height()));
    let max_width = fw * 0.8;
    let mut size = (unit / 7.0).max(10.0);
    let title = if request.caption.title.is_empty() { "EVENT".to_owned() } else { request.caption.title.clone() };
    let mut lines = font::wrap(&title, size, max_width);
    while lines.len() > 3 && size > 10.0 {
        size *= 0.85;
        lines = font::wrap(&title, size, max_width);
    }
    lines.truncate(4);
    let small = (size * 0.42).max(8.0);
    let details: Vec<String> = request
        .caption
        .lines
        .iter()
        .take(3)
        .flat_map(|l| font::wrap(l, small, max_width).into_iter().take(1))
        .collect();
    let line_gap = size * 0.25;
    let block_h = lines.len() as f64 * (size + line_gap) + details.len() as f64 * (small * 1.35) + size * 0.3;
    let widest = lines
        .iter()
        .map(|l| font::measure(l, size))
        .chain(details.iter().map(|l| font::measure(l, small)))
        .fold(0.0_f64, f64::max);
    let top = ((fh - block_h) / 2.0).max(unit * 0.05);
    let pad = unit * 0.05;
    canvas.rounded_rect(
        ((fw - widest) / 2.0 - pad, top - pad, widest + 2.0 * pad, block_h + 2.0 * pad),
        unit * 0.04,
        colours.panel,
        colours.panel_alpha,
    );
    let mut y = top;
    for line in &lines {
        let x = (fw - font::measure(line, size)) / 2.0;
        if colours.panel_alpha < 0.5 {
            // A soft shadow keeps white text readable on bright gradients.
            font::draw_text(canvas, line, x + size * 0.05, y + size * 0.05, size, [0, 0, 0]);
        }
        font::draw_text(canvas, line, x, y, size, colours.title);
        y += size + line_gap;
    }
    y += size * 0.3;
    for line in &details {
        let x = (fw - font::measure(line, small)) / 2.0;
        font::draw_text(canvas, line, x, y, small, colours.text);
        y += small * 1.35;
    }
}

/// The local provider.
#[derive(Debug, Clone, Default)]
pub struct LocalGenerator;

#[async_trait::async_trait]
impl ImageGenerator for LocalGenerator {
    fn label(&self) -> GeneratorLabel {
        GeneratorLabel {
            kind: ProviderKind::Local,
            name: kem_kit::external::local_label(stability::PROVIDER),
            model: MODEL.to_owned(),
        }
    }

    fn renders_exact_size(&self) -> bool {
        true
    }

    async fn generate(&self, request: &RenderRequest, _budget: Duration) -> Result<Generated, Failure> {
        let owned = request.clone();
        let png = tokio::task::spawn_blocking(move || encode_png(&render(&owned)))
            .await
            .map_err(|e| Failure::new(FailureKind::Internal, format!("the local renderer failed: {e}")))?
            .map_err(|e| Failure::new(FailureKind::Internal, format!("the local renderer failed: {e}")))?;
        tracing::debug!(provider = %self.label().name, width = request.width, height = request.height,
            style = request.style.as_str(), "LOCAL renderer drew a demo image (not a Stability AI image)");
        Ok(Generated {
            bytes: Bytes::from(png),
            content_type: "image/png".to_owned(),
            width: request.width,
            height: request.height,
            seed: request.seed,
            request_id: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::prompt::{Caption, Prompt};
    use crate::infra::imaging::decode_png;

    fn request(style: ImageStyle, width: u32, height: u32) -> RenderRequest {
        RenderRequest {
            prompt: Prompt { text: "p".into(), negative: "n".into(), style_preset: "photographic".into() },
            caption: Caption {
                title: "가을 신메뉴 이벤트 Americano 1+1".into(),
                lines: vec!["경품: 아메리카노 1잔".into()],
            },
            style,
            width,
            height,
            aspect_ratio: "1:1".into(),
            seed: 42,
        }
    }

    #[tokio::test]
    async fn renders_real_pngs_of_the_exact_size_deterministically() {
        for (style, w, h) in
            [(ImageStyle::Simple, 160, 200), (ImageStyle::Fancy, 320, 180), (ImageStyle::Trendy, 120, 120)]
        {
            let generated =
                LocalGenerator.generate(&request(style, w, h), Duration::from_secs(5)).await.expect("render");
            let decoded = decode_png(&generated.bytes).expect("a valid PNG");
            assert_eq!((decoded.width, decoded.height), (w, h));
            assert_eq!((generated.width, generated.height), (w, h));
            let again = LocalGenerator.generate(&request(style, w, h), Duration::from_secs(5)).await.expect("render");
            assert_eq!(generated.bytes, again.bytes, "deterministic");
        }
        let simple = LocalGenerator.generate(&request(ImageStyle::Simple, 100, 100), Duration::ZERO).await.expect("r");
        let trendy = LocalGenerator.generate(&request(ImageStyle::Trendy, 100, 100), Duration::ZERO).await.expect("r");
        assert_ne!(simple.bytes, trendy.bytes, "styles look different");
        assert_eq!(LocalGenerator.label().name, "local:stability-ai");
        assert_eq!(LocalGenerator.label().kind, ProviderKind::Local);
    }
}
