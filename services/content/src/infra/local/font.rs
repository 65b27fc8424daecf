//! Text for the local renderer without a font stack: Latin letters, digits and punctuation from a
//! classic 5×7 bitmap font (drawn as square dots), and Hangul syllables composed from their jamo,
//! each jamo a few strokes placed by the syllable's standard layout (initial consonant, vowel,
//! optional final consonant). Anything else draws as a hollow box.

use super::canvas::{Canvas, Rgb};

/// The classic 5×7 font, ASCII 0x20..=0x7E, five column bytes per glyph, bit 0 = top row.
const ASCII_5X7: [[u8; 5]; 95] = [
    [0x00, 0x00, 0x00, 0x00, 0x00], // ' '
    [0x00, 0x00, 0x5F, 0x00, 0x00], // !
    [0x00, 0x07, 0x00, 0x07, 0x00], // "
    [0x14, 0x7F, 0x14, 0x7F, 0x14], // #
    [0x24, 0x2A, 0x7F, 0x2A, 0x12], // $
    [0x23, 0x13, 0x08, 0x64, 0x62], // %
    [0x36, 0x49, 0x55, 0x22, 0x50], // &
    [0x00, 0x05, 0x03, 0x00, 0x00], // '
    [0x00, 0x1C, 0x22, 0x41, 0x00], // (
    [0x00, 0x41, 0x22, 0x1C, 0x00], // )
    [0x08, 0x2A, 0x1C, 0x2A, 0x08], // *
    [0x08, 0x08, 0x3E, 0x08, 0x08], // +
    [0x00, 0x50, 0x30, 0x00, 0x00], // ,
    [0x08, 0x08, 0x08, 0x08, 0x08], // -
    [0x00, 0x60, 0x60, 0x00, 0x00], // .
    [0x20, 0x10, 0x08, 0x04, 0x02], // /
    [0x3E, 0x51, 0x49, 0x45, 0x3E], // 0
    [0x00, 0x42, 0x7F, 0x40, 0x00], // 1
    [0x42, 0x61, 0x51, 0x49, 0x46], // 2
    [0x21, 0x41, 0x45, 0x4B, 0x31], // 3
    [0x18, 0x14, 0x12, 0x7F, 0x10], // 4
    [0x27, 0x45, 0x45, 0x45, 0x39], // 5
    [0x3C, 0x4A, 0x49, 0x49, 0x30], // 6
    [0x01, 0x71, 0x09, 0x05, 0x03], // 7
    [0x36, 0x49, 0x49, 0x49, 0x36], // 8
    [0x06, 0x49, 0x49, 0x29, 0x1E], // 9
    [0x00, 0x36, 0x36, 0x00, 0x00], // :
    [0x00, 0x56, 0x36, 0x00, 0x00], // ;
    [0x08, 0x14, 0x22, 0x41, 0x00], // <
    [0x14, 0x14, 0x14, 0x14, 0x14], // =
    [0x00, 0x41, 0x22, 0x14, 0x08], // >
    [0x02, 0x01, 0x51, 0x09, 0x06], // ?
    [0x32, 0x49, 0x79, 0x41, 0x3E], // @
    [0x7E, 0x11, 0x11, 0x11, 0x7E], // A
    [0x7F, 0x49, 0x49, 0x49, 0x36], // B
    [0x3E, 0x41, 0x41, 0x41, 0x22], // C
    [0x7F, 0x41, 0x41, 0x22, 0x1C], // D
    [0x7F, 0x49, 0x49, 0x49, 0x41], // E
    [0x7F, 0x09, 0x09, 0x09, 0x01], // F
    [0x3E, 0x41, 0x49, 0x49, 0x7A], // G
    [0x7F, 0x08, 0x08, 0x08, 0x7F], // H
    [0x00, 0x41, 0x7F, 0x41, 0x00], // I
    [0x20, 0x40, 0x41, 0x3F, 0x01], // J
    [0x7F, 0x08, 0x14, 0x22, 0x41], // K
    [0x7F, 0x40, 0x40, 0x40, 0x40], // L
    [0x7F, 0x02, 0x0C, 0x02, 0x7F], // M
    [0x7F, 0x04, 0x08, 0x10, 0x7F], // N
    [0x3E, 0x41, 0x41, 0x41, 0x3E], // O
    [0x7F, 0x09, 0x09, 0x09, 0x06], // P
    [0x3E, 0x41, 0x51, 0x21, 0x5E], // Q
    [0x7F, 0x09, 0x19, 0x29, 0x46], // R
    [0x46, 0x49, 0x49, 0x49, 0x31], // S
    [0x01, 0x01, 0x7F, 0x01, 0x01], // T
    [0x3F, 0x40, 0x40, 0x40, 0x3F], // U
    [0x1F, 0x20, 0x40, 0x20, 0x1F], // V
    [0x3F, 0x40, 0x38, 0x40, 0x3F], // W
    [0x63, 0x14, 0x08, 0x14, 0x63], // X
    [0x07, 0x08, 0x70, 0x08, 0x07], // Y
    [0x61, 0x51, 0x49, 0x45, 0x43], // Z
    [0x00, 0x7F, 0x41, 0x41, 0x00], // [
    [0x02, 0x04, 0x08, 0x10, 0x20], // backslash
    [0x00, 0x41, 0x41, 0x7F, 0x00], // ]
    [0x04, 0x02, 0x01, 0x02, 0x04], // ^
    [0x40, 0x40, 0x40, 0x40, 0x40], // _
    [0x00, 0x01, 0x02, 0x04, 0x00], // `
    [0x20, 0x54, 0x54, 0x54, 0x78], // a
    [0x7F, 0x48, 0x44, 0x44, 0x38], // b
    [0x38, 0x44, 0x44, 0x44, 0x20], // c
    [0x38, 0x44, 0x44, 0x48, 0x7F], // d
    [0x38, 0x54, 0x54, 0x54, 0x18], // e
    [0x08, 0x7E, 0x09, 0x01, 0x02], // f
    [0x0C, 0x52, 0x52, 0x52, 0x3E], // g
    [0x7F, 0x08, 0x04, 0x04, 0x78], // h
    [0x00, 0x44, 0x7D, 0x40, 0x00], // i
    [0x20, 0x40, 0x44, 0x3D, 0x00], // j
    [0x7F, 0x10, 0x28, 0x44, 0x00], // k
    [0x00, 0x41, 0x7F, 0x40, 0x00], // l
    [0x7C, 0x04, 0x18, 0x04, 0x78], // m
    [0x7C, 0x08, 0x04, 0x04, 0x78], // n
    [0x38, 0x44, 0x44, 0x44, 0x38], // o
    [0x7C, 0x14, 0x14, 0x14, 0x08], // p
    [0x08, 0x14, 0x14, 0x18, 0x7C], // q
    [0x7C, 0x08, 0x04, 0x04, 0x08], // r
    [0x48, 0x54, 0x54, 0x54, 0x20], // s
    [0x04, 0x3F, 0x44, 0x40, 0x20], // t
    [0x3C, 0x40, 0x40, 0x20, 0x7C], // u
    [0x1C, 0x20, 0x40, 0x20, 0x1C], // v
    [0x3C, 0x40, 0x30, 0x40, 0x3C], // w
    [0x44, 0x28, 0x10, 0x28, 0x44], // x
    [0x0C, 0x50, 0x50, 0x50, 0x3C], // y
    [0x44, 0x64, 0x54, 0x4C, 0x44], // z
    [0x00, 0x08, 0x36, 0x41, 0x00], // {
    [0x00, 0x00, 0x7F, 0x00, 0x00], // |
    [0x00, 0x41, 0x36, 0x08, 0x00], // }
    [0x08, 0x04, 0x08, 0x10, 0x08], // ~
];

