//! Step names: a Python `str` becomes a `&'static str` once per distinct name.
//!
//! The core keys steps by `&'static str` (its address is the call site's key, its text the
//! record's name). Python names are objects that come and go, so each distinct text is copied
//! once into a leaked `String` and kept for the life of the process: memory grows with the number
//! of *distinct* names, never with the number of steps. A program that builds names from data
//! (`f"user-{id}"`) leaks one string per id; `docs/PYTHON.md` says so.
//!
//! Lookup is on the hot path of `with carina.step("x")`, so it avoids the global table: each
//! thread keeps a cache from the string's Python hash (computed once per `str` object and cached
//! by CPython) to the canonical `str` object and its leaked text. A literal name is the same
//! object at every call, so the common case is one hash read, one map probe and a pointer
//! comparison; an equal string that is another object costs one content comparison more. Only
//! canonical objects (kept alive for ever by the global table) are cached by address, so an
//! address cannot be reused by another string while it is in a cache.

use pyo3::prelude::*;
use pyo3::types::PyString;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

/// A Python hash is already well mixed: the maps use it as is.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_isize` is used; fold anything else in rather than panic.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_isize(&mut self, i: isize) {
        self.0 = i as u64;
    }
}

type ByHash<V> = HashMap<isize, V, BuildHasherDefault<PassThrough>>;

/// One distinct name: the first `str` object seen with this text (never released, so its
/// address stays unique) and the leaked text.
struct Canonical {
    object: Py<PyString>,
    text: &'static str,
}

/// Every name interned in the process, by Python hash. Entries are never removed.
static GLOBAL: Mutex<Option<ByHash<Vec<Canonical>>>> = Mutex::new(None);

/// A thread's view of [`GLOBAL`]: a reference to the canonical object, its address and text.
struct Cached {
    object: Py<PyString>,
    address: usize,
    text: &'static str,
}

thread_local! {
    static CACHE: RefCell<ByHash<Vec<Cached>>> = RefCell::new(ByHash::default());
}

/// Counts the distinct names interned so far (for tests and the docs' memory note).
pub fn distinct_names() -> usize {
    let g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
    g.as_ref().map_or(0, |m| m.values().map(Vec::len).sum())
}

/// The `&'static str` for `name`, interning it on first sight.
///
/// Errors only when Python does (a `str` subclass whose `__hash__` or `__eq__` raises, or a
/// string with lone surrogates that cannot be UTF-8).
#[inline]
pub fn intern(name: &Bound<'_, PyString>) -> PyResult<&'static str> {
    Ok(intern_canonical(name)?.0)
}

/// [`intern`], and whether `name` is the name's canonical object: the one kept alive for ever,
/// whose address therefore identifies the name for the life of the process (callers may key
/// caches by it).
#[inline]
pub fn intern_canonical(name: &Bound<'_, PyString>) -> PyResult<(&'static str, bool)> {
    let hash = name.hash()?;
    let address = name.as_ptr() as usize;
    let hit = CACHE.with(|c| {
        let c = c.try_borrow().ok()?;
        let entries = c.get(&hash)?;
        entries
            .iter()
            .find(|e| e.address == address)
            .map(|e| e.text)
    });
    match hit {
        Some(text) => Ok((text, true)),
        None => {
            let text = intern_slow(name, hash)?;
            let canonical = CACHE.with(|c| {
                c.try_borrow().ok().is_some_and(|c| {
                    c.get(&hash)
                        .is_some_and(|v| v.iter().any(|e| e.address == address))
                })
            });
            Ok((text, canonical))
        }
    }
}

/// The text of a `str` (under the stable ABI of Python 3.9 this goes through a UTF-8 `bytes`
/// object; only on first sight of an object, so off the hot path).
fn text_of(name: &Bound<'_, PyString>) -> PyResult<String> {
    Ok(name.to_cow()?.into_owned())
}

#[cold]
#[inline(never)]
fn intern_slow(name: &Bound<'_, PyString>, hash: isize) -> PyResult<&'static str> {
    let py = name.py();
    // Equal text held by another object: compare with this thread's canonical objects first.
    let candidates: Vec<(Py<PyString>, &'static str)> = CACHE.with(|c| {
        c.try_borrow()
            .ok()
            .and_then(|c| {
                c.get(&hash)
                    .map(|v| v.iter().map(|e| (e.object.clone_ref(py), e.text)).collect())
            })
            .unwrap_or_default()
    });
    for (object, text) in &candidates {
        if object.bind(py).as_any().eq(name)? {
            return Ok(text);
        }
    }
    let text = text_of(name)?;
    let (object, text) = {
        let mut g = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        let map = g.get_or_insert_with(ByHash::default);
        let entries = map.entry(hash).or_default();
        match entries.iter().find(|e| e.text == text) {
            Some(e) => (e.object.clone_ref(py), e.text),
            None => {
                let leaked: &'static str = Box::leak(text.into_boxed_str());
                let object = name.clone().unbind();
                entries.push(Canonical {
                    object: object.clone_ref(py),
                    text: leaked,
                });
                (object, leaked)
            }
        }
    };
    CACHE.with(|c| {
        if let Ok(mut c) = c.try_borrow_mut() {
            let v = c.entry(hash).or_default();
            let address = object.as_ptr() as usize;
            if !v.iter().any(|e| e.address == address) {
                v.push(Cached {
                    object,
                    address,
                    text,
                });
            }
        }
    });
    Ok(text)
}
