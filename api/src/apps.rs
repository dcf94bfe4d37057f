//! Where the public edge serves a service, for `micro status` and `micro describe`.

pub use micro_reconciler::exposure::Apps;