/// A stroke of a jamo in its unit box.
#[derive(Debug, Clone, Copy)]
enum Stroke {
    /// A polyline through these points.
    Path(&'static [(f64, f64)]),
    /// Circle: centre and radius.
    Ring(f64, f64, f64),
}

use Stroke::{Path, Ring};

/// The 14 basic consonants ㄱㄴㄷㄹㅁㅂㅅㅇㅈㅊㅋㅌㅍㅎ.
fn basic_consonant(index: usize) -> &'static [Stroke] {
    match index {
        0 => &[Path(&[(0.12, 0.15), (0.85, 0.15), (0.85, 0.92)])],
        1 => &[Path(&[(0.15, 0.08), (0.15, 0.85), (0.9, 0.85)])],
        2 => &[Path(&[(0.88, 0.15), (0.15, 0.15), (0.15, 0.85), (0.88, 0.85)])],
        3 => &[Path(&[(0.12, 0.12), (0.85, 0.12), (0.85, 0.5), (0.15, 0.5), (0.15, 0.88), (0.9, 0.88)])],
        4 => &[Path(&[(0.15, 0.15), (0.85, 0.15), (0.85, 0.85), (0.15, 0.85), (0.15, 0.15)])],
        5 => &[Path(&[(0.15, 0.08), (0.15, 0.88), (0.85, 0.88), (0.85, 0.08)]), Path(&[(0.15, 0.45), (0.85, 0.45)])],
        6 => &[Path(&[(0.5, 0.1), (0.1, 0.9)]), Path(&[(0.47, 0.35), (0.9, 0.9)])],
        7 => &[Ring(0.5, 0.5, 0.36)],
        8 => {
            &[Path(&[(0.12, 0.15), (0.88, 0.15)]), Path(&[(0.5, 0.15), (0.1, 0.9)]), Path(&[(0.48, 0.42), (0.9, 0.9)])]
        }
        9 => &[
            Path(&[(0.5, 0.0), (0.5, 0.12)]),
            Path(&[(0.12, 0.24), (0.88, 0.24)]),
            Path(&[(0.5, 0.24), (0.1, 0.92)]),
            Path(&[(0.48, 0.5), (0.9, 0.92)]),
        ],
        10 => &[Path(&[(0.12, 0.15), (0.85, 0.15), (0.85, 0.92)]), Path(&[(0.15, 0.5), (0.85, 0.5)])],
        11 => &[Path(&[(0.88, 0.15), (0.15, 0.15), (0.15, 0.85), (0.88, 0.85)]), Path(&[(0.15, 0.5), (0.85, 0.5)])],
        12 => &[
            Path(&[(0.08, 0.15), (0.92, 0.15)]),
            Path(&[(0.08, 0.85), (0.92, 0.85)]),
            Path(&[(0.32, 0.15), (0.32, 0.85)]),
            Path(&[(0.68, 0.15), (0.68, 0.85)]),
        ],
        _ => &[Path(&[(0.5, 0.0), (0.5, 0.12)]), Path(&[(0.15, 0.24), (0.85, 0.24)]), Ring(0.5, 0.62, 0.26)],
    }
}

