//! Chord symbols: what a producer types ("Am7", "F/C", "Bbmaj7", "Gsus4") and what POP909's
//! annotations hold ("A:min7", "F:maj/5", "G:sus4(b7)"), parsed into one [`Chord`].

use serde::{Deserialize, Serialize};

/// A chord's quality: the intervals above its root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Major,
    Minor,
    Dominant7,
    Major7,
    Minor7,
    Diminished,
    Diminished7,
    HalfDiminished7,
    Augmented,
    Sus2,
    Sus4,
    Dominant7Sus4,
    Major6,
    Minor6,
    MinorMajor7,
    Add9,
    Dominant9,
    Minor9,
    Major9,
    Power,
}

impl Quality {
    /// Semitones above the root.
    pub fn intervals(self) -> &'static [u8] {
        use Quality::*;
        match self {
            Major => &[0, 4, 7],
            Minor => &[0, 3, 7],
            Dominant7 => &[0, 4, 7, 10],
            Major7 => &[0, 4, 7, 11],
            Minor7 => &[0, 3, 7, 10],
            Diminished => &[0, 3, 6],
            Diminished7 => &[0, 3, 6, 9],
            HalfDiminished7 => &[0, 3, 6, 10],
            Augmented => &[0, 4, 8],
            Sus2 => &[0, 2, 7],
            Sus4 => &[0, 5, 7],
            Dominant7Sus4 => &[0, 5, 7, 10],
            Major6 => &[0, 4, 7, 9],
            Minor6 => &[0, 3, 7, 9],
            MinorMajor7 => &[0, 3, 7, 11],
            Add9 => &[0, 2, 4, 7],
            Dominant9 => &[0, 2, 4, 7, 10],
            Minor9 => &[0, 2, 3, 7, 10],
            Major9 => &[0, 2, 4, 7, 11],
            Power => &[0, 7],
        }
    }

    /// The suffix written after the root ("" for major).
    pub fn suffix(self) -> &'static str {
        use Quality::*;
        match self {
            Major => "",
            Minor => "m",
            Dominant7 => "7",
            Major7 => "maj7",
            Minor7 => "m7",
            Diminished => "dim",
            Diminished7 => "dim7",
            HalfDiminished7 => "m7b5",
            Augmented => "aug",
            Sus2 => "sus2",
            Sus4 => "sus4",
            Dominant7Sus4 => "7sus4",
            Major6 => "6",
            Minor6 => "m6",
            MinorMajor7 => "mmaj7",
            Add9 => "add9",
            Dominant9 => "9",
            Minor9 => "m9",
            Major9 => "maj9",
            Power => "5",
        }
    }

    /// Every quality, for the estimator's templates.
    pub const ALL: [Quality; 20] = [
        Quality::Major,
        Quality::Minor,
        Quality::Dominant7,
        Quality::Major7,
        Quality::Minor7,
        Quality::Diminished,
        Quality::Diminished7,
        Quality::HalfDiminished7,
        Quality::Augmented,
        Quality::Sus2,
        Quality::Sus4,
        Quality::Dominant7Sus4,
        Quality::Major6,
        Quality::Minor6,
        Quality::MinorMajor7,
        Quality::Add9,
        Quality::Dominant9,
        Quality::Minor9,
        Quality::Major9,
        Quality::Power,
    ];
}

/// A chord: root and bass as pitch classes (0 = C), and its quality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Chord {
    pub root: u8,
    pub quality: Quality,
    /// The lowest note's pitch class: the root unless a slash chord says otherwise.
    pub bass: u8,
}

const NAMES: [&str; 12] = [
    "C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B",
];

impl Chord {
    pub fn new(root: u8, quality: Quality) -> Self {
        Self {
            root: root % 12,
            quality,
            bass: root % 12,
        }
    }

    /// The chord's pitch classes as a 12-bit set (bit `pc`), the bass included.
    pub fn tones(&self) -> u16 {
        let mut m = 1u16 << self.bass;
        for &i in self.quality.intervals() {
            m |= 1 << ((self.root + i) % 12);
        }
        m
    }

    /// Transposed by `semitones`.
    pub fn transpose(&self, semitones: i32) -> Chord {
        let t = |pc: u8| (i32::from(pc) + semitones).rem_euclid(12) as u8;
        Chord {
            root: t(self.root),
            quality: self.quality,
            bass: t(self.bass),
        }
    }
}

impl std::fmt::Display for Chord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}{}",
            NAMES[usize::from(self.root)],
            self.quality.suffix()
        )?;
        if self.bass != self.root {
            write!(f, "/{}", NAMES[usize::from(self.bass)])?;
        }
        Ok(())
    }
}

/// Why a chord symbol could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    #[error("`{0}` does not start with a note name (A to G)")]
    NoRoot(String),
    #[error("`{symbol}`: unknown chord quality `{quality}` (try maj, m, 7, maj7, m7, dim, aug, sus2, sus4, 6, m6, 9, add9, m7b5)")]
    Quality { symbol: String, quality: String },
    #[error("`{symbol}`: cannot read the bass `{bass}` after the slash")]
    Bass { symbol: String, bass: String },
}

