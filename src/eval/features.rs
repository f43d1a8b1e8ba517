//! Note statistics: what most evaluations of symbolic music report. Necessary (a model with the
//! wrong density or range is wrong) but far from sufficient: shuffling a real window's onsets
//! and pitches keeps nearly all of them.

use super::{Feature, FeatureSet, Window};

/// Fill the [`super::Family::Notes`] features. `masks`: [`Window::frame_masks`].
pub fn note_statistics(w: &Window, masks: &[u128], out: &mut FeatureSet) {
    let spb = w.steps_per_beat.max(1) as f64;
    let n = w.notes.len();
    out.set(Feature::NotesPerBar, Some(n as f64 / w.bars.max(1) as f64));

    let sounding: Vec<u32> = masks
        .iter()
        .map(|m| m.count_ones())
        .filter(|&c| c > 0)
        .collect();
    out.set(
        Feature::Polyphony,
        (!sounding.is_empty())
            .then(|| sounding.iter().map(|&c| f64::from(c)).sum::<f64>() / sounding.len() as f64),
    );
    if !masks.is_empty() {
        out.set(
            Feature::SilenceRatio,
            Some(1.0 - sounding.len() as f64 / masks.len() as f64),
        );
    }
    if n == 0 {
        return;
    }

    let lo = w.notes.iter().map(|x| x.pitch).min().unwrap_or(0);
    let hi = w.notes.iter().map(|x| x.pitch).max().unwrap_or(0);
    out.set(Feature::PitchRange, Some(f64::from(hi - lo)));

    // Used pitch classes per bar (Yang & Lerch's PC), mean over bars with notes.
    let per_bar: Vec<u32> = (0..w.bars)
        .map(|b| {
            w.bar_notes(b)
                .fold(0u16, |m, x| m | (1u16 << (x.pitch % 12)))
                .count_ones()
        })
        .filter(|&c| c > 0)
        .collect();
    out.set(
        Feature::PitchClasses,
        (!per_bar.is_empty())
            .then(|| per_bar.iter().map(|&c| f64::from(c)).sum::<f64>() / per_bar.len() as f64),
    );

    let mut hist = [0usize; 12];
    for x in &w.notes {
        hist[usize::from(x.pitch % 12)] += 1;
    }
    out.set(Feature::PitchClassEntropy, Some(entropy_bits(&hist)));

    let mean_len = w
        .notes
        .iter()
        .map(|x| x.end.saturating_sub(x.start) as f64)
        .sum::<f64>()
        / n as f64;
    out.set(Feature::NoteDuration, Some(mean_len / spb));

    // Notes are sorted by start: distinct onsets in order.
    let mut onsets: Vec<usize> = w.notes.iter().map(|x| x.start).collect();
    onsets.dedup();
    if onsets.len() >= 2 {
        let span = (onsets[onsets.len() - 1] - onsets[0]) as f64;
        out.set(
            Feature::InterOnsetInterval,
            Some(span / (onsets.len() - 1) as f64 / spb),
        );
    }

    let on_beat = w
        .notes
        .iter()
        .filter(|x| x.start % w.steps_per_beat.max(1) == 0)
        .count();
    out.set(Feature::OnBeat, Some(on_beat as f64 / n as f64));
}

/// Shannon entropy in bits of a histogram (0 for an empty one).
pub fn entropy_bits(hist: &[usize]) -> f64 {
    let total: usize = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}
