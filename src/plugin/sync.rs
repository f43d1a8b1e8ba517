//! Locking that survives a panicked holder: the plugin's threads keep going with the data.

use std::sync::{Mutex, MutexGuard};

/// Lock a mutex, taking the data even if another thread panicked while holding it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
