//! The KT partner channels' rendition (TV screens, signage): the stored image with a QR code of
//! the event's entry link in its bottom-right corner, so a passer-by's phone camera opens the
//! link from across the room.
//!
//! The code is drawn square-module by square-module from the `qrcode` crate's module matrix
//! (built without its image features) into the [`Raster`], black on a white quiet zone of
//! [`QUIET_ZONE`] modules, at error correction level M (15 % of the code may be lost to glare or a
//! dirty screen). Its box — code and quiet zone — is about a quarter of the shorter side, each
//! module a whole number of pixels and never fewer than [`MIN_MODULE_PX`]; every pixel outside the
//! box is the stored image's. An image too small to hold a readable code at that size is refused
//! (a quarter grows to at most half the shorter side before that), never drawn unreadable.

use qrcode::{Color, EcLevel, QrCode};

use super::imaging::{Raster, decode_checked, encode_png};
use crate::app::ports::ImagingError;

/// Light modules around the code on every side, as ISO/IEC 18004 asks: without them a scanner
/// may not find the finder patterns against a busy poster.
pub const QUIET_ZONE: u32 = 4;
/// Fewest pixels per module: below this a screen's scaling blurs the modules together.
pub const MIN_MODULE_PX: u32 = 4;
/// Error correction of the code: M (15 %), a readable code a version smaller than Q's.
pub const EC_LEVEL: EcLevel = EcLevel::M;

/// Where the code went: its box (code and quiet zone), in pixels from the top-left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QrBox {
    /// Left edge of the box.
    pub x: u32,
    /// Top edge of the box.
    pub y: u32,
    /// Side of the box (square).
    pub side: u32,
    /// Pixels per module.
    pub module_px: u32,
    /// Modules per side of the code, without the quiet zone.
    pub modules: u32,
}

impl QrBox {
    /// Whether `(x, y)` is inside the box.
    pub fn contains(&self, x: u32, y: u32) -> bool {
        (self.x..self.x + self.side).contains(&x) && (self.y..self.y + self.side).contains(&y)
    }
}

/// The box of a code of `modules` modules per side on a `width`×`height` image: a quarter of the
/// shorter side, rounded to whole pixels per module, at least [`MIN_MODULE_PX`] a module; `None`
/// when that box would take more than half the shorter side.
pub fn qr_box(width: u32, height: u32, modules: u32) -> Option<QrBox> {
    let shorter = width.min(height);
    let with_zone = modules.checked_add(2 * QUIET_ZONE)?;
    let quarter = f64::from(shorter) / 4.0;
    let module_px = ((quarter / f64::from(with_zone)).round() as u32).max(MIN_MODULE_PX);
    let side = with_zone.checked_mul(module_px)?;
    if side > shorter / 2 {
        return None;
    }
    Some(QrBox { x: width - side, y: height - side, side, module_px, modules })
}

/// Draws a QR code of `text` into `raster`'s bottom-right corner; the box it took. Refuses a text
/// no QR code holds and an image too small for a readable code.
pub fn stamp(raster: &mut Raster, text: &str) -> Result<QrBox, ImagingError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EC_LEVEL)
        .map_err(|e| ImagingError(format!("no QR code holds a text of {} bytes: {e}", text.len())))?;
    let modules = u32::try_from(code.width()).map_err(|_| ImagingError("QR code too large".to_owned()))?;
    let placed = qr_box(raster.width, raster.height, modules).ok_or_else(|| {
        let needed = (modules + 2 * QUIET_ZONE) * MIN_MODULE_PX * 2;
        ImagingError(format!(
            "a {}x{} image is too small for a readable QR code of this text; its shorter side must be at least {needed} px",
            raster.width, raster.height
        ))
    })?;
    let dark = code.to_colors();
    let width = raster.width as usize;
    for py in 0..placed.side {
        // Module row of this pixel row, `None` in the quiet zone.
        let my = (py / placed.module_px).checked_sub(QUIET_ZONE).filter(|m| *m < modules);
        let row = (placed.y + py) as usize * width;
        for px in 0..placed.side {
            let mx = (px / placed.module_px).checked_sub(QUIET_ZONE).filter(|m| *m < modules);
            let is_dark = match (mx, my) {
                (Some(mx), Some(my)) => dark.get((my * modules + mx) as usize) == Some(&Color::Dark),
                _ => false,
            };
            let i = (row + (placed.x + px) as usize) * 3;
            let value = if is_dark { 0 } else { 255 };
            raster.pixels[i..i + 3].copy_from_slice(&[value; 3]);
        }
    }
    Ok(placed)
}

