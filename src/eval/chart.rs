//! A bar chart of the report: per-feature OA of the model next to the ceiling, then the family
//! and overall means. Drawn pixel by pixel with a built-in 3x5 bitmap font (no plotting or font
//! crates): bars are numbered as in the text table and carry their short labels vertically.

use super::{EvalReport, Family, Feature};
use image::{ImageFormat, Rgb, RgbImage};
use std::path::Path;

const MODEL: Rgb<u8> = Rgb([38, 92, 178]);
const CEILING: Rgb<u8> = Rgb([165, 165, 165]);
const TEXT: Rgb<u8> = Rgb([30, 30, 30]);
const GRIDLINE: Rgb<u8> = Rgb([215, 215, 215]);
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);

/// Font pixel size in image pixels.
const SCALE: u32 = 2;
/// Glyph advance in image pixels (3 columns + 1 gap).
const ADVANCE: u32 = 4 * SCALE;
/// Glyph height in image pixels.
const GLYPH_H: u32 = 5 * SCALE;

const LEFT: u32 = 48;
const RIGHT: u32 = 16;
const TOP: u32 = 56;
const PLOT_H: u32 = 240;
const BOTTOM: u32 = 124;
const GROUP_W: u32 = 34;
const BAR_W: u32 = 12;
/// Gap between the per-feature groups and the summary groups.
const SUMMARY_GAP: u32 = 20;

/// 3x5 glyphs, rows top to bottom, `#` = ink.
fn glyph(c: char) -> [&'static str; 5] {
    match c.to_ascii_uppercase() {
        'A' => ["###", "#.#", "###", "#.#", "#.#"],
        'B' => ["##.", "#.#", "##.", "#.#", "##."],
        'C' => ["###", "#..", "#..", "#..", "###"],
        'D' => ["##.", "#.#", "#.#", "#.#", "##."],
        'E' => ["###", "#..", "##.", "#..", "###"],
        'F' => ["###", "#..", "##.", "#..", "#.."],
        'G' => ["###", "#..", "#.#", "#.#", "###"],
        'H' => ["#.#", "#.#", "###", "#.#", "#.#"],
        'I' => ["###", ".#.", ".#.", ".#.", "###"],
        'J' => ["..#", "..#", "..#", "#.#", "###"],
        'K' => ["#.#", "#.#", "##.", "#.#", "#.#"],
        'L' => ["#..", "#..", "#..", "#..", "###"],
        'M' => ["#.#", "###", "###", "#.#", "#.#"],
        'N' => ["##.", "#.#", "#.#", "#.#", "#.#"],
        'O' => ["###", "#.#", "#.#", "#.#", "###"],
        'P' => ["###", "#.#", "###", "#..", "#.."],
        'Q' => ["###", "#.#", "#.#", "###", "..#"],
        'R' => ["##.", "#.#", "##.", "#.#", "#.#"],
        'S' => ["###", "#..", "###", "..#", "###"],
        'T' => ["###", ".#.", ".#.", ".#.", ".#."],
        'U' => ["#.#", "#.#", "#.#", "#.#", "###"],
        'V' => ["#.#", "#.#", "#.#", "#.#", ".#."],
        'W' => ["#.#", "#.#", "###", "###", "#.#"],
        'X' => ["#.#", "#.#", ".#.", "#.#", "#.#"],
        'Y' => ["#.#", "#.#", ".#.", ".#.", ".#."],
        'Z' => ["###", "..#", ".#.", "#..", "###"],
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", ".#.", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        '.' => ["...", "...", "...", "...", ".#."],
        ',' => ["...", "...", "...", ".#.", "#.."],
        ':' => ["...", ".#.", "...", ".#.", "..."],
        '-' => ["...", "...", "###", "...", "..."],
        '+' => ["...", ".#.", "###", ".#.", "..."],
        '/' => ["..#", "..#", ".#.", "#..", "#.."],
        '%' => ["#.#", "..#", ".#.", "#..", "#.#"],
        '(' => [".#.", "#..", "#..", "#..", ".#."],
        ')' => [".#.", "..#", "..#", "..#", ".#."],
        '=' => ["...", "###", "...", "###", "..."],
        _ => ["...", "...", "...", "...", "..."],
    }
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: Rgb<u8>) {
    if x >= 0 && y >= 0 && (x as u32) < img.width() && (y as u32) < img.height() {
        img.put_pixel(x as u32, y as u32, c);
    }
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, w: i64, h: i64, c: Rgb<u8>) {
    for y in y0..y0 + h {
        for x in x0..x0 + w {
            put(img, x, y, c);
        }
    }
}

/// Horizontal text with its top-left corner at `(x, y)`.
fn text(img: &mut RgbImage, x: i64, y: i64, s: &str, c: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let gx = x + i as i64 * i64::from(ADVANCE);
        for (row, bits) in glyph(ch).iter().enumerate() {
            for (col, b) in bits.bytes().enumerate() {
                if b == b'#' {
                    let s = i64::from(SCALE);
                    fill(img, gx + col as i64 * s, y + row as i64 * s, s, s, c);
                }
            }
        }
    }
}

/// Text rotated a quarter turn clockwise (reads top to bottom), its top-left corner at `(x, y)`.
fn text_down(img: &mut RgbImage, x: i64, y: i64, s: &str, c: Rgb<u8>) {
    let s_px = i64::from(SCALE);
    for (i, ch) in s.chars().enumerate() {
        let gy = y + i as i64 * i64::from(ADVANCE);
        for (row, bits) in glyph(ch).iter().enumerate() {
            for (col, b) in bits.bytes().enumerate() {
                if b == b'#' {
                    // Clockwise: glyph row -> x from the right, glyph column -> y downwards.
                    let px = x + (4 - row as i64) * s_px;
                    fill(img, px, gy + col as i64 * s_px, s_px, s_px, c);
                }
            }
        }
    }
}