/// A note name at the start of `s` ("C", "F#", "Bb", "Ebb"; capital letters, so that "b3" is a
/// degree) -> (pitch class, bytes read).
fn note_name(s: &str) -> Option<(u8, usize)> {
    let b = s.as_bytes();
    let base: i32 = match *b.first()? {
        b'C' => 0,
        b'D' => 2,
        b'E' => 4,
        b'F' => 5,
        b'G' => 7,
        b'A' => 9,
        b'B' => 11,
        _ => return None,
    };
    let mut pc = base;
    let mut n = 1;
    while let Some(&c) = b.get(n) {
        match c {
            b'#' => pc += 1,
            b'b' => pc -= 1,
            _ => break,
        }
        n += 1;
    }
    Some((pc.rem_euclid(12) as u8, n))
}

fn quality(q: &str) -> Option<Quality> {
    use Quality::*;
    Some(match q {
        "" | "maj" | "M" | "major" => Major,
        "m" | "min" | "-" | "minor" => Minor,
        "7" | "dom7" => Dominant7,
        "maj7" | "M7" | "Δ" | "Δ7" | "ma7" => Major7,
        "m7" | "min7" | "-7" => Minor7,
        "dim" | "o" | "°" => Diminished,
        "dim7" | "o7" | "°7" => Diminished7,
        "m7b5" | "hdim7" | "ø" | "ø7" | "min7b5" | "-7b5" => HalfDiminished7,
        "aug" | "+" => Augmented,
        "sus2" => Sus2,
        "sus4" | "sus" => Sus4,
        "7sus4" | "sus4(b7)" | "7sus" => Dominant7Sus4,
        "6" | "maj6" => Major6,
        "m6" | "min6" => Minor6,
        "mmaj7" | "minmaj7" | "m(maj7)" | "mM7" => MinorMajor7,
        "add9" | "add2" | "maj(9)" => Add9,
        "9" => Dominant9,
        "m9" | "min9" => Minor9,
        "maj9" | "M9" => Major9,
        "5" => Power,
        _ => return None,
    })
}

/// A slash bass: a note name ("/E") or a degree above the root, as in POP909 ("/3", "/b7").
fn bass(b: &str, root: u8) -> Option<u8> {
    if let Some((pc, n)) = note_name(b) {
        return (n == b.len()).then_some(pc);
    }
    let digits = b.trim_start_matches(['b', '#']);
    let acc = b.len() - digits.len();
    let shift: i32 = b[..acc]
        .chars()
        .map(|c| if c == '#' { 1 } else { -1 })
        .sum();
    let degree: usize = digits.parse().ok()?;
    const MAJOR_SCALE: [i32; 7] = [0, 2, 4, 5, 7, 9, 11];
    let step = *MAJOR_SCALE.get((degree.checked_sub(1)?) % 7)?;
    Some((i32::from(root) + step + shift).rem_euclid(12) as u8)
}

/// Read one chord symbol; `None` for "no chord" ("N", "N.C.", "NC").
pub fn parse_chord(symbol: &str) -> Result<Option<Chord>, SymbolError> {
    let s = symbol.trim();
    if matches!(s, "N" | "N.C." | "NC" | "n.c." | "nc" | "N.C") {
        return Ok(None);
    }
    let (root, n) = note_name(s).ok_or_else(|| SymbolError::NoRoot(s.to_string()))?;
    let rest = &s[n..];
    let rest = rest.strip_prefix(':').unwrap_or(rest);
    // A slash that is not inside a parenthesis starts the bass.
    let (q, b) = match rest.find('/') {
        Some(i) if !rest[..i].contains('(') || rest[..i].contains(')') => {
            (&rest[..i], Some(&rest[i + 1..]))
        }
        _ => (rest, None),
    };
    let quality = quality(q).ok_or_else(|| SymbolError::Quality {
        symbol: s.to_string(),
        quality: q.to_string(),
    })?;
    let mut chord = Chord::new(root, quality);
    if let Some(b) = b {
        chord.bass = bass(b, root).ok_or_else(|| SymbolError::Bass {
            symbol: s.to_string(),
            bass: b.to_string(),
        })?;
    }
    Ok(Some(chord))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Chord {
        parse_chord(s).unwrap().unwrap()
    }

    #[test]
    fn reads_producer_and_pop909_symbols_alike() {
        assert_eq!(c("Am7"), c("A:min7"));
        assert_eq!(c("Bbmaj7"), c("Bb:maj7"));
        assert_eq!(c("F/C"), c("F:maj/5"));
        assert_eq!(c("Ab:maj7/7").bass, 7);
        assert_eq!(c("C:min/b3").bass, 3);
        assert_eq!(c("G:sus4(b7)").quality, Quality::Dominant7Sus4);
        assert_eq!(c("F#m7b5").to_string(), "F#m7b5");
        assert_eq!(c("E/G#").bass, 8);
        assert_eq!(c("C").tones(), 0b0000_1001_0001);
        assert_eq!(parse_chord("N.C.").unwrap(), None);
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_reason() {
        assert!(matches!(parse_chord("H7"), Err(SymbolError::NoRoot(_))));
        assert!(matches!(
            parse_chord("Cwhat"),
            Err(SymbolError::Quality { .. })
        ));
        assert!(matches!(parse_chord("C/Q"), Err(SymbolError::Bass { .. })));
    }
}
