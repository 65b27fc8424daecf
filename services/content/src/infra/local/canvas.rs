//! Drawing on a [`Raster`]: gradients, translucent discs, rings, thick lines and rectangles, all
//! anti-aliasing-free and deterministic.

use crate::infra::imaging::Raster;

/// An RGB colour.
pub type Rgb = [u8; 3];

/// A drawable raster.
pub struct Canvas {
    raster: Raster,
}

fn mix(a: u8, b: u8, t: f64) -> u8 {
    (f64::from(a) * (1.0 - t) + f64::from(b) * t).round().clamp(0.0, 255.0) as u8
}

/// `a` → `b` at `t` in `[0, 1]`.
pub fn lerp(a: Rgb, b: Rgb, t: f64) -> Rgb {
    let t = t.clamp(0.0, 1.0);
    [mix(a[0], b[0], t), mix(a[1], b[1], t), mix(a[2], b[2], t)]
}

impl Canvas {
    /// A blank (black) canvas.
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas { raster: Raster::filled(width, height, [0, 0, 0]) }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.raster.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.raster.height
    }

    /// The finished raster.
    pub fn into_raster(self) -> Raster {
        self.raster
    }

    /// Blends `color` over the pixel at `(x, y)` with opacity `alpha` (ignored outside).
    pub fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f64) {
        if x < 0 || y < 0 || x >= i64::from(self.raster.width) || y >= i64::from(self.raster.height) {
            return;
        }
        let i = (y as usize * self.raster.width as usize + x as usize) * 3;
        let current = [self.raster.pixels[i], self.raster.pixels[i + 1], self.raster.pixels[i + 2]];
        let out = if alpha >= 1.0 { color } else { lerp(current, color, alpha) };
        self.raster.pixels[i..i + 3].copy_from_slice(&out);
    }

    /// A gradient from `from` to `to` along the direction `(dx, dy)` (e.g. `(0, 1)` top to bottom,
    /// `(1, 1)` diagonal).
    pub fn gradient(&mut self, from: Rgb, to: Rgb, dx: f64, dy: f64) {
        let (w, h) = (f64::from(self.raster.width.max(1)), f64::from(self.raster.height.max(1)));
        let span = (dx.abs() * w + dy.abs() * h).max(1.0);
        let (ox, oy) = (if dx < 0.0 { w } else { 0.0 }, if dy < 0.0 { h } else { 0.0 });
        let width = self.raster.width as usize;
        for y in 0..self.raster.height {
            for x in 0..self.raster.width {
                let t = ((f64::from(x) - ox) * dx + (f64::from(y) - oy) * dy) / span;
                let c = lerp(from, to, t);
                let i = (y as usize * width + x as usize) * 3;
                self.raster.pixels[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// A filled disc.
    pub fn disc(&mut self, cx: f64, cy: f64, r: f64, color: Rgb, alpha: f64) {
        let r2 = r * r;
        for y in (cy - r).floor() as i64..=(cy + r).ceil() as i64 {
            for x in (cx - r).floor() as i64..=(cx + r).ceil() as i64 {
                let (fx, fy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if fx * fx + fy * fy <= r2 {
                    self.blend(x, y, color, alpha);
                }
            }
        }
    }

    /// A ring of radius `r` and stroke `thickness`.
    pub fn ring(&mut self, cx: f64, cy: f64, r: f64, thickness: f64, color: Rgb, alpha: f64) {
        let outer = r + thickness / 2.0;
        let inner = (r - thickness / 2.0).max(0.0);
        for y in (cy - outer).floor() as i64..=(cy + outer).ceil() as i64 {
            for x in (cx - outer).floor() as i64..=(cx + outer).ceil() as i64 {
                let (fx, fy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                let d = (fx * fx + fy * fy).sqrt();
                if d <= outer && d >= inner {
                    self.blend(x, y, color, alpha);
                }
            }
        }
    }

    /// A line from `(x0, y0)` to `(x1, y1)` with round caps, `thickness` wide.
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), thickness: f64, color: Rgb, alpha: f64) {
        let half = thickness / 2.0;
        let (min_x, max_x) = (x0.min(x1) - half, x0.max(x1) + half);
        let (min_y, max_y) = (y0.min(y1) - half, y0.max(y1) + half);
        let (dx, dy) = (x1 - x0, y1 - y0);
        let len2 = (dx * dx + dy * dy).max(1e-9);
        for y in min_y.floor() as i64..=max_y.ceil() as i64 {
            for x in min_x.floor() as i64..=max_x.ceil() as i64 {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = (((px - x0) * dx + (py - y0) * dy) / len2).clamp(0.0, 1.0);
                let (qx, qy) = (x0 + t * dx - px, y0 + t * dy - py);
                if qx * qx + qy * qy <= half * half {
                    self.blend(x, y, color, alpha);
                }
            }
        }
    }

    /// A filled rectangle `(x, y, width, height)` with corners rounded by `radius`.
    pub fn rounded_rect(&mut self, (x, y, w, h): (f64, f64, f64, f64), radius: f64, color: Rgb, alpha: f64) {
        let radius = radius.min(w / 2.0).min(h / 2.0).max(0.0);
        for py in y.floor() as i64..(y + h).ceil() as i64 {
            for px in x.floor() as i64..(x + w).ceil() as i64 {
                let (cx, cy) = (px as f64 + 0.5, py as f64 + 0.5);
                let nx = cx.clamp(x + radius, x + w - radius);
                let ny = cy.clamp(y + radius, y + h - radius);
                let (dx, dy) = (cx - nx, cy - ny);
                if dx * dx + dy * dy <= radius * radius && cx >= x && cy >= y && cx <= x + w && cy <= y + h {
                    self.blend(px, py, color, alpha);
                }
            }
        }
    }

    /// A filled axis-aligned rectangle.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, color: Rgb, alpha: f64) {
        for py in y.round() as i64..(y + h).round() as i64 {
            for px in x.round() as i64..(x + w).round() as i64 {
                self.blend(px, py, color, alpha);
            }
        }
    }
}
