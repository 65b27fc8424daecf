//! Pixels: an RGB raster, PNG encoding and decoding (the `png` crate), and fitting an image to an
//! exact size (scale to cover, centre-crop, bilinear sampling). CPU-bound work runs on the
//! blocking pool so it never stalls the async workers.

use std::io::Cursor;

use bytes::Bytes;

use crate::app::ports::ImagingError;

/// Largest side accepted when decoding (a provider image is at most a few thousand pixels).
pub const MAX_DECODE_SIDE: u32 = 8_192;

/// Largest stored image converted for the public route: generated images are ~1-3 MB; anything
/// far past that is not ours to spend CPU on.
pub const MAX_CONVERT_BYTES: usize = 20 * 1024 * 1024;
/// Most pixels converted (a 6000×6000 image); bounds the raster (3 bytes a pixel) and the CPU.
pub const MAX_CONVERT_PIXELS: u64 = 36_000_000;
/// JPEG quality of converted images: visually lossless for flat, text-bearing posters.
pub const JPEG_QUALITY: u8 = 90;

/// An 8-bit RGB image, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raster {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes.
    pub pixels: Vec<u8>,
}

impl Raster {
    /// A raster filled with `rgb`.
    pub fn filled(width: u32, height: u32, rgb: [u8; 3]) -> Raster {
        let count = width as usize * height as usize;
        let mut pixels = Vec::with_capacity(count * 3);
        for _ in 0..count {
            pixels.extend_from_slice(&rgb);
        }
        Raster { width, height, pixels }
    }

    /// The pixel at `(x, y)` (clamped to the edges).
    pub fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let x = x.min(self.width.saturating_sub(1)) as usize;
        let y = y.min(self.height.saturating_sub(1)) as usize;
        let i = (y * self.width as usize + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }
}

/// Width and height from a PNG's header, without decoding it; `None` when it is not a PNG.
pub fn png_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    const SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    if bytes.len() < 24 || bytes[..8] != SIGNATURE || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let width = u32::from_be_bytes([bytes[16], bytes[17], bytes[18], bytes[19]]);
    let height = u32::from_be_bytes([bytes[20], bytes[21], bytes[22], bytes[23]]);
    (width > 0 && height > 0).then_some((width, height))
}

/// Whether `bytes` look like a whole PNG (signature, header, and the `IEND` chunk at the end): a
/// kept rendition that does not is made again.
pub fn looks_like_png(bytes: &[u8]) -> bool {
    const IEND: [u8; 12] = [0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82];
    png_dimensions(bytes).is_some() && bytes.ends_with(&IEND)
}

/// Encodes `raster` as an 8-bit RGB PNG (fast compression: generated images are flat colours and
/// gradients, which compress well anyway).
pub fn encode_png(raster: &Raster) -> Result<Vec<u8>, ImagingError> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, raster.width, raster.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        let mut writer = encoder.write_header().map_err(|e| ImagingError(format!("PNG header: {e}")))?;
        writer.write_image_data(&raster.pixels).map_err(|e| ImagingError(format!("PNG data: {e}")))?;
        writer.finish().map_err(|e| ImagingError(format!("PNG end: {e}")))?;
    }
    Ok(out)
}

/// Decodes a PNG of any colour type and depth to RGB (transparency composited over white).
pub fn decode_png(bytes: &[u8]) -> Result<Raster, ImagingError> {
    let (width, height) = png_dimensions(bytes).ok_or_else(|| ImagingError("not a PNG image".to_owned()))?;
    if width > MAX_DECODE_SIDE || height > MAX_DECODE_SIDE {
        return Err(ImagingError(format!("a {width}x{height} image is larger than accepted")));
    }
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| ImagingError(format!("PNG header: {e}")))?;
    let size = reader.output_buffer_size().ok_or_else(|| ImagingError("PNG too large to decode".to_owned()))?;
    let mut buffer = vec![0; size];
    let info = reader.next_frame(&mut buffer).map_err(|e| ImagingError(format!("PNG data: {e}")))?;
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err(ImagingError("palette PNG was not expanded".to_owned())),
    };
    let (w, h) = (info.width as usize, info.height as usize);
    let mut pixels = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let row = &buffer[y * info.line_size..y * info.line_size + w * channels];
        for px in row.chunks_exact(channels) {
            let (rgb, alpha) = match channels {
                1 => ([px[0]; 3], 255),
                2 => ([px[0]; 3], px[1]),
                3 => ([px[0], px[1], px[2]], 255),
                _ => ([px[0], px[1], px[2]], px[3]),
            };
            for c in rgb {
                // Over white: c·a + 255·(1 − a).
                let v = (u32::from(c) * u32::from(alpha) + 255 * (255 - u32::from(alpha)) + 127) / 255;
                pixels.push(v as u8);
            }
        }
    }
    Ok(Raster { width: info.width, height: info.height, pixels })
}

