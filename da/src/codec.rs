//! codec: being written.
