//! The roll cache: each file's conversion (roll, notes with parts, chords, bar lines) stored
//! under a key of its content and everything the conversion depends on, so a folder is parsed
//! once and a changed file is parsed again.

use jit_music::chords::{Chord, ChordSpan, ChordTrack, Quality};
use jit_music::roll::{GridNote, PianoRoll, RollNote};
use std::path::Path;

/// Cache layout; bump when what is stored changes.
const CACHE_MAGIC: &[u8; 8] = b"JITSONG3";

/// One file's conversion, as cached.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    pub roll: PianoRoll,
    pub bars: Vec<usize>,
    pub frames_per_bar: usize,
    pub notes: Vec<GridNote>,
    /// The part that carries the melody, if one can be told.
    pub melody_part: Option<u16>,
    pub chords: Option<ChordTrack>,
}

/// The cache key: the file's content hash plus everything the conversion depends on.
pub fn key(
    bytes: &[u8],
    settings: &impl serde::Serialize,
    annotations: &[Option<String>],
) -> String {
    let mut h = blake3::Hasher::new();
    h.update(bytes);
    h.update(
        serde_json::to_string(settings)
            .unwrap_or_default()
            .as_bytes(),
    );
    for a in annotations {
        h.update(a.as_deref().unwrap_or("-").as_bytes());
        h.update(&[0]);
    }
    // Bump when the conversion code changes what a roll, its notes or bar lines are.
    h.update(b"v3");
    h.finalize().to_hex()[..32].to_string()
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: usize) {
        self.0
            .extend_from_slice(&(v.min(u32::MAX as usize) as u32).to_le_bytes());
    }
    fn u64(&mut self, v: usize) {
        self.0.extend_from_slice(&(v as u64).to_le_bytes());
    }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<usize> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize)
    }
    fn u64(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }
}

pub fn write(path: &Path, c: &Converted) -> std::io::Result<()> {
    let mut w = Writer(Vec::with_capacity(
        64 + c.roll.data().len() + 12 * c.notes.len(),
    ));
    w.0.extend_from_slice(CACHE_MAGIC);
    w.u64(c.roll.frames());
    w.u64(c.frames_per_bar);
    w.u64(c.bars.len());
    for &b in &c.bars {
        w.u32(b);
    }
    w.u64(c.notes.len());
    for n in &c.notes {
        w.u8(n.note.pitch);
        w.u8(n.note.velocity);
        w.u16(n.part);
        w.u32(n.note.start);
        w.u32(n.note.end);
    }
    w.u16(c.melody_part.unwrap_or(u16::MAX));
    match &c.chords {
        None => w.u64(usize::MAX >> 1),
        Some(t) => {
            w.u64(t.spans.len());
            for s in &t.spans {
                w.u32(s.start);
                w.u32(s.end);
                match s.chord {
                    Some(ch) => {
                        w.u8(ch.root);
                        w.u8(Quality::ALL
                            .iter()
                            .position(|&q| q == ch.quality)
                            .unwrap_or(0) as u8);
                        w.u8(ch.bass);
                        w.u8(0);
                    }
                    None => w.0.extend_from_slice(&[0, 0, 0, 1]),
                }
            }
        }
    }
    w.0.extend_from_slice(c.roll.data());
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, &w.0)?;
    std::fs::rename(tmp, path)
}

/// `None` for a missing, old or damaged entry (it is then converted again).
pub fn read(path: &Path) -> Option<Converted> {
    let b = std::fs::read(path).ok()?;
    let mut r = Reader { b: &b, at: 0 };
    if r.take(8)? != CACHE_MAGIC {
        return None;
    }
    let frames = r.u64()?;
    let frames_per_bar = r.u64()?;
    let nbars = r.u64()?;
    let bars = (0..nbars.min(b.len()))
        .map(|_| r.u32())
        .collect::<Option<Vec<_>>>()?;
    let nnotes = r.u64()?;
    let mut notes = Vec::with_capacity(nnotes.min(b.len() / 12));
    for _ in 0..nnotes {
        let (pitch, velocity, part) = (r.u8()?, r.u8()?, r.u16()?);
        let (start, end) = (r.u32()?, r.u32()?);
        notes.push(GridNote {
            note: RollNote {
                pitch: pitch.min(127),
                start,
                end,
                velocity,
            },
            part,
        });
    }
    let melody_part = Some(r.u16()?).filter(|&p| p != u16::MAX);
    let nchords = r.u64()?;
    let chords = if nchords == usize::MAX >> 1 {
        None
    } else {
        let mut spans = Vec::with_capacity(nchords.min(b.len() / 12));
        for _ in 0..nchords {
            let (start, end) = (r.u32()?, r.u32()?);
            let (root, q, bass, none) = (r.u8()?, r.u8()?, r.u8()?, r.u8()?);
            let chord = (none == 0).then(|| Chord {
                root: root % 12,
                quality: Quality::ALL[usize::from(q) % Quality::ALL.len()],
                bass: bass % 12,
            });
            spans.push(ChordSpan { start, end, chord });
        }
        Some(ChordTrack::new(spans))
    };
    let roll = PianoRoll::from_raw(frames, r.take(frames.checked_mul(128)?)?.to_vec())?;
    Some(Converted {
        roll,
        bars,
        frames_per_bar,
        notes,
        melody_part,
        chords,
    })
}