/// Encodes `raster` as a baseline JPEG at `quality` (RGB, 4:2:0 by the encoder's default, no ICC
/// profile — viewers then assume sRGB, which the raster already is; no alpha: [`decode_png`]
/// flattened it onto white).
pub fn encode_jpeg(raster: &Raster, quality: u8) -> Result<Vec<u8>, ImagingError> {
    let (width, height) = (
        u16::try_from(raster.width).map_err(|_| ImagingError(format!("{} px is too wide for JPEG", raster.width)))?,
        u16::try_from(raster.height).map_err(|_| ImagingError(format!("{} px is too tall for JPEG", raster.height)))?,
    );
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&raster.pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| ImagingError(format!("JPEG: {e}")))?;
    Ok(out)
}

/// A stored PNG as JPEG, refusing inputs past [`MAX_CONVERT_BYTES`] / [`MAX_CONVERT_PIXELS`]
/// before decoding anything.
pub fn png_to_jpeg(bytes: &[u8]) -> Result<Vec<u8>, ImagingError> {
    encode_jpeg(&decode_checked(bytes)?, JPEG_QUALITY)
}

/// Whether `bytes` look like a whole JPEG (start and end markers): a cached conversion that does
/// not is made again.
pub fn looks_like_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])
}

/// Width and height from a baseline or progressive JPEG's frame header, without decoding it;
/// `None` when none is found (not a JPEG, or truncated).
pub fn jpeg_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    // Markers before the frame header each carry their length; walk them to the SOFn.
    while at + 9 <= bytes.len() {
        if bytes[at] != 0xFF {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xFF {
            at += 1;
            continue;
        }
        let length = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC), which share the range.
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let height = u32::from(u16::from_be_bytes([bytes[at + 5], bytes[at + 6]]));
            let width = u32::from(u16::from_be_bytes([bytes[at + 7], bytes[at + 8]]));
            return (width > 0 && height > 0).then_some((width, height));
        }
        if length < 2 {
            return None;
        }
        at += 2 + length;
    }
    None
}

/// Width of an Instagram feed rendition: Instagram shows feed images 1080 px wide and scales
/// anything else to that width itself (worse than we do).
pub const FEED_WIDTH: u32 = 1080;
/// Narrowest aspect (width / height) Instagram's content publishing accepts: 4:5.
pub const FEED_MIN_ASPECT: f64 = 4.0 / 5.0;
/// Widest aspect Instagram's content publishing accepts: 1.91:1.
pub const FEED_MAX_ASPECT: f64 = 1.91;
/// Largest image Instagram's content publishing accepts.
pub const FEED_MAX_BYTES: usize = 8 * 1024 * 1024;
/// Qualities tried in turn until the rendition fits [`FEED_MAX_BYTES`]; the first almost always
/// does (a 1080×1350 poster is a few hundred KB), the rest exist for pathological noise images.
pub const FEED_QUALITIES: [u8; 5] = [JPEG_QUALITY, 80, 70, 55, 40];

/// The pixel size of the feed rendition of a `width`×`height` image: 1080 wide, the aspect
/// clamped into 4:5–1.91:1 (what falls outside is centre-cropped away by [`fit`]).
pub fn feed_size(width: u32, height: u32) -> (u32, u32) {
    let aspect = f64::from(width.max(1)) / f64::from(height.max(1));
    let clamped = aspect.clamp(FEED_MIN_ASPECT, FEED_MAX_ASPECT);
    // Rounding 1080 / 1.91 gives 565 (aspect 1.9115), a hair past 1.91: round up instead so the
    // result never leaves the accepted range.
    let height = (f64::from(FEED_WIDTH) / clamped).ceil() as u32;
    let height = height.min((f64::from(FEED_WIDTH) / FEED_MIN_ASPECT).floor() as u32);
    (FEED_WIDTH, height)
}