/// A consonant as one or two basic shapes side by side.
#[derive(Debug, Clone, Copy)]
enum Consonant {
    One(usize),
    Two(usize, usize),
}

use Consonant::{One, Two};

// Basic indices: ㄱ0 ㄴ1 ㄷ2 ㄹ3 ㅁ4 ㅂ5 ㅅ6 ㅇ7 ㅈ8 ㅊ9 ㅋ10 ㅌ11 ㅍ12 ㅎ13.
const INITIALS: [Consonant; 19] = [
    One(0),
    Two(0, 0),
    One(1),
    One(2),
    Two(2, 2),
    One(3),
    One(4),
    One(5),
    Two(5, 5),
    One(6),
    Two(6, 6),
    One(7),
    One(8),
    Two(8, 8),
    One(9),
    One(10),
    One(11),
    One(12),
    One(13),
];

const FINALS: [Option<Consonant>; 28] = [
    None,
    Some(One(0)),
    Some(Two(0, 0)),
    Some(Two(0, 6)),
    Some(One(1)),
    Some(Two(1, 8)),
    Some(Two(1, 13)),
    Some(One(2)),
    Some(One(3)),
    Some(Two(3, 0)),
    Some(Two(3, 4)),
    Some(Two(3, 5)),
    Some(Two(3, 6)),
    Some(Two(3, 11)),
    Some(Two(3, 12)),
    Some(Two(3, 13)),
    Some(One(4)),
    Some(One(5)),
    Some(Two(5, 6)),
    Some(One(6)),
    Some(Two(6, 6)),
    Some(One(7)),
    Some(One(8)),
    Some(One(9)),
    Some(One(10)),
    Some(One(11)),
    Some(One(12)),
    Some(One(13)),
];

/// How a vowel sits next to the initial consonant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VowelShape {
    /// To its right (ㅏㅓㅣ…).
    Vertical,
    /// Below it (ㅗㅜㅡ…).
    Horizontal,
    /// Below and to the right (ㅘㅝㅢ…).
    Combined,
}

