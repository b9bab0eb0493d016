//! da: placeholder while the crate is built; see ARCHITECTURE.md.