/// A stored PNG as an Instagram feed JPEG ([`feed_size`], at most [`FEED_MAX_BYTES`], quality
/// lowered step by step if needed), with its pixel size. Refuses what [`png_to_jpeg`] refuses.
pub fn png_to_feed_jpeg(bytes: &[u8]) -> Result<(Vec<u8>, u32, u32), ImagingError> {
    let source = decode_checked(bytes)?;
    let (width, height) = feed_size(source.width, source.height);
    let fitted = fit(&source, width, height);
    for quality in FEED_QUALITIES {
        let jpeg = encode_jpeg(&fitted, quality)?;
        if jpeg.len() <= FEED_MAX_BYTES {
            return Ok((jpeg, width, height));
        }
    }
    Err(ImagingError(format!("no JPEG quality brings the {width}x{height} rendition under 8 MB")))
}

/// [`decode_png`] after the size limits of conversions ([`MAX_CONVERT_BYTES`],
/// [`MAX_CONVERT_PIXELS`]), checked on the header before any pixel is decoded.
pub(crate) fn decode_checked(bytes: &[u8]) -> Result<Raster, ImagingError> {
    if bytes.len() > MAX_CONVERT_BYTES {
        return Err(ImagingError(format!("{} bytes is larger than converted", bytes.len())));
    }
    let (width, height) = png_dimensions(bytes).ok_or_else(|| ImagingError("not a PNG image".to_owned()))?;
    if u64::from(width) * u64::from(height) > MAX_CONVERT_PIXELS {
        return Err(ImagingError(format!("a {width}x{height} image is larger than converted")));
    }
    decode_png(bytes)
}

/// `source` scaled to cover `width`×`height` (aspect kept) and centre-cropped to it.
pub fn fit(source: &Raster, width: u32, height: u32) -> Raster {
    let (sw, sh) = (f64::from(source.width.max(1)), f64::from(source.height.max(1)));
    let scale = (f64::from(width) / sw).max(f64::from(height) / sh);
    let (scaled_w, scaled_h) = (sw * scale, sh * scale);
    let (offset_x, offset_y) = ((scaled_w - f64::from(width)) / 2.0, (scaled_h - f64::from(height)) / 2.0);
    // When shrinking a lot, average a small neighbourhood instead of sampling one point.
    let reach = (1.0 / scale).floor().max(1.0) as i64;
    let mut pixels = Vec::with_capacity(width as usize * height as usize * 3);
    for y in 0..height {
        let sy = ((f64::from(y) + 0.5 + offset_y) / scale - 0.5).max(0.0);
        for x in 0..width {
            let sx = ((f64::from(x) + 0.5 + offset_x) / scale - 0.5).max(0.0);
            let rgb = if reach > 1 { area(source, sx, sy, reach) } else { bilinear(source, sx, sy) };
            pixels.extend_from_slice(&rgb);
        }
    }
    Raster { width, height, pixels }
}

fn bilinear(source: &Raster, x: f64, y: f64) -> [u8; 3] {
    let (x0, y0) = (x.floor() as u32, y.floor() as u32);
    let (fx, fy) = (x - x.floor(), y - y.floor());
    let p = [source.pixel(x0, y0), source.pixel(x0 + 1, y0), source.pixel(x0, y0 + 1), source.pixel(x0 + 1, y0 + 1)];
    let mut out = [0u8; 3];
    for (c, slot) in out.iter_mut().enumerate() {
        let top = f64::from(p[0][c]) * (1.0 - fx) + f64::from(p[1][c]) * fx;
        let bottom = f64::from(p[2][c]) * (1.0 - fx) + f64::from(p[3][c]) * fx;
        *slot = (top * (1.0 - fy) + bottom * fy).round().clamp(0.0, 255.0) as u8;
    }
    out
}

