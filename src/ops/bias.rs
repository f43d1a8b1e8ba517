//! `y = x + b` for a row bias: its gradient is a column sum, done in parallel row blocks
//! (candle's broadcast-gradient sum runs on one thread).

use super::cpu::{min_len, slice};
use super::fused_ok;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

struct BiasAdd;
struct ColSum;

/// x `[M, O]`, b `[O]` -> `[M, O]`.
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !fused_ok(&[x, b]) {
        return bias_add_reference(x, b);
    }
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd)
}

pub fn bias_add_reference(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.broadcast_add(b)
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, b) = (slice(s1, l1)?, slice(s2, l2)?);
        let o = b.len();
        let mut y = x.to_vec();
        y.par_chunks_mut(o).with_min_len(min_len()).for_each(|r| {
            for (v, bi) in r.iter_mut().zip(b) {
                *v += bi;
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _res: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let db = dy.contiguous()?.apply_op1_no_bwd(&ColSum)?;
        Ok((Some(dy.clone()), Some(db)))
    }
}

impl CustomOp1 for ColSum {
    fn name(&self) -> &'static str {
        "col-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = slice(s, l)?;
        let (m, o) = l.shape().dims2()?;
        let threads = rayon::current_num_threads().max(1);
        let rows_per = m.div_ceil(threads).max(1);
        let partials: Vec<Vec<f32>> = x
            .par_chunks(rows_per * o)
            .with_min_len(min_len())
            .map(|block| {
                let mut acc = vec![0f32; o];
                for r in block.chunks(o) {
                    for (a, v) in acc.iter_mut().zip(r) {
                        *a += v;
                    }
                }
                acc
            })
            .collect();
        let mut out = vec![0f32; o];
        for p in partials {
            for (a, v) in out.iter_mut().zip(p) {
                *a += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(o)))
    }
}
