//! commit: being written.
