//! kzg: being written.
