//! Comparing what runs with what we would apply, field by field, looking only at the
//! fields we set: defaults the API server fills in (and fields others own) never count
//! as changes, and quantities compare by value (`1000m` is `1`).

use micro_tenant::quantity::{parse_cpu, parse_memory};
use serde_json::Value;

/// Whether `live` holds everything `want` sets, with the same values. Lists compare
/// element by element (same length); an empty object or list we set may be absent, as
/// the API server drops them.
pub fn contains(live: Option<&Value>, want: &Value) -> bool {
    match (live, want) {
        (None | Some(Value::Null), Value::Object(w)) if w.is_empty() => true,
        (None | Some(Value::Null), Value::Array(w)) if w.is_empty() => true,
        (None, _) => false,
        (Some(Value::Object(l)), Value::Object(w)) => {
            w.iter().all(|(k, wv)| contains(l.get(k), wv))
        }
        (Some(Value::Array(l)), Value::Array(w)) => {
            l.len() == w.len() && l.iter().zip(w).all(|(lv, wv)| contains(Some(lv), wv))
        }
        (Some(l), w) => l == w || same_quantity(l, w),
    }
}

/// `1000m` and `1`, or `1Gi` and `1024Mi`: the API server writes quantities its own way.
fn same_quantity(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_str(), b.as_str()) else {
        return false;
    };
    let cpu = parse_cpu(a).zip(parse_cpu(b)).is_some_and(|(x, y)| x == y);
    let memory = parse_memory(a)
        .zip(parse_memory(b))
        .is_some_and(|(x, y)| x == y);
    cpu || memory
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_other_fields_do_not_count() {
        let want =
            json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let live = json!({"spec": {"replicas": 2, "revisionHistoryLimit": 10,
            "template": {"spec": {"dnsPolicy": "ClusterFirst",
                "containers": [{"name": "a", "imagePullPolicy": "IfNotPresent"}]}}},
            "status": {"replicas": 2}});
        assert!(contains(Some(&live), &want));
    }

    #[test]
    fn our_fields_changed_or_gone_count() {
        let want = json!({"spec": {"replicas": 2, "ports": [{"port": 80}]}});
        assert!(!contains(
            Some(&json!({"spec": {"replicas": 3, "ports": [{"port": 80}]}})),
            &want
        ));
        assert!(!contains(
            Some(&json!({"spec": {"ports": [{"port": 80}]}})),
            &want
        ));
        assert!(!contains(
            Some(&json!({"spec": {"replicas": 2, "ports": []}})),
            &want
        ));
        assert!(!contains(None, &want));
    }

    #[test]
    fn quantities_and_empty_values_compare_as_the_api_server_writes_them() {
        let want = json!({"cpu": "1000m", "memory": "1024Mi", "selector": {}, "init": []});
        assert!(contains(Some(&json!({"cpu": "1", "memory": "1Gi"})), &want));
        assert!(!contains(
            Some(&json!({"cpu": "2", "memory": "1Gi"})),
            &want
        ));
    }
}
