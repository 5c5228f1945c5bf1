//! The README's library section is a program that compiles as written: it is
//! examples/bn_model.rs word for word, and `cargo test` (and clippy --all-targets) compile the
//! example.

#[test]
fn the_readme_library_program_is_the_compiled_example() {
    let readme = include_str!("../README.md");
    let example = include_str!("../examples/bn_model.rs");
    let section = &readme[readme.find("## The library").expect("a library section")..];
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("a rust block in the library section");
    assert_eq!(block.trim_end(), example.trim_end());
}
