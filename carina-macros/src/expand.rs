//! Code generation for `#[carina::step]`.

use crate::attr::StepArgs;
use proc_macro2::{Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    AttrStyle, Attribute, GenericArgument, Ident, Item, ItemFn, PathArguments, ReturnType,
    TraitItemFn, Type, TypeParamBound,
};

/// Expands `#[step(args)] item`. Never panics: problems become `compile_error!`s, emitted after
/// the item left as it was (so the rest of the crate, and IDEs, still see the function).
pub(crate) fn step(args: TokenStream, item: TokenStream) -> TokenStream {
    let args = match syn::parse2::<StepArgs>(args) {
        Ok(args) => args,
        Err(err) => return with_error(item, err),
    };
    match parse_function(item.clone()) {
        Ok(func) => expand(args, func),
        Err(err) => with_error(item, err),
    }
}

fn with_error(item: TokenStream, err: syn::Error) -> TokenStream {
    let err = err.into_compile_error();
    quote!(#item #err)
}

/// Parses the item as a function with a body, or explains why it is not one.
fn parse_function(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<ItemFn>(item.clone()) {
        Ok(func) => {
            if let Some(constness) = &func.sig.constness {
                return Err(syn::Error::new(
                    constness.span,
                    "#[carina::step] cannot be used on a `const fn`: recording a step is not a \
                     const operation",
                ));
            }
            Ok(func)
        }
        Err(err) => Err(not_a_function(item).unwrap_or(err)),
    }
}

/// A better error than "expected `fn`" when the item is clearly something else.
fn not_a_function(item: TokenStream) -> Option<syn::Error> {
    if let Ok(func) = syn::parse2::<TraitItemFn>(item.clone()) {
        if func.default.is_none() {
            let (fn_token, ident) = (func.sig.fn_token, func.sig.ident);
            return Some(syn::Error::new_spanned(
                quote!(#fn_token #ident),
                "#[carina::step] needs a function body; put it on the implementations instead",
            ));
        }
        return None;
    }
    let item = syn::parse2::<Item>(item).ok()?;
    let (what, tokens) = match &item {
        Item::Struct(i) => ("a struct", spanned(&i.struct_token, &i.ident)),
        Item::Enum(i) => ("an enum", spanned(&i.enum_token, &i.ident)),
        Item::Union(i) => ("a union", spanned(&i.union_token, &i.ident)),
        Item::Trait(i) => ("a trait", spanned(&i.trait_token, &i.ident)),
        Item::TraitAlias(i) => ("a trait alias", spanned(&i.trait_token, &i.ident)),
        Item::Impl(i) => ("an impl block", spanned(&i.impl_token, &i.self_ty)),
        Item::Mod(i) => ("a module", spanned(&i.mod_token, &i.ident)),
        Item::Const(i) => ("a constant", spanned(&i.const_token, &i.ident)),
        Item::Static(i) => ("a static", spanned(&i.static_token, &i.ident)),
        Item::Type(i) => ("a type alias", spanned(&i.type_token, &i.ident)),
        Item::Use(i) => ("a `use` declaration", spanned(&i.use_token, &i.tree)),
        Item::ExternCrate(i) => ("an `extern crate`", spanned(&i.extern_token, &i.ident)),
        Item::ForeignMod(i) => ("an `extern` block", i.abi.to_token_stream()),
        Item::Macro(i) => ("a macro invocation", i.mac.path.to_token_stream()),
        _ => ("this item", without_attrs(&item)),
    };
    Some(syn::Error::new_spanned(
        tokens,
        format!("#[carina::step] can only be used on functions, not on {what}"),
    ))
}

fn spanned(a: &impl ToTokens, b: &impl ToTokens) -> TokenStream {
    quote!(#a #b)
}

fn without_attrs(item: &Item) -> TokenStream {
    let mut tokens = item.to_token_stream().into_iter().peekable();
    // Skip `#[...]` pairs so the error points at the item itself.
    let mut rest = TokenStream::new();
    while let Some(tt) = tokens.next() {
        if matches!(&tt, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#')
            && matches!(tokens.peek(), Some(proc_macro2::TokenTree::Group(_)))
        {
            tokens.next();
            continue;
        }
        rest.extend([tt]);
        rest.extend(tokens);
        break;
    }
    rest
}

/// What the generated code needs to know about the function's return type.
struct Output<'a> {
    /// The declared return type, if any.
    ty: Option<&'a Type>,
    /// Whether the last path segment of the return type is `Result`.
    is_result: bool,
    /// Whether the return type can be written in a type annotation (it has no `impl Trait`).
    nameable: bool,
}

impl<'a> Output<'a> {
    fn of(output: &'a ReturnType) -> Self {
        match output {
            ReturnType::Default => Output {
                ty: None,
                is_result: false,
                nameable: true,
            },
            ReturnType::Type(_, ty) => Output {
                ty: Some(ty),
                is_result: is_result(ty),
                nameable: !contains_impl_trait(ty),
            },
        }
    }

    /// The return type, where it may be written in an annotation.
    fn annotation(&self) -> Option<&'a Type> {
        self.ty.filter(|_| self.nameable)
    }
}

fn expand(args: StepArgs, func: ItemFn) -> TokenStream {
    let ItemFn {
        attrs,
        vis,
        modifiers,
        sig,
        block,
    } = func;
    // `default fn` (specialization) keeps its keyword.
    let defaultness = modifiers.defaultness;
    let (outer, inner): (Vec<Attribute>, Vec<Attribute>) = attrs
        .into_iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer));

    let krate = match &args.krate {
        Some(path) => path.to_token_stream(),
        None => quote!(::carina),
    };
    let name = match &args.name {
        Some(lit) => lit.to_token_stream(),
        None => {
            let ident = sig.ident.unraw().to_string();
            quote!(::core::concat!(::core::module_path!(), "::", #ident))
        }
    };
    // `as u64` is spanned on the expression so a non-numeric one is reported there.
    let items = args
        .items
        .as_ref()
        .map(|expr| quote_spanned!(expr.span()=> (#expr) as u64));
    let output = Output::of(&sig.output);
    let stmts = &block.stmts;

    let gen_ = Generated {
        krate: &krate,
        name: &name,
        gpu: args.gpu.is_some(),
        items: items.as_ref(),
        output: &output,
        stmts: quote!(#(#stmts)*),
    };
    let body = if sig.asyncness.is_some() {
        gen_.async_body()
    } else if output.is_result {
        gen_.result_body()
    } else {
        gen_.plain_body()
    };

    quote! {
        #(#outer)*
        #vis #defaultness #sig {
            #(#inner)*
            #body
        }
    }
}

/// On the `let` that converts `items = <expr>` with `as u64`: the conversion is documented and
/// wanted, whatever the expression's type.
fn items_allow() -> TokenStream {
    quote! {
        #[allow(
            clippy::unnecessary_cast,
            clippy::cast_possible_truncation,
            clippy::cast_possible_wrap,
            clippy::cast_precision_loss,
            clippy::cast_sign_loss,
            clippy::cast_lossless
        )]
    }
}

/// The pieces the three kinds of generated body share.
struct Generated<'a> {
    krate: &'a TokenStream,
    name: &'a TokenStream,
    gpu: bool,
    items: Option<&'a TokenStream>,
    output: &'a Output<'a>,
    stmts: TokenStream,
}

/// A local that user code cannot name (mixed-site hygiene, like `macro_rules!` locals).
fn local(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

impl Generated<'_> {
    /// `let mut guard = enter(name); guard.set_items(..);`
    fn enter(&self, guard: &Ident, needs_mut: bool) -> TokenStream {
        let Self {
            krate, name, items, ..
        } = self;
        let mutability = (needs_mut || items.is_some()).then(|| quote!(mut));
        let set_items = items.map(|items| {
            let items_local = local("__carina_items");
            let allow = items_allow();
            quote! {
                #allow
                let #items_local: u64 = #items;
                #guard.set_items(#items_local);
            }
        });
        let enter = if self.gpu {
            quote!(gpu_enter)
        } else {
            quote!(enter)
        };
        quote! {
            let #mutability #guard = #krate::__private::#enter(#name);
            #set_items
        }
    }

    /// The classifier for the function's return value, spanned on the return type so that a
    /// type called `Result` that is not `core::result::Result` is reported there.
    fn classifier(&self) -> TokenStream {
        let krate = self.krate;
        match self.output.ty {
            Some(ty) if self.output.is_result => {
                quote_spanned!(ty.span()=> #krate::__private::is_err)
            }
            _ => quote!(#krate::__private::never_err),
        }
    }

    /// A span at the return type (or the call site), for code whose errors concern it.
    fn output_span(&self) -> Span {
        self.output.ty.map_or_else(Span::call_site, Spanned::span)
    }

    /// Sync function not returning a `Result`: the body stays inline, so `return` keeps its
    /// meaning, and the guard ends the step when it is dropped (also while unwinding).
    fn plain_body(&self) -> TokenStream {
        let guard = local("__carina_step");
        let enter = self.enter(&guard, false);
        let stmts = &self.stmts;
        quote! {
            #enter
            #stmts
        }
    }

    /// Sync function returning a `Result`: the body runs in a closure so that `return` and `?`
    /// produce the value classified afterwards.
    ///
    /// The closure is called through a function taking `FnOnce`, which makes it an `FnOnce`
    /// closure: an immediately called closure would be inferred `FnMut`, and then a body such as
    /// `Ok(&mut self.field)` could not return a borrow of what it captured.
    fn result_body(&self) -> TokenStream {
        let guard = local("__carina_step");
        // Spanned on the return type: if it is not `core::result::Result`, the mismatch in the
        // classifier's argument is reported there. (No need for hygiene: the body is in the
        // initializer of this binding, where it is not in scope.)
        let span = self.output_span();
        let ret = Ident::new("__carina_ret", span);
        let enter = self.enter(&guard, true);
        let stmts = &self.stmts;
        let annotation = self.output.annotation().map(|ty| quote!(-> #ty));
        let classify = self.classifier();
        let borrow_ret = quote_spanned!(span=> &#ret);
        quote! {
            #[inline]
            fn __carina_call_once<R, F: ::core::ops::FnOnce() -> R>(f: F) -> R {
                f()
            }
            #enter
            let #ret = __carina_call_once(move || #annotation { #stmts });
            if #classify(#borrow_ret) {
                #guard.mark_error();
            }
            #ret
        }
    }

    /// `async fn`: the body becomes an `async move` block wrapped in `instrument`, which opens
    /// and closes the step around every poll (no guard is held across `.await`).
    fn async_body(&self) -> TokenStream {
        let Self {
            krate, name, items, ..
        } = self;
        let items_local = local("__carina_items");
        let items = match items {
            Some(items) => {
                let allow = items_allow();
                quote!(#allow let #items_local: u64 = #items;)
            }
            None => quote!(let #items_local: u64 = 0;),
        };
        // Gives the async block the function's return type, so that `?` in the body knows
        // which error type to convert into.
        let pin_output = self.output.annotation().map(|ty| {
            let fake = local("__carina_fake");
            quote! {
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::needless_return
                )]
                if false {
                    let #fake: #ty = loop {};
                    return #fake;
                }
            }
        });
        let classify = self.classifier();
        let stmts = &self.stmts;
        let gpu = self.gpu.then(|| quote!(.gpu()));
        quote! {
            #items
            #krate::__private::instrument(#name, #items_local, #classify, async move {
                #pin_output
                #stmts
            })
            #gpu
            .await
        }
    }
}

/// Whether the type's last path segment is `Result` (`Result<T, E>`, `io::Result<T>`, ...).
fn is_result(ty: &Type) -> bool {
    match ty {
        Type::Group(group) => is_result(&group.elem),
        Type::Paren(paren) => is_result(&paren.elem),
        Type::Path(path) if path.qself.is_none() => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Result"),
        _ => false,
    }
}

/// Whether `impl Trait` appears anywhere in the type (then it cannot be written in a closure's
/// return type or a `let` annotation).
fn contains_impl_trait(ty: &Type) -> bool {
    match ty {
        Type::ImplTrait(_) => true,
        Type::Array(t) => contains_impl_trait(&t.elem),
        Type::Group(t) => contains_impl_trait(&t.elem),
        Type::Paren(t) => contains_impl_trait(&t.elem),
        Type::Ptr(t) => contains_impl_trait(&t.elem),
        Type::Reference(t) => contains_impl_trait(&t.elem),
        Type::Slice(t) => contains_impl_trait(&t.elem),
        Type::Tuple(t) => t.elems.iter().any(contains_impl_trait),
        Type::Path(t) => {
            t.qself
                .as_ref()
                .is_some_and(|qself| contains_impl_trait(&qself.ty))
                || path_contains_impl_trait(&t.path)
        }
        Type::TraitObject(t) => t.bounds.iter().any(bound_contains_impl_trait),
        Type::FnPtr(t) => {
            t.inputs.iter().any(|arg| contains_impl_trait(&arg.ty))
                || matches!(&t.output, ReturnType::Type(_, ty) if contains_impl_trait(ty))
        }
        _ => false,
    }
}

fn bound_contains_impl_trait(bound: &TypeParamBound) -> bool {
    match bound {
        TypeParamBound::Trait(t) => path_contains_impl_trait(&t.path),
        _ => false,
    }
}

fn path_contains_impl_trait(path: &syn::Path) -> bool {
    path.segments
        .iter()
        .any(|segment| match &segment.arguments {
            PathArguments::None => false,
            PathArguments::AngleBracketed(args) => args.args.iter().any(|arg| match arg {
                GenericArgument::Type(ty) => contains_impl_trait(ty),
                GenericArgument::AssocType(assoc) => contains_impl_trait(&assoc.ty),
                GenericArgument::Constraint(c) => c.bounds.iter().any(bound_contains_impl_trait),
                _ => false,
            }),
            PathArguments::Parenthesized(args) => {
                args.inputs.iter().any(|arg| contains_impl_trait(&arg.ty))
                    || matches!(&args.output, ReturnType::Type(_, ty) if contains_impl_trait(ty))
            }
        })
}

#[cfg(test)]
mod tests {
    use super::{contains_impl_trait, is_result, step};
    use quote::quote;
    use syn::Type;

    fn ty(s: &str) -> Type {
        syn::parse_str(s).unwrap()
    }

    #[test]
    fn result_types() {
        for yes in [
            "Result<u8, E>",
            "io::Result<()>",
            "::anyhow::Result<T>",
            "(Result<u8, E>)",
        ] {
            assert!(is_result(&ty(yes)), "{yes}");
        }
        for no in [
            "u8",
            "Option<Result<u8, E>>",
            "&Result<u8, E>",
            "ResultSet",
            "()",
        ] {
            assert!(!is_result(&ty(no)), "{no}");
        }
    }

    #[test]
    fn impl_trait_detection() {
        for yes in [
            "impl Display",
            "Result<impl Iterator<Item = u8>, E>",
            "Box<dyn Iterator<Item = impl Sized>>",
            "(u8, [impl Sized; 2])",
            "&'a mut impl Sized",
        ] {
            assert!(contains_impl_trait(&ty(yes)), "{yes}");
        }
        for no in [
            "Result<Vec<u8>, Box<dyn Error>>",
            "&'a str",
            "fn(u8) -> u8",
            "<T as Trait>::Out",
        ] {
            assert!(!contains_impl_trait(&ty(no)), "{no}");
        }
    }

    #[test]
    fn errors_keep_the_item() {
        let out = step(
            quote!(nope),
            quote!(
                fn f() {}
            ),
        )
        .to_string();
        assert!(out.starts_with("fn f () { }"), "{out}");
        assert!(out.contains("compile_error"), "{out}");

        let out = step(
            quote!(),
            quote!(
                struct S;
            ),
        )
        .to_string();
        assert!(out.starts_with("struct S ;"), "{out}");
        assert!(
            out.contains("can only be used on functions, not on a struct"),
            "{out}"
        );
    }

    #[test]
    fn expansion_kinds() {
        let plain = step(
            quote!(),
            quote!(
                fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(plain.contains(":: carina :: __private :: enter"), "{plain}");
        assert!(!plain.contains("mark_error"), "{plain}");

        let result = step(
            quote!(crate = my::c, items = 3),
            quote!(
                fn f() -> io::Result<u8> {
                    Ok(1)
                }
            ),
        )
        .to_string();
        assert!(
            result.contains("my :: c :: __private :: is_err"),
            "{result}"
        );
        assert!(result.contains("set_items"), "{result}");
        assert!(!result.contains(":: carina ::"), "{result}");

        let future = step(
            quote!(),
            quote!(
                async fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(future.starts_with("async fn f () -> u8"), "{future}");
        assert!(
            future.contains(":: carina :: __private :: instrument"),
            "{future}"
        );
        assert!(future.contains("never_err"), "{future}");
        assert!(future.contains(". await"), "{future}");
    }
}
