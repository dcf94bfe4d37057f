//! Kubernetes-style resource quantities, as `service.yaml`'s `resources` takes them.

/// Least memory a service may ask for: less cannot start an interpreter.
pub const MIN_MEMORY: u64 = 16 << 20;
/// Most memory one replica may ask for.
pub const MAX_MEMORY: u64 = 16 << 30;
/// Most CPU one replica may ask for, in thousandths.
pub const MAX_CPU_MILLIS: u64 = 8_000;

/// Parses a Kubernetes-style memory quantity: `200Mi`, `1Gi`, `512M`, `1000000`.
pub fn parse_memory(q: &str) -> Option<u64> {
    let q = q.trim();
    let split = q.find(|c: char| !c.is_ascii_digit()).unwrap_or(q.len());
    let (num, unit) = q.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b > 0)
}

/// Parses a Kubernetes-style CPU quantity into thousandths: `200m`, `1`, `0.5`.
pub fn parse_cpu(q: &str) -> Option<u64> {
    let q = q.trim();
    let millis = if let Some(m) = q.strip_suffix('m') {
        m.parse::<u64>().ok()?
    } else {
        let f: f64 = q.parse().ok()?;
        if !f.is_finite() || f <= 0.0 || f > 1024.0 {
            return None;
        }
        (f * 1000.0).round() as u64
    };
    (millis > 0).then_some(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_memory("200Mi"), Some(200 << 20));
        assert_eq!(parse_memory("1Gi"), Some(1 << 30));
        assert_eq!(parse_memory("512M"), Some(512_000_000));
        assert_eq!(parse_memory("4096"), Some(4096));
        assert_eq!(parse_memory("lots"), None);
        assert_eq!(parse_memory("0"), None);
        assert_eq!(parse_memory("1Ti"), None);
        assert_eq!(parse_cpu("200m"), Some(200));
        assert_eq!(parse_cpu("1"), Some(1000));
        assert_eq!(parse_cpu("0.5"), Some(500));
        assert_eq!(parse_cpu("0m"), None);
        assert_eq!(parse_cpu("fast"), None);
    }
}