/// Vertical vowel strokes in their box: ㅏㅐㅑㅒㅓㅔㅕㅖㅣ (by medial index).
fn vertical_strokes(medial: usize) -> &'static [Stroke] {
    match medial {
        0 => &[Path(&[(0.4, 0.05), (0.4, 0.95)]), Path(&[(0.4, 0.5), (0.8, 0.5)])],
        1 => {
            &[Path(&[(0.3, 0.05), (0.3, 0.95)]), Path(&[(0.75, 0.02), (0.75, 0.98)]), Path(&[(0.3, 0.5), (0.75, 0.5)])]
        }
        2 => &[Path(&[(0.4, 0.05), (0.4, 0.95)]), Path(&[(0.4, 0.38), (0.8, 0.38)]), Path(&[(0.4, 0.62), (0.8, 0.62)])],
        3 => &[
            Path(&[(0.3, 0.05), (0.3, 0.95)]),
            Path(&[(0.75, 0.02), (0.75, 0.98)]),
            Path(&[(0.3, 0.38), (0.75, 0.38)]),
            Path(&[(0.3, 0.62), (0.75, 0.62)]),
        ],
        4 => &[Path(&[(0.65, 0.05), (0.65, 0.95)]), Path(&[(0.2, 0.5), (0.65, 0.5)])],
        5 => &[Path(&[(0.4, 0.05), (0.4, 0.95)]), Path(&[(0.8, 0.02), (0.8, 0.98)]), Path(&[(0.05, 0.5), (0.4, 0.5)])],
        6 => &[
            Path(&[(0.65, 0.05), (0.65, 0.95)]),
            Path(&[(0.2, 0.38), (0.65, 0.38)]),
            Path(&[(0.2, 0.62), (0.65, 0.62)]),
        ],
        7 => &[
            Path(&[(0.4, 0.05), (0.4, 0.95)]),
            Path(&[(0.8, 0.02), (0.8, 0.98)]),
            Path(&[(0.05, 0.38), (0.4, 0.38)]),
            Path(&[(0.05, 0.62), (0.4, 0.62)]),
        ],
        _ => &[Path(&[(0.5, 0.05), (0.5, 0.95)])],
    }
}

/// Horizontal vowel strokes in their box: ㅗ ㅛ ㅜ ㅠ ㅡ.
fn horizontal_strokes(kind: char) -> &'static [Stroke] {
    match kind {
        'ㅗ' => &[Path(&[(0.05, 0.75), (0.95, 0.75)]), Path(&[(0.5, 0.3), (0.5, 0.75)])],
        'ㅛ' => &[
            Path(&[(0.05, 0.75), (0.95, 0.75)]),
            Path(&[(0.35, 0.3), (0.35, 0.75)]),
            Path(&[(0.65, 0.3), (0.65, 0.75)]),
        ],
        'ㅜ' => &[Path(&[(0.05, 0.25), (0.95, 0.25)]), Path(&[(0.5, 0.25), (0.5, 0.75)])],
        'ㅠ' => &[
            Path(&[(0.05, 0.25), (0.95, 0.25)]),
            Path(&[(0.35, 0.25), (0.35, 0.75)]),
            Path(&[(0.65, 0.25), (0.65, 0.75)]),
        ],
        _ => &[Path(&[(0.05, 0.5), (0.95, 0.5)])],
    }
}

/// `(shape, horizontal part, vertical part as a medial index of vertical_strokes)`.
fn vowel(medial: usize) -> (VowelShape, Option<char>, Option<usize>) {
    match medial {
        0..=7 => (VowelShape::Vertical, None, Some(medial)),
        20 => (VowelShape::Vertical, None, Some(20)),
        8 => (VowelShape::Horizontal, Some('ㅗ'), None),
        12 => (VowelShape::Horizontal, Some('ㅛ'), None),
        13 => (VowelShape::Horizontal, Some('ㅜ'), None),
        17 => (VowelShape::Horizontal, Some('ㅠ'), None),
        18 => (VowelShape::Horizontal, Some('ㅡ'), None),
        9 => (VowelShape::Combined, Some('ㅗ'), Some(0)),
        10 => (VowelShape::Combined, Some('ㅗ'), Some(1)),
        11 => (VowelShape::Combined, Some('ㅗ'), Some(20)),
        14 => (VowelShape::Combined, Some('ㅜ'), Some(4)),
        15 => (VowelShape::Combined, Some('ㅜ'), Some(5)),
        16 => (VowelShape::Combined, Some('ㅜ'), Some(20)),
        _ => (VowelShape::Combined, Some('ㅡ'), Some(20)),
    }
}

