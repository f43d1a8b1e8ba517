//! The weights a model takes from its `VarBuilder`, recorded under their full state_dict names
//! as the constructors ask for them: so the list of a model's weights is its construction, named
//! once (checkpoints, dtype copies and shape checks all read it).

use candle_core::{DType, Device, Result, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{Init, VarBuilder};
use std::sync::{Arc, Mutex};

/// Every tensor taken so far, in order.
pub(super) type Log = Arc<Mutex<Vec<(String, Tensor)>>>;

struct Recorder<'a> {
    inner: VarBuilder<'a>,
    log: Log,
}

impl SimpleBackend for Recorder<'_> {
    fn get(&self, s: Shape, name: &str, h: Init, dtype: DType, _dev: &Device) -> Result<Tensor> {
        let t = self.inner.get_with_hints_dtype(s, name, h, dtype)?;
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.to_string(), t.clone()));
        Ok(t)
    }

    fn get_unchecked(&self, name: &str, dtype: DType, _dev: &Device) -> Result<Tensor> {
        self.inner.get_unchecked_dtype(name, dtype)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.inner.contains_tensor(name)
    }
}

/// A builder that behaves as `vb` (a root-level builder) and records what is taken from it.
pub(super) fn recording<'a>(vb: &VarBuilder<'a>) -> (VarBuilder<'a>, Log) {
    let log: Log = Arc::default();
    let rec = Recorder {
        inner: vb.clone(),
        log: log.clone(),
    };
    let out = VarBuilder::from_backend(Box::new(rec), vb.dtype(), vb.device().clone());
    (out, log)
}

/// The recorded tensors (the log's last holder takes them).
pub(super) fn take(log: Log) -> Vec<(String, Tensor)> {
    let mut guard = log.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *guard)
}
