//! chain-lite: placeholder while the crate is built; see ARCHITECTURE.md.