/// A box: x, y, width, height in pixels.
type Frame = (f64, f64, f64, f64);

fn sub(frame: Frame, (x, y, w, h): Frame) -> Frame {
    (frame.0 + x * frame.2, frame.1 + y * frame.3, w * frame.2, h * frame.3)
}

fn draw_strokes(canvas: &mut Canvas, strokes: &[Stroke], frame: Frame, thickness: f64, color: Rgb) {
    let at = |(x, y): (f64, f64)| (frame.0 + x * frame.2, frame.1 + y * frame.3);
    for stroke in strokes {
        match *stroke {
            Path(points) => {
                for pair in points.windows(2) {
                    canvas.line(at(pair[0]), at(pair[1]), thickness, color, 1.0);
                }
            }
            Ring(cx, cy, r) => {
                let (x, y) = at((cx, cy));
                let radius = r * frame.2.min(frame.3);
                canvas.ring(x, y, radius, thickness, color, 1.0);
            }
        }
    }
}

fn draw_consonant(canvas: &mut Canvas, consonant: Consonant, frame: Frame, thickness: f64, color: Rgb) {
    match consonant {
        One(i) => draw_strokes(canvas, basic_consonant(i), frame, thickness, color),
        Two(a, b) => {
            draw_strokes(canvas, basic_consonant(a), sub(frame, (0.0, 0.0, 0.52, 1.0)), thickness, color);
            draw_strokes(canvas, basic_consonant(b), sub(frame, (0.48, 0.0, 0.52, 1.0)), thickness, color);
        }
    }
}

