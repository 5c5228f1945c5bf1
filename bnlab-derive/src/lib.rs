//! `#[derive(Module)]` for bnlab: a model is its fields and its forward.
//!
//! The derive writes `bnlab::nn::Module` for a struct with named fields, so that its state dict
//! carries PyTorch's names with no list kept by hand:
//! - a field of type `ParamId` (or `Option<ParamId>`) is a parameter named by the field;
//! - a field marked `#[module(buffer)]` (a `Tensor`) is a float buffer named by the field;
//! - a field marked `#[module(skip)]` is left out (a size, a flag, a config);
//! - every other field is a child module named by the field, in declaration order (PyTorch's
//!   registration order when `__init__` assigns them in the same order).
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
    Skip,
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
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "#[derive(Module)] needs named fields: they give the state dict's names",
        ));
    };
    let (mut children, mut children_mut, mut state, mut state_mut) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for field in &fields.named {
        let ident = field.ident.as_ref().expect("named field");
        let name = ident.to_string();
        match role(field)? {
            Role::Skip => {}
            Role::Child => {
                children.push(quote! {
                    (::std::string::String::from(#name), &self.#ident as &dyn ::bnlab::nn::Module)
                });
                children_mut.push(quote! {
                    (::std::string::String::from(#name), &mut self.#ident as &mut dyn ::bnlab::nn::Module)
                });
            }
            Role::Param { optional: false } => {
                state.push(quote! { s.push((#name, ::bnlab::nn::StateView::Param(self.#ident))); });
                state_mut
                    .push(quote! { s.push((#name, ::bnlab::nn::StateRef::Param(self.#ident))); });
            }
            Role::Param { optional: true } => {
                state.push(quote! {
                    if let Some(p) = self.#ident { s.push((#name, ::bnlab::nn::StateView::Param(p))); }
                });
                state_mut.push(quote! {
                    if let Some(p) = self.#ident { s.push((#name, ::bnlab::nn::StateRef::Param(p))); }
                });
            }
            Role::Buffer => {
                state.push(
                    quote! { s.push((#name, ::bnlab::nn::StateView::Buffer(&self.#ident))); },
                );
                state_mut.push(
                    quote! { s.push((#name, ::bnlab::nn::StateRef::Buffer(&mut self.#ident))); },
                );
            }
        }
    }
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
                let mut s = ::std::vec::Vec::new();
                #(#state)*
                s
            }
            #[allow(unused_mut)]
            fn own_state_mut(&mut self) -> ::std::vec::Vec<(&'static str, ::bnlab::nn::StateRef<'_>)> {
                let mut s = ::std::vec::Vec::new();
                #(#state_mut)*
                s
            }
        }
    })
}

/// The field's role, from its `#[module(...)]` attribute or else its type.
fn role(field: &syn::Field) -> syn::Result<Role> {
    let mut marked = None;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                marked = Some(Role::Skip);
                Ok(())
            } else if meta.path.is_ident("buffer") {
                marked = Some(Role::Buffer);
                Ok(())
            } else {
                Err(meta.error("expected #[module(skip)] or #[module(buffer)]"))
            }
        })?;
    }
    if let Some(role) = marked {
        return Ok(role);
    }
    Ok(match last_segment(&field.ty) {
        Some(("ParamId", _)) => Role::Param { optional: false },
        Some(("Option", Some(inner))) if matches!(last_segment(inner), Some(("ParamId", _))) => {
            Role::Param { optional: true }
        }
        _ => Role::Child,
    })
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
