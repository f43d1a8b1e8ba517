//! Pattern pitch -> output key: transpose, optional scale snap, pitch range. Applied when a note
//! starts, so a knob turned mid-note never strands the note-off on another key.

/// Scale shapes as pitch-class masks relative to the key (bit 0 = the key's root).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scale {
    #[default]
    Off,
    Major,
    Minor,
    HarmonicMinor,
    Dorian,
    Mixolydian,
    PentatonicMajor,
    PentatonicMinor,
    Blues,
}

impl Scale {
    /// Pitch classes of the scale on C, as a 12-bit mask.
    pub fn mask(self) -> u16 {
        let steps: &[u8] = match self {
            Scale::Off => return 0xFFF,
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::Minor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Scale::PentatonicMajor => &[0, 2, 4, 7, 9],
            Scale::PentatonicMinor => &[0, 3, 5, 7, 10],
            Scale::Blues => &[0, 3, 5, 6, 7, 10],
        };
        steps.iter().fold(0u16, |m, s| m | (1 << s))
    }
}

/// The per-note output mapping, rebuilt from parameters each block (cheap, no allocation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyMap {
    pub transpose: i32,
    pub lowest: u8,
    pub highest: u8,
    /// Allowed pitch classes (bit 0 = C); 0xFFF when snapping is off.
    pub allowed: u16,
}

impl Default for KeyMap {
    fn default() -> Self {
        Self {
            transpose: 0,
            lowest: 0,
            highest: 127,
            allowed: 0xFFF,
        }
    }
}

impl KeyMap {
    /// `key` is the scale's root pitch class (0 = C).
    pub fn new(transpose: i32, lowest: u8, highest: u8, key: u8, scale: Scale) -> Self {
        let m = scale.mask();
        let k = u32::from(key % 12);
        let rotated = ((u32::from(m) << k) | (u32::from(m) >> (12 - k))) & 0xFFF;
        Self {
            transpose,
            lowest: lowest.min(127),
            highest: highest.min(127),
            allowed: if rotated == 0 { 0xFFF } else { rotated as u16 },
        }
    }

    /// The key to play for pattern pitch `pitch`, or `None` when it falls outside the range.
    /// Snapping moves to the nearest allowed pitch class, downwards on a tie.
    pub fn map(&self, pitch: u8) -> Option<u8> {
        let mut p = i32::from(pitch) + self.transpose;
        if self.allowed != 0xFFF {
            let ok = |q: i32| self.allowed & (1 << q.rem_euclid(12)) != 0;
            if !ok(p) {
                p = (1..=6)
                    .find_map(|d| {
                        if ok(p - d) {
                            Some(p - d)
                        } else if ok(p + d) {
                            Some(p + d)
                        } else {
                            None
                        }
                    })
                    .unwrap_or(p);
            }
        }
        let (lo, hi) = (i32::from(self.lowest), i32::from(self.highest));
        (p >= lo && p <= hi && (0..=127).contains(&p)).then_some(p as u8)
    }
}