/// A stored PNG with the QR code of `text` ([`stamp`]), as PNG, with its pixel size. Refuses
/// what the other conversions refuse (not a PNG, too large) before decoding a pixel.
pub fn png_with_qr(bytes: &[u8], text: &str) -> Result<(Vec<u8>, u32, u32), ImagingError> {
    let mut raster = decode_checked(bytes)?;
    stamp(&mut raster, text)?;
    Ok((encode_png(&raster)?, raster.width, raster.height))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::infra::imaging::decode_png;

    const ENTRY: &str =
        "https://kem.example/e/3c5d2b1a-0000-4000-8000-000000000000?src=kt-signage&utm_campaign=spring-2027";

    /// A busy poster: every pixel different from its neighbours, nowhere plain white or black.
    fn poster(width: u32, height: u32) -> Raster {
        let mut raster = Raster::filled(width, height, [0, 0, 0]);
        for y in 0..height {
            for x in 0..width {
                let i = ((y * width + x) * 3) as usize;
                raster.pixels[i..i + 3].copy_from_slice(&[
                    (20 + (x * 7 + y) % 200) as u8,
                    (30 + (x + y * 3) % 180) as u8,
                    (40 + (x * y) % 160) as u8,
                ]);
            }
        }
        raster
    }

    /// What an independent reader finds in `raster`: the texts of the QR codes it decodes.
    fn read_codes(raster: &Raster) -> Vec<String> {
        let mut prepared =
            rqrr::PreparedImage::prepare_from_greyscale(raster.width as usize, raster.height as usize, |x, y| {
                let [r, g, b] = raster.pixel(x as u32, y as u32);
                ((u32::from(r) * 299 + u32::from(g) * 587 + u32::from(b) * 114) / 1000) as u8
            });
        prepared.detect_grids().iter().filter_map(|grid| grid.decode().ok().map(|(_, text)| text)).collect()
    }

    #[test]
    fn the_code_reads_back_exactly_and_nothing_outside_its_box_changes() {
        let source = poster(1080, 1350);
        let png = encode_png(&source).expect("png");
        let (out, width, height) = png_with_qr(&png, ENTRY).expect("render");
        assert_eq!((width, height), (1080, 1350));
        let rendered = decode_png(&out).expect("a PNG");
        assert_eq!(read_codes(&rendered), vec![ENTRY.to_owned()], "exactly the text, once");

        let code = QrCode::with_error_correction_level(ENTRY.as_bytes(), EC_LEVEL).expect("code");
        let placed = qr_box(1080, 1350, code.width() as u32).expect("fits");
        assert_eq!((placed.x + placed.side, placed.y + placed.side), (1080, 1350), "bottom-right corner");
        assert!(placed.module_px >= MIN_MODULE_PX);
        let quarter = 1080.0 / 4.0;
        assert!((f64::from(placed.side) - quarter).abs() <= quarter * 0.25, "about a quarter: {}", placed.side);
        for y in 0..height {
            for x in 0..width {
                if !placed.contains(x, y) {
                    assert_eq!(rendered.pixel(x, y), source.pixel(x, y), "({x}, {y}) outside the box");
                }
            }
        }
        // The quiet zone is white all round; the box holds only black and white.
        let zone = QUIET_ZONE * placed.module_px;
        for d in 0..placed.side {
            for (x, y) in [(placed.x + d, placed.y), (placed.x, placed.y + d), (placed.x + d, placed.y + zone - 1)] {
                assert_eq!(rendered.pixel(x, y), [255; 3], "quiet zone at ({x}, {y})");
            }
            assert_eq!(rendered.pixel(1079, placed.y + d), [255; 3]);
            assert_eq!(rendered.pixel(placed.x + d, 1349), [255; 3]);
        }
        for y in placed.y..placed.y + placed.side {
            for x in placed.x..placed.x + placed.side {
                assert!(matches!(rendered.pixel(x, y), [0, 0, 0] | [255, 255, 255]), "({x}, {y})");
            }
        }
        assert_eq!(png_with_qr(&png, ENTRY).expect("again").0, out, "deterministic, so a kept copy is the same");
    }

    #[test]
    fn the_longest_text_on_a_landscape_screen_still_reads() {
        let longest = format!("https://kem.example/e/{}", "a1".repeat(245));
        assert_eq!(longest.len(), 512);
        let mut raster = poster(1920, 1080);
        let placed = stamp(&mut raster, &longest).expect("stamp");
        assert!(placed.module_px >= MIN_MODULE_PX && placed.side <= 540, "{placed:?}");
        assert_eq!(read_codes(&raster), vec![longest]);
        // Korean in the path and query: the bytes as given.
        let korean = "https://kem.example/이벤트?q=봄";
        let mut raster = poster(800, 600);
        stamp(&mut raster, korean).expect("stamp");
        assert_eq!(read_codes(&raster), vec![korean.to_owned()]);
    }

    #[test]
    fn too_small_images_and_impossible_texts_are_refused_not_drawn_unreadable() {
        let mut tiny = poster(64, 64);
        let before = tiny.clone();
        let error = stamp(&mut tiny, ENTRY).expect_err("too small");
        assert!(error.0.contains("64x64") && error.0.contains("at least"), "{error:?}");
        assert_eq!(tiny, before, "nothing drawn");
        // A one-pixel-tall strip, and a zero-sized raster, whatever the text.
        for (w, h) in [(5000, 1), (1, 5000), (0, 0)] {
            assert!(stamp(&mut poster(w, h), "https://k.example/").is_err(), "{w}x{h}");
        }
        // More than a QR code holds at level M (2,331 bytes).
        let huge = format!("https://kem.example/{}", "a".repeat(3_000));
        assert!(stamp(&mut poster(4000, 4000), &huge).is_err());
        assert!(png_with_qr(b"GIF89a not a png at all, long enough to look", ENTRY).is_err());
        // Module sizes: never below the minimum, the box never past half the shorter side.
        for side in [100, 200, 400, 1080, 2160] {
            for modules in [21, 41, 97] {
                if let Some(b) = qr_box(side, side * 2, modules) {
                    assert!(b.module_px >= MIN_MODULE_PX && b.side <= side / 2, "{side} {modules} {b:?}");
                    assert_eq!(b.side, (modules + 2 * QUIET_ZONE) * b.module_px);
                }
            }
        }
        assert_eq!(qr_box(100, 100, 21), None, "29 modules at 4 px is 116 px: more than half of 100");
        assert_eq!(qr_box(u32::MAX, u32::MAX, u32::MAX), None);
    }
}
