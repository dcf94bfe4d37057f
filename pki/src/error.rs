/// What can go wrong with certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
}

impl PkiError {
    pub(crate) fn invalid(what: impl Into<String>, why: impl std::fmt::Display) -> Self {
        PkiError::Invalid {
            what: what.into(),
            why: why.to_string(),
        }
    }
}
