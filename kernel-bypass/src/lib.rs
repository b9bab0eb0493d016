//! kernel-bypass: placeholder while the crate is built; see ARCHITECTURE.md.
