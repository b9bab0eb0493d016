//! attest: being written.
