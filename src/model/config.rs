//! The model's typed configuration and its named presets. A checkpoint carries this config, so a
//! checkpoint rebuilds its own model. Field names are the original `JiTMusic.__init__` arguments.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JitConfig {
    /// Pitch rows of the input image (128).
    pub input_h: usize,
    /// Time frames of the input image.
    pub input_w: usize,
    pub patch_h: usize,
    pub patch_w: usize,
    /// Channels of the roll image: what the network denoises and predicts.
    #[serde(default = "one")]
    pub in_channels: usize,
    /// Conditioning channels concatenated to the noisy roll before the patch embedding (the
    /// known part of a prompt and its mask, chords); the output has `in_channels` only.
    #[serde(default)]
    pub cond_channels: usize,
    pub hidden_size: usize,
    pub depth: usize,
    pub num_heads: usize,
    #[serde(default = "four")]
    pub mlp_ratio: f64,
    /// Real classes; label `num_classes` is the null label for classifier-free guidance.
    pub num_classes: usize,
    pub bottleneck_dim: usize,
}

/// Most image channels of either kind a config may ask for.
pub const MAX_CHANNELS: usize = 16;

/// Hard bounds on every size a config (and so a checkpoint's metadata) may give, far above any
/// real model's: a damaged or hostile value is refused before anything is allocated for it.
pub const MAX_FRAMES: usize = 4096;
pub const MAX_TOKENS: usize = 16_384;
pub const MAX_HIDDEN: usize = 8192;
pub const MAX_DEPTH: usize = 256;
pub const MAX_HEADS: usize = 256;
pub const MAX_CLASSES: usize = 65_536;
pub const MAX_MLP_RATIO: f64 = 16.0;

fn one() -> usize {
    1
}
fn four() -> f64 {
    4.0
}

/// A named size: (name, hidden, depth, heads, bottleneck, patch_h, patch_w, what it is).
type Preset = (
    &'static str,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    &'static str,
);

const PRESETS: &[Preset] = &[
    (
        "tiny",
        64,
        2,
        2,
        16,
        16,
        16,
        "test size: 64 hidden, 2 blocks (~0.3M params)",
    ),
    (
        "JiT-XS/16",
        192,
        6,
        3,
        64,
        16,
        16,
        "CPU/plugin size: 192 hidden, 6 blocks, 3 heads (~4.3M params)",
    ),
    (
        "JiT-S/16",
        384,
        12,
        6,
        128,
        16,
        16,
        "CPU/plugin size: 384 hidden, 12 blocks, 6 heads (~32.7M params)",
    ),
    (
        "JiT-B/16",
        768,
        12,
        12,
        128,
        16,
        16,
        "the original's B/16 (~130M params)",
    ),
    ("JiT-B/32", 768, 12, 12, 128, 32, 32, "the original's B/32"),
    ("JiT-L/16", 1024, 24, 16, 128, 16, 16, "the original's L/16"),
    ("JiT-L/32", 1024, 24, 16, 128, 32, 32, "the original's L/32"),
    ("JiT-H/16", 1280, 32, 16, 256, 16, 16, "the original's H/16"),
    ("JiT-H/32", 1280, 32, 16, 256, 32, 32, "the original's H/32"),
];

impl JitConfig {
    /// A named preset for a `input_h x input_w` roll with `num_classes` classes.
    pub fn preset(name: &str, input_h: usize, input_w: usize, num_classes: usize) -> Option<Self> {
        let p = PRESETS.iter().find(|p| p.0.eq_ignore_ascii_case(name))?;
        Some(Self {
            input_h,
            input_w,
            patch_h: p.5,
            patch_w: p.6,
            in_channels: 1,
            cond_channels: 0,
            hidden_size: p.1,
            depth: p.2,
            num_heads: p.3,
            mlp_ratio: 4.0,
            num_classes,
            bottleneck_dim: p.4,
        })
    }

    /// `(name, description)` of every preset.
    pub fn preset_names() -> Vec<(&'static str, &'static str)> {
        PRESETS.iter().map(|p| (p.0, p.7)).collect()
    }

