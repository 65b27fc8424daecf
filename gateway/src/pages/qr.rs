//! QR codes of an event's entry links, as SVG (one path, drawn from the module matrix) and PNG
//! (1-bit greyscale through the `png` crate). The matrix comes from the `qrcode` crate built
//! without its default features, so no image library enters the tree.

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code, as the QR specification asks (ISO/IEC 18004: 4 modules).
const QUIET_ZONE: usize = 4;
/// Pixels per module in the PNG: a version-4 code (33 modules) becomes 328 × 328 pixels, crisp
/// enough for print at a few centimetres.
const PNG_SCALE: usize = 8;

/// The module matrix of `text` (error correction level M: 15 % of the code may be damaged or
/// covered), `None` when the text does not fit a QR code.
struct Matrix {
    width: usize,
    dark: Vec<bool>,
}

impl Matrix {
    fn of(text: &str) -> Option<Matrix> {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).ok()?;
        let width = code.width();
        let dark = code.to_colors().into_iter().map(|c| c == Color::Dark).collect();
        Some(Matrix { width, dark })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        self.dark.get(y * self.width + x).copied().unwrap_or(false)
    }
}

/// `text` as an SVG document: a white square and one black path of unit squares, scaled by the
/// viewer (`shape-rendering="crispEdges"` keeps the modules sharp).
pub fn svg(text: &str) -> Option<String> {
    let matrix = Matrix::of(text)?;
    let size = matrix.width + 2 * QUIET_ZONE;
    let mut path = String::with_capacity(matrix.dark.len() * 4);
    for y in 0..matrix.width {
        let mut x = 0;
        while x < matrix.width {
            if !matrix.is_dark(x, y) {
                x += 1;
                continue;
            }
            // One rectangle per horizontal run of dark modules.
            let start = x;
            while x < matrix.width && matrix.is_dark(x, y) {
                x += 1;
            }
            path.push_str(&format!("M{} {}h{}v1h-{}z", start + QUIET_ZONE, y + QUIET_ZONE, x - start, x - start));
        }
    }
    Some(format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {size} {size}\" width=\"{px}\" height=\"{px}\" \
         shape-rendering=\"crispEdges\" role=\"img\" aria-label=\"QR code\">\
         <rect width=\"{size}\" height=\"{size}\" fill=\"#ffffff\"/>\
         <path fill=\"#000000\" d=\"{path}\"/></svg>\n",
        px = size * PNG_SCALE
    ))
}

/// `text` as a PNG image (1 bit per pixel, black on white), `None` when it does not fit a QR
/// code or cannot be encoded.
pub fn png(text: &str) -> Option<Vec<u8>> {
    let matrix = Matrix::of(text)?;
    let side = (matrix.width + 2 * QUIET_ZONE) * PNG_SCALE;
    let row_bytes = side.div_ceil(8);
    // 1-bit greyscale: a set bit is white.
    let mut pixels = vec![0xFF_u8; row_bytes * side];
    for py in 0..side {
        for px in 0..side {
            let (mx, my) = ((px / PNG_SCALE).checked_sub(QUIET_ZONE), (py / PNG_SCALE).checked_sub(QUIET_ZONE));
            let dark = match (mx, my) {
                (Some(mx), Some(my)) if mx < matrix.width && my < matrix.width => matrix.is_dark(mx, my),
                _ => false,
            };
            if dark {
                pixels[py * row_bytes + px / 8] &= !(0x80 >> (px % 8));
            }
        }
    }
    let side = u32::try_from(side).ok()?;
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side, side);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::One);
        let mut writer = encoder.write_header().ok()?;
        writer.write_image_data(&pixels).ok()?;
        writer.finish().ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://kem.example/e/0b6f3a52-7c1e-4d8e-9a4f-2f1d5c6b7a80?ch=instagram";

    #[test]
    fn the_png_decodes_to_the_module_matrix() {
        let bytes = png(URL).expect("png");
        let matrix = Matrix::of(URL).expect("matrix");
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().expect("header");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buffer).expect("frame");
        let side = (matrix.width + 2 * QUIET_ZONE) * PNG_SCALE;
        assert_eq!((info.width as usize, info.height as usize), (side, side));
        for my in 0..matrix.width {
            for mx in 0..matrix.width {
                // The centre pixel of each module.
                let (px, py) = ((mx + QUIET_ZONE) * PNG_SCALE + 4, (my + QUIET_ZONE) * PNG_SCALE + 4);
                let value = buffer[py * info.line_size + px];
                assert_eq!(value == 0, matrix.is_dark(mx, my), "module ({mx}, {my})");
            }
        }
        assert_eq!(buffer[0], 255, "the quiet zone is white");
    }

    #[test]
    fn the_svg_draws_every_dark_module_once() {
        let svg = svg(URL).expect("svg");
        let matrix = Matrix::of(URL).expect("matrix");
        let d = svg.split(" d=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("path data");
        let drawn: usize = d
            .split('M')
            .filter(|run| !run.is_empty())
            .map(|run| {
                run.split('h')
                    .nth(1)
                    .and_then(|n| n.split('v').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .expect("run")
            })
            .sum();
        assert_eq!(drawn, matrix.dark.iter().filter(|d| **d).count());
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_none() {
        assert!(svg(&"x".repeat(5_000)).is_none());
        assert!(png(&"x".repeat(5_000)).is_none());
    }
}
