//! Integrity of a checkpoint: a content checksum over its metadata and tensors (sealed into the
//! file by [`super::save`], checked by [`super::read_bytes`]) and finite weights, so that a
//! damaged file is an error instead of a model that writes noise.

use super::{CheckpointError, META_KEY};
use crate::diffusion::Objective;
use crate::sampler::SamplerConfig;
use candle_core::{DType, Tensor};
use safetensors::tensor::Metadata;
use std::collections::HashMap;

/// Metadata key of the checksum. Files written before it existed have none and still load.
pub const HASH_KEY: &str = "tensor_hash";
/// What `save` writes first and overwrites in place with the checksum (the same length).
pub(super) const PLACEHOLDER: &str = "xxh64:0000000000000000";

/// The checksum of a parsed safetensors file, `xxh64:<16 hex digits>`: xxh64 over the digests of
/// the JiT-Music metadata and, in name order, each tensor's name, dtype, shape and bytes. It
/// covers everything that decides what the model does; the header's other keys do not matter.
pub(super) fn checksum(bytes: &[u8], header_len: usize, md: &Metadata) -> String {
    let data = bytes.get(8 + header_len..).unwrap_or_default();
    let meta = md
        .metadata()
        .as_ref()
        .and_then(|m| m.get(META_KEY))
        .map_or("", String::as_str);
    let mut digests = vec![xxh64(meta.as_bytes(), 0)];
    let mut tensors: Vec<_> = md.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, info) in tensors {
        let shape: Vec<u8> = info
            .shape
            .iter()
            .flat_map(|&d| (d as u64).to_le_bytes())
            .collect();
        let (start, end) = info.data_offsets;
        digests.push(xxh64(name.as_bytes(), 1));
        digests.push(xxh64(format!("{:?}", info.dtype).as_bytes(), 2));
        digests.push(xxh64(&shape, 3));
        digests.push(xxh64(data.get(start..end).unwrap_or_default(), 4));
    }
    let all: Vec<u8> = digests.iter().flat_map(|d| d.to_le_bytes()).collect();
    format!("xxh64:{:016x}", xxh64(&all, 0))
}

/// Overwrite the placeholder checksum of freshly serialized bytes with the real one.
pub(super) fn seal(bytes: &mut [u8]) -> Result<(), String> {
    let (n, md) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| e.to_string())?;
    let sum = checksum(bytes, n, &md);
    let pattern = format!("\"{HASH_KEY}\":\"{PLACEHOLDER}\"");
    let header = &bytes[8..8 + n];
    let at = header
        .windows(pattern.len())
        .position(|w| w == pattern.as_bytes())
        .ok_or("the checksum placeholder is missing from the header")?;
    let value = 8 + at + pattern.len() - 1 - PLACEHOLDER.len();
    bytes[value..value + sum.len()].copy_from_slice(sum.as_bytes());
    Ok(())
}

/// Every weight is a finite number (a flipped exponent bit or a diverged run shows up here).
pub(crate) fn check_finite(
    path: &str,
    tensors: &HashMap<String, Tensor>,
) -> Result<(), CheckpointError> {
    let mut names: Vec<&String> = tensors.keys().collect();
    names.sort();
    for name in names {
        let t = &tensors[name];
        if !matches!(t.dtype(), DType::F32 | DType::F16 | DType::BF16) {
            continue;
        }
        let v: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
        if let Some(index) = v.iter().position(|x| !x.is_finite()) {
            return Err(CheckpointError::NonFinite {
                path: path.into(),
                name: name.clone(),
                value: v[index],
                index,
            });
        }
    }
    Ok(())
}

/// Sampler settings that can work (a checkpoint's recommendation, a sidecar's replay): the
/// message names the field and its allowed range.
pub fn check_sampler(s: &SamplerConfig) -> Result<(), String> {
    let (lo, hi) = s.cfg_interval;
    let checks = [
        (
            (1..=1000).contains(&s.steps),
            format!("sampler.steps {} is outside 1..=1000", s.steps),
        ),
        (
            s.cfg_scale.is_finite() && (0.0..=20.0).contains(&s.cfg_scale),
            format!("sampler.cfg_scale {} is outside 0..=20", s.cfg_scale),
        ),
        (
            (0.0..1.0).contains(&lo) && lo < hi && hi <= 1.0,
            format!("sampler.cfg_interval ({lo}, {hi}) needs 0 <= low < high <= 1"),
        ),
        (
            s.t_eps > 0.0 && s.t_eps < 1.0,
            format!("sampler.t_eps {} is outside (0, 1)", s.t_eps),
        ),
        (
            s.noise_scale > 0.0 && s.noise_scale <= 100.0,
            format!("sampler.noise_scale {} is outside (0, 100]", s.noise_scale),
        ),
    ];
    first_failure(checks)
}

/// Training objective values that can work (a resumed or initialising run takes them).
pub(super) fn check_objective(o: &Objective) -> Result<(), String> {
    let checks = [
        (
            o.P_mean.is_finite() && o.P_std > 0.0 && o.P_std.is_finite(),
            format!("objective P_mean {} / P_std {}", o.P_mean, o.P_std),
        ),
        (
            o.t_eps > 0.0 && o.t_eps < 1.0 && o.noise_scale > 0.0 && o.noise_scale <= 100.0,
            format!(
                "objective t_eps {} / noise_scale {}",
                o.t_eps, o.noise_scale
            ),
        ),
        (
            (0.0..=1.0).contains(&o.label_drop_prob),
            format!("objective label_drop_prob {}", o.label_drop_prob),
        ),
    ];
    first_failure(checks)
}

fn first_failure<const N: usize>(checks: [(bool, String); N]) -> Result<(), String> {
    match checks.into_iter().find(|c| !c.0) {
        Some((_, what)) => Err(what),
        None => Ok(()),
    }
}

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

fn word(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// XXH64 (Yann Collet's xxHash, 64-bit): fast, and any damage changes it; not a defence against
/// deliberate tampering.
pub fn xxh64(input: &[u8], seed: u64) -> u64 {
    let mut rest = input;
    let mut h = if input.len() >= 32 {
        let mut v = [
            seed.wrapping_add(P1).wrapping_add(P2),
            seed.wrapping_add(P2),
            seed,
            seed.wrapping_sub(P1),
        ];
        while rest.len() >= 32 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, word(&rest[8 * i..]));
            }
            rest = &rest[32..];
        }
        let h = v[0]
            .rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18));
        v.iter().fold(h, |h, &lane| merge(h, lane))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u64);
    while rest.len() >= 8 {
        h = (h ^ round(0, word(rest)))
            .rotate_left(27)
            .wrapping_mul(P1)
            .wrapping_add(P4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        let w = u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]));
        h = (h ^ w.wrapping_mul(P1))
            .rotate_left(23)
            .wrapping_mul(P2)
            .wrapping_add(P3);
        rest = &rest[4..];
    }
    for &b in rest {
        h = (h ^ u64::from(b).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::xxh64;

    /// The reference implementation's values (xxhsum, python-xxhash).
    #[test]
    fn xxh64_matches_the_reference() {
        assert_eq!(xxh64(b"", 0), 0xEF46_DB37_51D8_E999);
        assert_eq!(xxh64(b"a", 0), 0xD24E_C4F1_A98C_6E5B);
        assert_eq!(xxh64(b"abc", 0), 0x44BC_2CF5_AD77_0999);
        assert_eq!(
            xxh64(b"Nobody inspects the spammish repetition", 0),
            0xFBCE_A83C_8A37_8BF1
        );
    }
}
