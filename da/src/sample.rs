//! sample: being written.