fn text_width(s: &str) -> i64 {
    s.chars().count() as i64 * i64::from(ADVANCE)
}

fn family_tint(f: Family) -> Rgb<u8> {
    match f {
        Family::Notes => Rgb([236, 241, 250]),
        Family::Harmony => Rgb([250, 244, 228]),
        Family::Melody => Rgb([233, 246, 234]),
    }
}

/// One group of bars: label, model OA, ceiling OA, background tint.
struct Group {
    number: String,
    label: String,
    model: Option<f64>,
    ceiling: Option<f64>,
    tint: Rgb<u8>,
}

/// Draw the chart.
pub fn render(report: &EvalReport) -> RgbImage {
    let mut groups: Vec<Group> = report
        .features
        .iter()
        .enumerate()
        .map(|(i, r)| Group {
            number: (i + 1).to_string(),
            label: r.feature.label().to_string(),
            model: r.oa,
            ceiling: r.ceiling_oa,
            tint: family_tint(r.family),
        })
        .collect();
    let n_features = groups.len() as u32;
    for (i, line) in report.summary.iter().enumerate() {
        let (label, tint) = match Family::ALL.get(i) {
            Some(&f) => (
                match f {
                    Family::Notes => "NOTES",
                    Family::Harmony => "HARMONY",
                    Family::Melody => "MELODY",
                },
                family_tint(f),
            ),
            None => ("OVERALL", Rgb([240, 240, 240])),
        };
        groups.push(Group {
            number: String::new(),
            label: label.to_string(),
            model: line.oa,
            ceiling: line.ceiling_oa,
            tint,
        });
    }
    let n = groups.len() as u32;
    let width = LEFT + n * GROUP_W + SUMMARY_GAP + RIGHT;
    let height = TOP + PLOT_H + BOTTOM;
    let mut img = RgbImage::from_pixel(width, height, WHITE);
    let base = i64::from(TOP + PLOT_H);
    let group_x = |i: u32| -> i64 {
        i64::from(LEFT + i * GROUP_W + if i >= n_features { SUMMARY_GAP } else { 0 })
    };

    // Family bands behind the plot, with their names above it.
    for (i, g) in groups.iter().enumerate() {
        fill(
            &mut img,
            group_x(i as u32),
            i64::from(TOP),
            i64::from(GROUP_W),
            i64::from(PLOT_H),
            g.tint,
        );
    }
    for fam in Family::ALL {
        let idx: Vec<u32> = Feature::ALL
            .iter()
            .enumerate()
            .filter(|(_, f)| f.family() == fam)
            .map(|(i, _)| i as u32)
            .collect();
        if let (Some(&a), Some(&b)) = (idx.first(), idx.last()) {
            if b < n_features {
                let name = fam.name().to_uppercase();
                let mid = (group_x(a) + group_x(b) + i64::from(GROUP_W)) / 2;
                text(
                    &mut img,
                    mid - text_width(&name) / 2,
                    i64::from(TOP) - 14,
                    &name,
                    TEXT,
                );
            }
        }
    }

    // Y axis: grid lines every 0.25.
    for k in 0..=4 {
        let y = base - i64::from(PLOT_H) * k / 4;
        for x in i64::from(LEFT)..i64::from(width - RIGHT) {
            if x % 4 != 0 || k == 0 {
                put(&mut img, x, y, if k == 0 { TEXT } else { GRIDLINE });
            }
        }
        let label = ["0", ".25", ".5", ".75", "1"][k as usize];
        text(
            &mut img,
            i64::from(LEFT) - 6 - text_width(label),
            y - 5,
            label,
            TEXT,
        );
    }

    // Bars.
    let bar_h = |v: f64| (v.clamp(0.0, 1.0) * f64::from(PLOT_H)).round() as i64;
    for (i, g) in groups.iter().enumerate() {
        let x = group_x(i as u32) + (i64::from(GROUP_W) - 2 * i64::from(BAR_W) - 2) / 2;
        if let Some(v) = g.model {
            let h = bar_h(v);
            fill(&mut img, x, base - h, i64::from(BAR_W), h, MODEL);
        }
        if let Some(v) = g.ceiling {
            let h = bar_h(v);
            fill(
                &mut img,
                x + i64::from(BAR_W) + 2,
                base - h,
                i64::from(BAR_W),
                h,
                CEILING,
            );
        }
        let cx = group_x(i as u32) + i64::from(GROUP_W) / 2;
        let label_y = base + 6;
        text(
            &mut img,
            cx - text_width(&g.number) / 2,
            label_y,
            &g.number,
            TEXT,
        );
        text_down(
            &mut img,
            cx - i64::from(GLYPH_H) / 2,
            label_y + i64::from(GLYPH_H) + 6,
            &g.label,
            TEXT,
        );
    }

    // Title and legend.
    text(
        &mut img,
        i64::from(LEFT),
        8,
        "OVERLAPPING AREA WITH THE REFERENCE",
        TEXT,
    );
    let lx = i64::from(width) - 200;
    fill(&mut img, lx, 8, 10, 10, MODEL);
    text(&mut img, lx + 14, 8, "MODEL", TEXT);
    fill(&mut img, lx + 70, 8, 10, 10, CEILING);
    text(&mut img, lx + 84, 8, "CEILING", TEXT);
    img
}

/// Draw the chart and write it as PNG (whatever the file's extension).
pub fn write_png(report: &EvalReport, path: &Path) -> Result<(), image::ImageError> {
    render(report).save_with_format(path, ImageFormat::Png)
}