    /// The preset whose sizes these are, if any.
    pub fn preset_name(&self) -> Option<&'static str> {
        PRESETS
            .iter()
            .find(|p| {
                (p.1, p.2, p.3, p.4, p.5, p.6)
                    == (
                        self.hidden_size,
                        self.depth,
                        self.num_heads,
                        self.bottleneck_dim,
                        self.patch_h,
                        self.patch_w,
                    )
            })
            .map(|p| p.0)
    }

    pub fn grid_h(&self) -> usize {
        self.input_h / self.patch_h
    }
    pub fn grid_w(&self) -> usize {
        self.input_w / self.patch_w
    }
    pub fn num_patches(&self) -> usize {
        self.grid_h() * self.grid_w()
    }
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }
    /// Values per input patch (roll and conditioning channels).
    pub fn patch_dim(&self) -> usize {
        (self.in_channels + self.cond_channels) * self.patch_h * self.patch_w
    }
    /// Values per output patch (the roll channels).
    pub fn out_patch_dim(&self) -> usize {
        self.in_channels * self.patch_h * self.patch_w
    }
    /// SwiGLU hidden width: `int(int(hidden * mlp_ratio) * 2 / 3)`, as the original.
    pub fn mlp_hidden(&self) -> usize {
        let h = (self.hidden_size as f64 * self.mlp_ratio) as usize;
        ((h * 2) as f64 / 3.0) as usize
    }

    /// Checks the hard bounds and that the shapes divide; every constructor calls it.
    pub fn validate(&self) -> Result<(), String> {
        let err = |m: String| Err(m);
        let bounds = [
            ("input_h (pitch rows)", self.input_h, 128),
            ("input_w (frames)", self.input_w, MAX_FRAMES),
            ("hidden_size", self.hidden_size, MAX_HIDDEN),
            ("depth", self.depth, MAX_DEPTH),
            ("num_heads", self.num_heads, MAX_HEADS),
            ("num_classes", self.num_classes, MAX_CLASSES),
            ("bottleneck_dim", self.bottleneck_dim, MAX_HIDDEN),
        ];
        for (name, v, max) in bounds {
            if !(1..=max).contains(&v) {
                return err(format!("{name} {v} is outside 1..={max}"));
            }
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_ratio > 0.0 && self.mlp_ratio <= MAX_MLP_RATIO)
            || self.mlp_hidden() == 0
        {
            return err(format!(
                "mlp_ratio {} is outside (0, {MAX_MLP_RATIO}]",
                self.mlp_ratio
            ));
        }
        if self.patch_h == 0 || self.patch_w == 0 {
            return err("patch sizes must be positive".into());
        }
        if self.input_h % self.patch_h != 0 || self.input_w % self.patch_w != 0 {
            return err(format!(
                "input {}x{} is not divisible by patch {}x{}",
                self.input_h, self.input_w, self.patch_h, self.patch_w
            ));
        }
        if self.hidden_size % self.num_heads != 0 || self.hidden_size % 2 != 0 {
            return err(format!(
                "hidden {} must be even and divisible by {} heads",
                self.hidden_size, self.num_heads
            ));
        }
        if !(1..=MAX_CHANNELS).contains(&self.in_channels) || self.cond_channels > MAX_CHANNELS {
            return err(format!(
                "{} roll and {} conditioning channels (1..={MAX_CHANNELS} and 0..={MAX_CHANNELS})",
                self.in_channels, self.cond_channels
            ));
        }
        if self.num_patches() > MAX_TOKENS {
            return err(format!(
                "{} tokens ({}x{} input in {}x{} patches), at most {MAX_TOKENS}",
                self.num_patches(),
                self.input_h,
                self.input_w,
                self.patch_h,
                self.patch_w
            ));
        }
        Ok(())
    }

    /// Parameter count of the original module (including the fixed `pos_embed`, as PyTorch counts).
    pub fn param_count(&self) -> usize {
        let d = self.hidden_size;
        let m = self.mlp_hidden();
        let (p_in, p_out) = (self.patch_dim(), self.out_patch_dim());
        let block = d
            + 3 * d * d
            + 3 * d
            + 2 * self.head_dim()
            + d * d
            + d
            + d
            + d * 2 * m
            + 2 * m
            + m * d
            + d
            + d * 6 * d
            + 6 * d;
        let embed = 256 * d + d + d * d + d // t_embedder
            + (self.num_classes + 1) * d // y_embedder
            + self.bottleneck_dim * p_in + d * self.bottleneck_dim + d // x_embedder
            + self.num_patches() * d; // pos_embed
        let fin = d + d * p_out + p_out + d * 2 * d + 2 * d;
        embed + self.depth * block + fin
    }
}
