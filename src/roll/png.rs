//! Piano-roll heatmaps: pitch up, time right, with faint bar and octave lines.

use super::{PianoRoll, PITCHES};
use image::{Rgb, RgbImage};
use std::path::Path;

/// A perceptual dark-to-bright ramp (close to matplotlib's magma at a few stops).
fn magma(x: f32) -> [u8; 3] {
    const STOPS: [(f32, [f32; 3]); 5] = [
        (0.0, [0.0, 0.0, 4.0]),
        (0.25, [81.0, 18.0, 124.0]),
        (0.5, [183.0, 55.0, 121.0]),
        (0.75, [252.0, 137.0, 97.0]),
        (1.0, [252.0, 253.0, 191.0]),
    ];
    let x = x.clamp(0.0, 1.0);
    for w in STOPS.windows(2) {
        let (a, ca) = w[0];
        let (b, cb) = w[1];
        if x <= b {
            let t = (x - a) / (b - a);
            return [0, 1, 2].map(|i| (ca[i] + t * (cb[i] - ca[i])) as u8);
        }
    }
    [252, 253, 191]
}

/// Render a roll, `scale` pixels per cell; `frames_per_bar` draws bar lines.
pub fn render_png(roll: &PianoRoll, scale: u32, frames_per_bar: Option<usize>) -> RgbImage {
    let scale = scale.max(1);
    let w = (roll.frames().max(1) as u32) * scale;
    let h = PITCHES as u32 * scale;
    let mut img = RgbImage::new(w, h);
    for p in 0..PITCHES {
        let y0 = (PITCHES - 1 - p) as u32 * scale;
        for f in 0..roll.frames() {
            let v = roll.get(p, f);
            let mut c = magma(f32::from(v) / 255.0);
            if v == 0 {
                let bar = frames_per_bar.is_some_and(|b| b > 0 && f % b == 0);
                if bar {
                    c = [40, 40, 60];
                } else if p % 12 == 0 {
                    c = [18, 18, 30];
                }
            }
            for dy in 0..scale {
                for dx in 0..scale {
                    img.put_pixel(f as u32 * scale + dx, y0 + dy, Rgb(c));
                }
            }
        }
    }
    img
}

/// Write a heatmap PNG.
pub fn write_png(
    roll: &PianoRoll,
    path: &Path,
    scale: u32,
    frames_per_bar: Option<usize>,
) -> Result<(), image::ImageError> {
    render_png(roll, scale, frames_per_bar).save(path)
}