/// Draws the Hangul syllable `c` (U+AC00..=U+D7A3) in the square `cell`.
fn draw_syllable(canvas: &mut Canvas, c: char, cell: Frame, thickness: f64, color: Rgb) {
    let index = c as usize - 0xAC00;
    let (initial, medial, final_) = (index / (21 * 28), (index / 28) % 21, index % 28);
    let (shape, horizontal, vertical) = vowel(medial);
    let final_consonant = FINALS[final_];
    let has_final = final_consonant.is_some();
    // Boxes of (initial, horizontal vowel part, vertical vowel part, final), relative to the cell.
    let (ini, hor, ver, fin): (Frame, Frame, Frame, Frame) = match (shape, has_final) {
        (VowelShape::Vertical, false) => {
            ((0.02, 0.12, 0.58, 0.76), (0.0, 0.0, 0.0, 0.0), (0.55, 0.0, 0.45, 1.0), (0.0, 0.0, 0.0, 0.0))
        }
        (VowelShape::Vertical, true) => {
            ((0.04, 0.02, 0.52, 0.52), (0.0, 0.0, 0.0, 0.0), (0.55, 0.0, 0.45, 0.62), (0.14, 0.64, 0.72, 0.36))
        }
        (VowelShape::Horizontal, false) => {
            ((0.2, 0.02, 0.6, 0.5), (0.0, 0.5, 1.0, 0.46), (0.0, 0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
        }
        (VowelShape::Horizontal, true) => {
            ((0.24, 0.0, 0.52, 0.34), (0.0, 0.3, 1.0, 0.3), (0.0, 0.0, 0.0, 0.0), (0.18, 0.64, 0.64, 0.36))
        }
        (VowelShape::Combined, false) => {
            ((0.04, 0.02, 0.5, 0.46), (0.0, 0.44, 0.72, 0.5), (0.62, 0.0, 0.38, 1.0), (0.0, 0.0, 0.0, 0.0))
        }
        (VowelShape::Combined, true) => {
            ((0.06, 0.0, 0.46, 0.32), (0.0, 0.26, 0.72, 0.34), (0.62, 0.0, 0.38, 0.62), (0.14, 0.66, 0.68, 0.34))
        }
    };
    draw_consonant(canvas, INITIALS[initial], sub(cell, ini), thickness, color);
    if let Some(kind) = horizontal {
        draw_strokes(canvas, horizontal_strokes(kind), sub(cell, hor), thickness, color);
    }
    if let Some(v) = vertical {
        draw_strokes(canvas, vertical_strokes(v), sub(cell, ver), thickness, color);
    }
    if let Some(consonant) = final_consonant {
        draw_consonant(canvas, consonant, sub(cell, fin), thickness, color);
    }
}

fn is_syllable(c: char) -> bool {
    ('\u{AC00}'..='\u{D7A3}').contains(&c)
}

/// Horizontal advance of `c` at font size `size` (the height of a Hangul cell).
pub fn advance(c: char, size: f64) -> f64 {
    if is_syllable(c) {
        size * 1.04
    } else if c == ' ' {
        size * 0.38
    } else if c.is_ascii() {
        size * 0.66
    } else {
        size * 0.9
    }
}

/// Width of `text` at `size`.
pub fn measure(text: &str, size: f64) -> f64 {
    text.chars().map(|c| advance(c, size)).sum()
}

/// Draws `text` with its top-left at `(x, y)` at font size `size`.
pub fn draw_text(canvas: &mut Canvas, text: &str, x: f64, y: f64, size: f64, color: Rgb) {
    let thickness = (size / 11.0).max(1.0);
    let mut pen = x;
    for c in text.chars() {
        if is_syllable(c) {
            let pad = size * 0.06;
            draw_syllable(canvas, c, (pen + pad, y + pad, size - 2.0 * pad, size - 2.0 * pad), thickness, color);
        } else if (' '..='~').contains(&c) {
            // 5×7 dots in a box of height 0.8·size, vertically centred.
            let dot = size * 0.8 / 7.0;
            let top = y + size * 0.1;
            let columns = ASCII_5X7[c as usize - 0x20];
            for (col, bits) in columns.iter().enumerate() {
                for row in 0..7 {
                    if bits & (1 << row) != 0 {
                        canvas.rect(
                            pen + col as f64 * dot,
                            top + f64::from(row) * dot,
                            dot.ceil(),
                            dot.ceil(),
                            color,
                            1.0,
                        );
                    }
                }
            }
        } else if !c.is_whitespace() {
            let w = advance(c, size) * 0.8;
            let frame = (pen + w * 0.1, y + size * 0.15, w * 0.8, size * 0.7);
            canvas.line((frame.0, frame.1), (frame.0 + frame.2, frame.1), thickness, color, 1.0);
            canvas.line((frame.0 + frame.2, frame.1), (frame.0 + frame.2, frame.1 + frame.3), thickness, color, 1.0);
            canvas.line((frame.0 + frame.2, frame.1 + frame.3), (frame.0, frame.1 + frame.3), thickness, color, 1.0);
            canvas.line((frame.0, frame.1 + frame.3), (frame.0, frame.1), thickness, color, 1.0);
        }
        pen += advance(c, size);
    }
}

/// `text` broken into lines no wider than `width` at `size` (at word boundaries; a word wider
/// than a line is broken between characters).
pub fn wrap(text: &str, size: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() { word.to_owned() } else { format!("{line} {word}") };
        if measure(&candidate, size) <= width {
            line = candidate;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if measure(word, size) <= width {
            line = word.to_owned();
            continue;
        }
        for c in word.chars() {
            if !line.is_empty() && measure(&format!("{line}{c}"), size) > width {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syllables_decompose_into_jamo_indices() {
        // 한 = ㅎ(18) ㅏ(0) ㄴ(4); 글 = ㄱ(0) ㅡ(18) ㄹ(8).
        let index = |c: char| {
            let i = c as usize - 0xAC00;
            (i / (21 * 28), (i / 28) % 21, i % 28)
        };
        assert_eq!(index('한'), (18, 0, 4));
        assert_eq!(index('글'), (0, 18, 8));
        assert_eq!(vowel(18).0, VowelShape::Horizontal);
        assert_eq!(vowel(9).0, VowelShape::Combined);
        assert_eq!(vowel(20).0, VowelShape::Vertical);
    }

    #[test]
    fn text_draws_ink_and_wraps() {
        let mut canvas = Canvas::new(200, 40);
        draw_text(&mut canvas, "가을 A1!", 2.0, 2.0, 30.0, [255, 255, 255]);
        let raster = canvas.into_raster();
        let ink = raster.pixels.chunks(3).filter(|p| p[0] == 255).count();
        assert!(ink > 200, "glyphs leave ink: {ink}");
        let lines = wrap("가을 신메뉴 출시 기념 경품 이벤트", 40.0, 200.0);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| measure(l, 40.0) <= 200.0), "{lines:?}");
        assert_eq!(wrap("", 10.0, 100.0), Vec::<String>::new());
        assert_eq!(wrap("가나다라마바사", 10.0, 25.0).len(), 4, "long words break between characters");
    }
}
