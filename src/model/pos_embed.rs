//! Fixed 2D sin-cos position table: the pitch (height) half first, then the time half.

use candle_core::{Device, Result, Tensor};

fn sincos_1d(dim: usize, size: usize) -> Vec<Vec<f32>> {
    let half = dim / 2;
    let omega: Vec<f32> = (0..half)
        .map(|i| 1.0 / 10000f32.powf(i as f32 / half as f32))
        .collect();
    (0..size)
        .map(|p| {
            let out: Vec<f32> = omega.iter().map(|o| p as f32 * o).collect();
            out.iter()
                .map(|v| v.sin())
                .chain(out.iter().map(|v| v.cos()))
                .collect()
        })
        .collect()
}

/// `get_2d_sincos_pos_embed(embed_dim, grid_h, grid_w)`: `[1, grid_h * grid_w, embed_dim]`.
pub fn sincos_2d(embed_dim: usize, grid_h: usize, grid_w: usize, dev: &Device) -> Result<Tensor> {
    let half = embed_dim / 2;
    let eh = sincos_1d(half, grid_h);
    let ew = sincos_1d(half, grid_w);
    let mut data = Vec::with_capacity(grid_h * grid_w * embed_dim);
    for row in &eh {
        for col in &ew {
            data.extend_from_slice(row);
            data.extend_from_slice(col);
        }
    }
    Tensor::from_vec(data, (1, grid_h * grid_w, embed_dim), dev)
}