fn area(source: &Raster, x: f64, y: f64, reach: i64) -> [u8; 3] {
    let (cx, cy) = (x.round() as i64, y.round() as i64);
    let half = reach / 2;
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for dy in -half..=half {
        for dx in -half..=half {
            let p = source.pixel((cx + dx).max(0) as u32, (cy + dy).max(0) as u32);
            for c in 0..3 {
                sum[c] += u64::from(p[c]);
            }
            n += 1;
        }
    }
    [(sum[0] / n) as u8, (sum[1] / n) as u8, (sum[2] / n) as u8]
}

/// Fitting a provider image to a channel's exact size with the functions above, on the blocking
/// pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct PngImaging;

impl PngImaging {
    /// `bytes` (PNG) scaled to cover `width`×`height` and centre-cropped, as PNG.
    pub async fn fit(&self, bytes: Bytes, width: u32, height: u32) -> Result<Bytes, ImagingError> {
        tokio::task::spawn_blocking(move || {
            let source = decode_png(&bytes)?;
            encode_png(&fit(&source, width, height)).map(Bytes::from)
        })
        .await
        .map_err(|e| ImagingError(format!("image worker failed: {e}")))?
    }

    /// `bytes` (PNG) as an Instagram feed JPEG with its size ([`png_to_feed_jpeg`]), on the
    /// blocking pool.
    pub async fn to_feed_jpeg(&self, bytes: Bytes) -> Result<(Bytes, u32, u32), ImagingError> {
        tokio::task::spawn_blocking(move || png_to_feed_jpeg(&bytes).map(|(jpeg, w, h)| (Bytes::from(jpeg), w, h)))
            .await
            .map_err(|e| ImagingError(format!("image worker failed: {e}")))?
    }

    /// `bytes` (PNG) with the QR code of `text` in its bottom-right corner, as PNG, with its size
    /// ([`super::partner_qr::png_with_qr`]), on the blocking pool.
    pub async fn with_partner_qr(&self, bytes: Bytes, text: String) -> Result<(Bytes, u32, u32), ImagingError> {
        tokio::task::spawn_blocking(move || {
            super::partner_qr::png_with_qr(&bytes, &text).map(|(png, w, h)| (Bytes::from(png), w, h))
        })
        .await
        .map_err(|e| ImagingError(format!("image worker failed: {e}")))?
    }

