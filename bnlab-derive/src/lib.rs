//! `#[derive(Module)]` for bnlab: a model is its fields and its forward.
//!
//! The derive writes `bnlab::nn::Module` for a struct with named fields, so that its state dict
//! carries PyTorch's names with no list kept by hand:
//! - a field of type `ParamId` (or `Option<ParamId>`) is a parameter named by the field;
//! - a field marked `#[module(buffer)]` (a `Tensor`) is a float buffer named by the field;
//! - a field marked `#[module(counter)]` (an `i64`) is an int64 scalar buffer named by the
//!   field (BatchNorm's `num_batches_tracked`);
//! - a field marked `#[module(skip)]` is left out (a size, a flag, a config);
//! - `when = method` next to `buffer` or `counter` keeps the entry only while `self.method()`
//!   is true, as PyTorch leaves out a buffer registered as `None` (BatchNorm's running
//!   statistics without `track_running_stats`);
//! - every other field is a child module named by the field, in declaration order (PyTorch's
//!   registration order when `__init__` assigns them in the same order).
//!
//! - `mapper = method` next to a `ParamId` field saves and loads it through the
//!   `Option<ParamMapper>` that `self.method()` gives (a layer that stores its parameter in
//!   another layout than PyTorch's: Linear's W^T);
//!
//! The entries come in field order, so a struct lists its parameters before its buffers, as
//! PyTorch's state dict does. On the struct, `#[module(type_name = path)]` names a function
//! `path(&self) -> &str` that gives the summaries' class name (`BatchNorm1d` or
//! `BatchNorm2d`); without it the type's own name is used. A struct without fields (`ReLU`) is
//! a module without children or state.
//!
//! The forward stays the user's own: `impl Forward for Model`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Type};

/// What a field of the struct is to the module tree.
enum Role {
    Child,
    Param { optional: bool },
    Buffer,
    Counter,
    Skip,
}

/// A field's `#[module(...)]` attribute: its role if marked, and its `when` condition.
#[derive(Default)]
struct Marks {
    role: Option<Role>,
    when: Option<syn::Path>,
    mapper: Option<syn::Path>,
}

