//! The `#[carina::step]` attribute.
//!
//! Use it through the `carina` crate (`#[carina::step]`), which re-exports it; the code it
//! generates calls `carina::__private`, so this crate is of no use on its own.
//!
//! # Public API
//! One attribute: [`macro@step`] (`name = "..."`, `items = <expr>`, `crate = path`).
//!
//! # What it generates
//! - A sync function not returning a `Result` keeps its body inline, preceded by a step guard
//!   (`carina::step`) that ends the step when the function returns, by any path, or unwinds.
//! - A sync function returning a `Result` (any type whose last path segment is `Result`, such as
//!   `io::Result<T>`) runs its body in a closure so that `return` and `?` are caught, then marks
//!   the step as an error when the value is an `Err`.
//! - An `async fn` stays an `async fn`; its body is wrapped in `carina`'s instrumented future,
//!   which records the step from the first poll to completion and counts energy only while the
//!   future is being polled. No guard is held across an `.await`.
//!
//! The signature (visibility, generics, `where` clauses, `unsafe`, `async`, ABI) and the
//! attributes of the function are kept as written.

#![deny(missing_docs)]

mod attr;
mod expand;

use proc_macro::TokenStream;

/// Records each call of the function as a step of the current run.
///
/// With no run installed a call costs one relaxed atomic load and records nothing, so libraries
/// can use it freely.
///
/// # Arguments
/// All optional, comma separated, in any order, each at most once:
///
/// - `name = "..."`: the step name. Default: `module::path::function` (`module_path!()`, `::`
///   and the function's name; for a method, the module of the `impl` block, not the type).
/// - `items = <expression>`: how many items the call processes. Evaluated once, before the
///   body, with the parameters in scope, and converted with `as u64`.
/// - `crate = path`: where the `carina` crate is, when it is renamed or re-exported (default
///   `::carina`).
///
/// # Supported functions
/// Free functions, methods (`self`, `&self`, `&mut self`, in inherent and trait `impl`s, or
/// default bodies in traits), generic functions, `unsafe fn`, `extern "ABI" fn` and `async fn`.
/// Not `const fn`, and not declarations without a body.
///
/// A function returning `...Result<_, _>` records `status: "error"` when it returns `Err` (also
/// through `?`); a panic records `status: "panicked"`.
///
/// # Examples
/// ```ignore
/// #[carina::step]
/// fn load(path: &std::path::Path) -> std::io::Result<String> {
///     std::fs::read_to_string(path)
/// }
///
/// #[carina::step(name = "solve", items = cases.len())]
/// fn solve(cases: &[f64]) -> f64 {
///     cases.iter().sum()
/// }
///
/// struct Store;
/// impl Store {
///     #[carina::step(name = "store::fetch")]
///     async fn fetch(&self, key: u64) -> Result<Vec<u8>, std::io::Error> {
///         Ok(key.to_le_bytes().to_vec())
///     }
/// }
/// ```
/// (These examples are compiled by the `carina` crate's tests, not here: this crate cannot
/// depend on `carina`.)
///
/// # Errors
/// Invalid arguments, or an item that is not a function with a body, are reported as compile
/// errors at the offending tokens.
#[proc_macro_attribute]
pub fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::step(args.into(), item.into()).into()
}