    /// `bytes` (PNG) as JPEG ([`png_to_jpeg`]), on the blocking pool.
    pub async fn to_jpeg(&self, bytes: Bytes) -> Result<Bytes, ImagingError> {
        tokio::task::spawn_blocking(move || png_to_jpeg(&bytes).map(Bytes::from))
            .await
            .map_err(|e| ImagingError(format!("image worker failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_and_reports_its_size() {
        let mut raster = Raster::filled(7, 5, [10, 20, 30]);
        raster.pixels[0] = 255;
        let png = encode_png(&raster).expect("encode");
        assert_eq!(png_dimensions(&png), Some((7, 5)));
        assert_eq!(decode_png(&png).expect("decode"), raster);
        assert_eq!(png_dimensions(b"GIF89a........................"), None);
        assert!(looks_like_png(&png));
        assert!(!looks_like_png(&png[..png.len() - 1]), "truncated");
        assert!(!looks_like_png(b"GIF89a........................"));
        assert!(decode_png(b"not a png").is_err());
    }

    #[test]
    fn png_converts_to_a_decodable_jpeg_with_alpha_flattened_on_white() {
        // A transparent RGBA PNG: JPEG has no alpha, so it must come out white, not black.
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, 16, 8);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("header");
            writer.write_image_data(&[0; 16 * 8 * 4]).expect("data");
        }
        let jpeg = png_to_jpeg(&png_bytes).expect("convert");
        assert!(jpeg.starts_with(&[0xFF, 0xD8, 0xFF]) && looks_like_jpeg(&jpeg));
        let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let pixels = decoder.decode().expect("an independent decoder reads it");
        let info = decoder.info().expect("info");
        assert_eq!((info.width, info.height, info.pixel_format), (16, 8, jpeg_decoder::PixelFormat::RGB24));
        assert!(pixels.iter().all(|&v| v >= 250), "flattened onto white");
        assert_eq!(png_to_jpeg(&png_bytes).expect("again"), jpeg, "deterministic, so a cached copy is the same");
    }

    #[test]
    fn conversion_refuses_what_it_should_not_decode() {
        assert!(png_to_jpeg(b"GIF89a not a png at all, long enough to look").is_err());
        // A header claiming 7000×7000 is refused before any pixel is decoded.
        let mut huge = encode_png(&Raster::filled(1, 1, [0, 0, 0])).expect("png");
        huge[16..20].copy_from_slice(&7_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&7_000u32.to_be_bytes());
        let error = png_to_jpeg(&huge).expect_err("too many pixels");
        assert!(error.0.contains("7000x7000"), "{error:?}");
        assert!(png_to_jpeg(&vec![0; MAX_CONVERT_BYTES + 1]).is_err());
        assert!(!looks_like_jpeg(&[0xFF, 0xD8, 0xFF, 0xE0]), "truncated");
    }

    #[test]
    fn feed_sizes_are_1080_wide_within_instagrams_aspects() {
        assert_eq!(feed_size(1080, 1350), (1080, 1350), "4:5 stays");
        assert_eq!(feed_size(1024, 1024), (1080, 1080), "square is scaled");
        assert_eq!(feed_size(1000, 2000), (1080, 1350), "1:2 is cropped to 4:5");
        assert_eq!(feed_size(1920, 1080), (1080, 608), "16:9 stays 16:9");
        let (w, h) = feed_size(4000, 1000);
        assert!(f64::from(w) / f64::from(h) <= FEED_MAX_ASPECT && h == 566, "4:1 is cropped to 1.91:1, got {h}");
        for (sw, sh) in [(1, 8192), (8192, 1), (1, 1), (0, 0), (1080, 1920), (2048, 1075)] {
            let (w, h) = feed_size(sw, sh);
            let aspect = f64::from(w) / f64::from(h);
            assert!((FEED_MIN_ASPECT..=FEED_MAX_ASPECT).contains(&aspect), "{sw}x{sh} -> {w}x{h}");
        }
    }

    #[test]
    fn a_tall_transparent_png_becomes_a_decodable_4_5_feed_jpeg() {
        let mut png_bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut png_bytes, 100, 300);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header().expect("header");
            writer.write_image_data(&[0; 100 * 300 * 4]).expect("data");
        }
        let (jpeg, width, height) = png_to_feed_jpeg(&png_bytes).expect("convert");
        assert_eq!((width, height), (1080, 1350));
        assert_eq!(jpeg_dimensions(&jpeg), Some((1080, 1350)));
        assert_eq!(jpeg_dimensions(&jpeg[..20]), None, "truncated");
        assert_eq!(jpeg_dimensions(&png_bytes), None);
        assert!(looks_like_jpeg(&jpeg) && jpeg.len() <= FEED_MAX_BYTES);
        let mut decoder = jpeg_decoder::Decoder::new(jpeg.as_slice());
        let pixels = decoder.decode().expect("an independent decoder reads it");
        let info = decoder.info().expect("info");
        assert_eq!((info.width, info.height, info.pixel_format), (1080, 1350, jpeg_decoder::PixelFormat::RGB24));
        assert!(pixels.iter().all(|&v| v >= 250), "no alpha: composed on white");
        assert!(png_to_feed_jpeg(b"GIF89a not a png at all, long enough to look").is_err());
    }

    #[test]
    fn fit_covers_and_crops_to_the_exact_size() {
        // Left half red, right half blue, 40x20 → 10x10: the centre crop shows both halves.
        let mut source = Raster::filled(40, 20, [255, 0, 0]);
        for y in 0..20 {
            for x in 20..40 {
                let i = (y * 40 + x) * 3;
                source.pixels[i..i + 3].copy_from_slice(&[0, 0, 255]);
            }
        }
        let fitted = fit(&source, 10, 10);
        assert_eq!((fitted.width, fitted.height, fitted.pixels.len()), (10, 10, 300));
        assert_eq!(fitted.pixel(0, 5), [255, 0, 0]);
        assert_eq!(fitted.pixel(9, 5), [0, 0, 255]);
        let up = fit(&Raster::filled(4, 4, [9, 9, 9]), 30, 50);
        assert_eq!((up.width, up.height), (30, 50));
        assert!(up.pixels.iter().all(|&v| v == 9));
    }
}
