//! The store's URL as the operator gives it, made safe by default: a PostgreSQL server
//! on another machine is reached with its certificate verified (`sslmode=verify-full`,
//! against `sslrootcert` or the public roots) unless the URL says otherwise, and a URL
//! that says otherwise for such a server is named in a warning at start.

/// The URL to connect with, and a warning to log (naming the host, never the URL: it
/// may hold a password).
pub fn store_url(given: &str) -> (String, Option<String>) {
    let Ok(mut url) = url::Url::parse(given) else {
        return (given.to_owned(), None);
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return (given.to_owned(), None);
    }
    let query = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let socket = query("host").is_some_and(|h| h.starts_with('/'));
    let host = url.host_str().unwrap_or_default().to_owned();
    let local = socket
        || host.is_empty()
        || host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match query("sslmode") {
        _ if local => (given.to_owned(), None),
        None => {
            url.query_pairs_mut().append_pair("sslmode", "verify-full");
            (url.to_string(), None)
        }
        Some(mode) if mode == "verify-full" => (given.to_owned(), None),
        Some(mode) => (
            given.to_owned(),
            Some(format!(
                "the store at {host} is reached without checking its certificate (sslmode={mode}): anyone on the way can read and change it; use sslmode=verify-full"
            )),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::store_url;

    #[test]
    fn a_database_elsewhere_is_verified_unless_the_url_says_otherwise() {
        let (url, warning) = store_url("postgres://app:secret@db.example.com/micro");
        assert_eq!(
            url,
            "postgres://app:secret@db.example.com/micro?sslmode=verify-full"
        );
        assert_eq!(warning, None);
        let given =
            "postgres://app:secret@db.example.com/micro?sslmode=verify-full&sslrootcert=/ca.pem";
        assert_eq!(store_url(given), (given.to_owned(), None));
        let given = "postgresql://app:secret@10.0.0.5/micro?sslmode=require";
        let (url, warning) = store_url(given);
        assert_eq!(url, given);
        let warning = warning.unwrap();
        assert!(warning.contains("10.0.0.5") && warning.contains("sslmode=require"));
        assert!(!warning.contains("secret"), "{warning}");
    }

    #[test]
    fn this_machine_and_other_stores_are_left_as_given() {
        for given in [
            "postgres://postgres@127.0.0.1:5432/micro",
            "postgres://postgres@localhost/micro",
            "postgres://postgres@[::1]/micro",
            "postgres://postgres@whatever/micro?host=/run/postgresql",
            "sqlite",
            "memory",
        ] {
            assert_eq!(store_url(given), (given.to_owned(), None), "{given}");
        }
    }
}
