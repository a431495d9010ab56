//! Parsing of the `#[carina::step(...)]` arguments.

use proc_macro2::TokenStream;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, Ident, LitStr, Path, Token};

/// The arguments of one `#[carina::step(...)]` attribute, each optional and given at most once.
#[derive(Default)]
pub(crate) struct StepArgs {
    /// `name = "..."`: the step name (default: `module::path::function`).
    pub(crate) name: Option<LitStr>,
    /// `items = <expr>`: the number of items, evaluated before the body.
    pub(crate) items: Option<Expr>,
    /// `crate = path`: where the `carina` facade crate is (default `::carina`).
    pub(crate) krate: Option<Path>,
    /// `gpu`: a GPU step (its GPU energy follows GPU-step overlap, not CPU time).
    pub(crate) gpu: Option<Ident>,
}

/// The argument names, in the order the error messages list them.
const KNOWN: &str = "`name`, `items`, `gpu` or `crate`";

/// Which argument a key names.
#[derive(Clone, Copy)]
enum Key {
    Name,
    Items,
    Gpu,
    Crate,
}

impl Key {
    fn from_ident(ident: &Ident) -> Option<Self> {
        match ident.unraw().to_string().as_str() {
            "name" => Some(Self::Name),
            "items" => Some(Self::Items),
            "gpu" => Some(Self::Gpu),
            "crate" => Some(Self::Crate),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Name => "name",
            Self::Items => "items",
            Self::Gpu => "gpu",
            Self::Crate => "crate",
        }
    }

    /// What a complete argument of this kind looks like, for error messages.
    fn example(self) -> &'static str {
        match self {
            Self::Name => "name = \"...\"",
            Self::Items => "items = <expression>",
            Self::Gpu => "gpu",
            Self::Crate => "crate = path::to::carina",
        }
    }
}

impl Parse for StepArgs {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = StepArgs::default();
        while !input.is_empty() {
            // `crate` is a keyword, so the key is read as "any identifier".
            if !input.peek(Ident::peek_any) {
                return Err(input.error(format!("expected an argument: {KNOWN}")));
            }
            let ident = input.call(Ident::parse_any)?;
            let Some(key) = Key::from_ident(&ident) else {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown argument `{ident}`; expected {KNOWN}"),
                ));
            };
            if args.is_set(key) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("duplicate argument `{}`", key.as_str()),
                ));
            }
            if let Key::Gpu = key {
                // A flag: `gpu` alone.
                if input.peek(Token![=]) {
                    return Err(syn::Error::new(
                        ident.span(),
                        "`gpu` takes no value; write `gpu` alone",
                    ));
                }
                args.gpu = Some(ident);
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            if !input.peek(Token![=]) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "missing value for `{}`; expected `{}`",
                        key.as_str(),
                        key.example()
                    ),
                ));
            }
            let eq: Token![=] = input.parse()?;
            if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(
                    TokenStream::from_iter([ident.to_token_stream(), eq.to_token_stream()]),
                    format!(
                        "missing value for `{}`; expected `{}`",
                        key.as_str(),
                        key.example()
                    ),
                ));
            }
            match key {
                Key::Name => args.name = Some(parse_name(input)?),
                Key::Items => args.items = Some(input.parse()?),
                Key::Crate => args.krate = Some(parse_crate(input)?),
                Key::Gpu => {} // a flag, taken above
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

impl StepArgs {
    fn is_set(&self, key: Key) -> bool {
        match key {
            Key::Name => self.name.is_some(),
            Key::Items => self.items.is_some(),
            Key::Gpu => self.gpu.is_some(),
            Key::Crate => self.krate.is_some(),
        }
    }
}

/// The value of `name = ...`: a non-empty string literal.
fn parse_name(input: ParseStream) -> syn::Result<LitStr> {
    if !input.peek(LitStr) {
        return Err(input.error("expected a string literal: `name = \"...\"`"));
    }
    let lit: LitStr = input.parse()?;
    if lit.value().is_empty() {
        return Err(syn::Error::new(
            lit.span(),
            "the step name must not be empty",
        ));
    }
    Ok(lit)
}

/// The value of `crate = ...`: a path without generic arguments.
fn parse_crate(input: ParseStream) -> syn::Result<Path> {
    input.call(Path::parse_mod_style).map_err(|err| {
        syn::Error::new(
            err.span(),
            "expected a path to the `carina` crate: `crate = path::to::carina`",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::StepArgs;
    use quote::ToTokens;

    fn parse(args: &str) -> syn::Result<StepArgs> {
        syn::parse_str(args)
    }

    fn error(args: &str) -> String {
        match parse(args) {
            Ok(_) => panic!("`{args}` parsed"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn empty() {
        let args = parse("").unwrap();
        assert!(args.name.is_none() && args.items.is_none() && args.krate.is_none());
    }

    #[test]
    fn all_arguments_in_any_order() {
        let args = parse(r#"items = a.len() + 1, crate = ::my::carina, name = "x","#).unwrap();
        assert_eq!(args.name.unwrap().value(), "x");
        let items = args.items.unwrap().to_token_stream().to_string();
        assert_eq!(items, "a . len () + 1");
        let krate = args.krate.unwrap().to_token_stream().to_string();
        assert_eq!(krate, ":: my :: carina");
        assert!(parse("crate = crate::inner").is_ok());
        assert!(parse("gpu").unwrap().gpu.is_some());
        let args = parse(r#"name = "x", gpu, items = 3"#).unwrap();
        assert!(args.gpu.is_some() && args.items.is_some());
    }

    #[test]
    fn gpu_is_a_flag() {
        assert_eq!(
            error("gpu = true"),
            "`gpu` takes no value; write `gpu` alone"
        );
        assert_eq!(error("gpu, gpu"), "duplicate argument `gpu`");
        assert_eq!(error("gpu items = 1"), "expected `,`");
    }

    #[test]
    fn errors() {
        assert_eq!(
            error("level = 1"),
            "unknown argument `level`; expected `name`, `items`, `gpu` or `crate`"
        );
        assert_eq!(
            error(r#"name = "a", name = "b""#),
            "duplicate argument `name`"
        );
        assert_eq!(error("items = 1, items = 2"), "duplicate argument `items`");
        assert_eq!(
            error("name = 5"),
            "expected a string literal: `name = \"...\"`"
        );
        assert_eq!(error(r#"name = """#), "the step name must not be empty");
        for missing in ["items", "items =", "items = ,", "items, name = \"a\""] {
            assert_eq!(
                error(missing),
                "missing value for `items`; expected `items = <expression>`",
                "{missing}"
            );
        }
        assert_eq!(
            error("crate = 5"),
            "expected a path to the `carina` crate: `crate = path::to::carina`"
        );
        assert_eq!(error(r#"name = "a" items = 1"#), "expected `,`");
        assert_eq!(
            error(r#""a""#),
            "expected an argument: `name`, `items`, `gpu` or `crate`"
        );
    }
}
