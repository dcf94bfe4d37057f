//! Pinning a service from another repo: its own `service.yaml`, read at the resolved
//! commit, with a `source` block appended that names that exact commit (and what `micro
//! update` follows), so every deployed revision is reproducible.

use crate::spec::{self, SpecError};

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("its service.yaml does not validate: {0}")]
    Invalid(#[from] SpecError),
    #[error("its service.yaml has a `source` of its own")]
    HasSource,
    #[error("its service.yaml is not UTF-8")]
    NotUtf8,
}

/// Where the pinned code comes from.
pub struct Pin<'a> {
    pub url: &'a str,
    /// 40 hex digits.
    pub commit: &'a str,
    pub track: Option<&'a str>,
    pub path: Option<&'a str>,
}

/// `spec` (the source repo's `service.yaml` for service `name`) with the pin appended;
/// validated before and after.
pub fn pin_spec(name: &str, spec_bytes: &[u8], pin: &Pin<'_>) -> Result<Vec<u8>, PinError> {
    let parsed = spec::parse_service(name, spec_bytes)?;
    if parsed.source.is_some() {
        return Err(PinError::HasSource);
    }
    let text = std::str::from_utf8(spec_bytes).map_err(|_| PinError::NotUtf8)?;
    // JSON strings are YAML double-quoted scalars: any URL or path stays one value.
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_default();
    let mut out = text.trim_end().to_owned();
    out.push_str(&format!(
        "\n\n# Pinned by micro. `micro update {name}` moves `ref` to the newest commit of `track`.\nsource:\n"
    ));
    out.push_str(&format!(
        "  git: {}\n  ref: {}\n",
        quote(pin.url),
        pin.commit
    ));
    if let Some(track) = pin.track {
        out.push_str(&format!("  track: {}\n", quote(track)));
    }
    if let Some(path) = pin.path {
        out.push_str(&format!("  path: {}\n", quote(path)));
    }
    spec::parse_service(name, out.as_bytes())?;
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_names_the_commit_and_keeps_the_spec() {
        let commit = "0123456789abcdef0123456789abcdef01234567";
        let pinned = pin_spec(
            "greeter",
            b"run: python3 main.py # hi\n",
            &Pin {
                url: "https://h/acme/greeter.git",
                commit,
                track: Some("v1"),
                path: Some("svc"),
            },
        )
        .unwrap();
        let parsed = spec::parse_service("greeter", &pinned).unwrap();
        let source = parsed.source.unwrap();
        assert_eq!(source.reference.value, commit);
        assert_eq!(source.track.as_deref(), Some("v1"));
        assert!(
            String::from_utf8(pinned)
                .unwrap()
                .starts_with("run: python3 main.py # hi\n")
        );
        let twice = pin_spec(
            "greeter",
            b"run: x\nsource: { git: \"https://h/r\", ref: 0123456789abcdef0123456789abcdef01234567 }\n",
            &Pin {
                url: "https://h/r",
                commit,
                track: None,
                path: None,
            },
        );
        assert!(matches!(twice, Err(PinError::HasSource)));
    }
}
