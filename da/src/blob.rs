//! blob: being written.