/// Derive `bnlab::nn::Module` from a struct's fields (see the crate docs).
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Module)] needs a struct with named fields",
        ));
    };
    let no_fields = syn::punctuated::Punctuated::new();
    let fields = match &data.fields {
        Fields::Named(fields) => &fields.named,
        Fields::Unit => &no_fields,
        Fields::Unnamed(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "#[derive(Module)] needs named fields: they give the state dict's names",
            ))
        }
    };
    let (mut children, mut children_mut, mut state, mut state_mut) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // each `when` is asked once, before the first entry borrows a field (mutably, in
    // own_state_mut)
    let mut conditions = Vec::new();
    for field in fields {
        let ident = field.ident.as_ref().expect("named field");
        let name = ident.to_string();
        let marks = marks(field)?;
        let mapper = marks.mapper.clone();
        let (view, reference) = match role(field, marks.role) {
            Role::Skip => continue,
            Role::Child => {
                children.push(quote! {
                    (::std::string::String::from(#name), &self.#ident as &dyn ::bnlab::nn::Module)
                });
                children_mut.push(quote! {
                    (::std::string::String::from(#name), &mut self.#ident as &mut dyn ::bnlab::nn::Module)
                });
                continue;
            }
            Role::Param { optional: false } if mapper.is_some() => {
                let mapped = quote::format_ident!("mapper_{}", ident);
                conditions.push(quote! { let #mapped = self.#mapper(); });
                (
                    quote! {
                        s.push((#name, match #mapped {
                            Some(m) => ::bnlab::nn::StateView::MappedParam(self.#ident, m),
                            None => ::bnlab::nn::StateView::Param(self.#ident),
                        }));
                    },
                    quote! {
                        s.push((#name, match #mapped {
                            Some(m) => ::bnlab::nn::StateRef::MappedParam(self.#ident, m),
                            None => ::bnlab::nn::StateRef::Param(self.#ident),
                        }));
                    },
                )
            }
            _ if mapper.is_some() => {
                return Err(syn::Error::new_spanned(
                    field,
                    "`mapper = method` goes with a parameter (a `ParamId` field)",
                ))
            }
            Role::Param { optional: false } => (
                quote! { s.push((#name, ::bnlab::nn::StateView::Param(self.#ident))); },
                quote! { s.push((#name, ::bnlab::nn::StateRef::Param(self.#ident))); },
            ),
            Role::Param { optional: true } => (
                quote! {
                    if let Some(p) = self.#ident { s.push((#name, ::bnlab::nn::StateView::Param(p))); }
                },
                quote! {
                    if let Some(p) = self.#ident { s.push((#name, ::bnlab::nn::StateRef::Param(p))); }
                },
            ),
            Role::Buffer => (
                quote! { s.push((#name, ::bnlab::nn::StateView::Buffer(&self.#ident))); },
                quote! { s.push((#name, ::bnlab::nn::StateRef::Buffer(&mut self.#ident))); },
            ),
            Role::Counter => (
                quote! { s.push((#name, ::bnlab::nn::StateView::Counter(self.#ident))); },
                quote! { s.push((#name, ::bnlab::nn::StateRef::Counter(&mut self.#ident))); },
            ),
        };
        match marks.when {
            Some(when) => {
                let keep = quote::format_ident!("keep_{}", ident);
                conditions.push(quote! { let #keep = self.#when(); });
                state.push(quote! { if #keep { #view } });
                state_mut.push(quote! { if #keep { #reference } });
            }
            None => {
                state.push(view);
                state_mut.push(reference);
            }
        }
    }
    let type_name = struct_type_name(input)?.map(|path| {
        quote! {
            fn type_name(&self) -> &str {
                #path(self)
            }
        }
    });
    let ty = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::bnlab::nn::Module for #ty #ty_generics #where_clause {
            fn children(&self) -> ::std::vec::Vec<(::std::string::String, &dyn ::bnlab::nn::Module)> {
                ::std::vec![#(#children),*]
            }
            fn children_mut(&mut self) -> ::std::vec::Vec<(::std::string::String, &mut dyn ::bnlab::nn::Module)> {
                ::std::vec![#(#children_mut),*]
            }
            #[allow(unused_mut)]
            fn own_state(&self) -> ::std::vec::Vec<(&'static str, ::bnlab::nn::StateView<'_>)> {
                #(#conditions)*
                let mut s = ::std::vec::Vec::new();
                #(#state)*
                s
            }
            #[allow(unused_mut)]
            fn own_state_mut(&mut self) -> ::std::vec::Vec<(&'static str, ::bnlab::nn::StateRef<'_>)> {
                #(#conditions)*
                let mut s = ::std::vec::Vec::new();
                #(#state_mut)*
                s
            }
            #type_name
        }
    })
}

/// The struct's `#[module(type_name = path)]`, if it has one.
fn struct_type_name(input: &DeriveInput) -> syn::Result<Option<syn::Path>> {
    let mut path = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("type_name") {
                path = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected #[module(type_name = path)] on the struct"))
            }
        })?;
    }
    Ok(path)
}

/// The field's `#[module(...)]` marks.
fn marks(field: &syn::Field) -> syn::Result<Marks> {
    let mut marks = Marks::default();
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                marks.role = Some(Role::Skip);
            } else if meta.path.is_ident("buffer") {
                marks.role = Some(Role::Buffer);
            } else if meta.path.is_ident("counter") {
                marks.role = Some(Role::Counter);
            } else if meta.path.is_ident("when") {
                marks.when = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("mapper") {
                marks.mapper = Some(meta.value()?.parse()?);
            } else {
                return Err(meta.error(
                    "expected #[module(skip)], #[module(buffer)], #[module(counter)], when = method or mapper = method",
                ));
            }
            Ok(())
        })?;
    }
    if marks.when.is_some() && !matches!(marks.role, Some(Role::Buffer | Role::Counter)) {
        return Err(syn::Error::new_spanned(
            field,
            "`when = method` goes with #[module(buffer)] or #[module(counter)]",
        ));
    }
    if marks.mapper.is_some() && marks.role.is_some() {
        return Err(syn::Error::new_spanned(
            field,
            "`mapper = method` goes with a parameter (a `ParamId` field)",
        ));
    }
    Ok(marks)
}

/// The field's role: as marked, or else from its type.
fn role(field: &syn::Field, marked: Option<Role>) -> Role {
    if let Some(role) = marked {
        return role;
    }
    match last_segment(&field.ty) {
        Some(("ParamId", _)) => Role::Param { optional: false },
        Some(("Option", Some(inner))) if matches!(last_segment(inner), Some(("ParamId", _))) => {
            Role::Param { optional: true }
        }
        _ => Role::Child,
    }
}

/// The last path segment of a type's name, with its first generic argument if it has one:
/// `Option<ParamId>` gives ("Option", Some(ParamId)), `bnlab::ParamId` gives ("ParamId", None).
fn last_segment(ty: &Type) -> Option<(&'static str, Option<&Type>)> {
    let Type::Path(path) = ty else { return None };
    let seg = path.path.segments.last()?;
    let name: &'static str = match seg.ident.to_string().as_str() {
        "ParamId" => "ParamId",
        "Option" => "Option",
        _ => return Some(("", None)),
    };
    let inner = match &seg.arguments {
        syn::PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    };
    Some((name, inner))
}
