//! Server-side apply as the fake does it: field ownership per manager at the level of
//! leaves (lists are atomic, as for `x-kubernetes-list-type: atomic`), conflicts when
//! another manager owns a leaf with another value, `force` taking ownership over, and a
//! manager's fields it no longer applies removed.

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A leaf: the keys from the object's root down to a scalar, list or empty object.
pub type Path = Vec<String>;

/// Who owns which leaves of one object.
pub type Ownership = BTreeMap<String, BTreeSet<Path>>;

/// Fields the API server keeps for itself: never owned, never applied.
fn is_server_field(path: &[String]) -> bool {
    matches!(path.first().map(String::as_str), Some("status"))
        || matches!(
            (
                path.first().map(String::as_str),
                path.get(1).map(String::as_str)
            ),
            (
                Some("metadata"),
                Some(
                    "resourceVersion"
                        | "uid"
                        | "generation"
                        | "creationTimestamp"
                        | "managedFields"
                        | "namespace"
                        | "name"
                )
            )
        )
        || matches!(
            path.first().map(String::as_str),
            Some("apiVersion" | "kind")
        )
}

/// Every leaf of `v`, except what the server keeps.
pub fn leaves(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, at: &mut Path, out: &mut BTreeSet<Path>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    at.push(k.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            _ => {
                if !is_server_field(at) {
                    out.insert(at.clone());
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

pub fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Value, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = v;
    for k in parents {
        if !at.is_object() {
            *at = Value::Object(Map::new());
        }
        let Some(map) = at.as_object_mut() else {
            return;
        };
        at = map
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !at.is_object() {
        *at = Value::Object(Map::new());
    }
    if let Some(map) = at.as_object_mut() {
        map.insert(last.clone(), value);
    }
}

/// Removes a leaf and any object left empty above it.
fn remove(v: &mut Value, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(map) = v.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        map.remove(first);
        return;
    }
    if let Some(child) = map.get_mut(first) {
        remove(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            map.remove(first);
        }
    }
}

/// Another manager owns a leaf the apply sets to another value.
#[derive(Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: String,
    pub path: String,
}

/// Applies `config` as `manager` onto `live` (absent: a new object). Returns the new
/// object or the conflicts that stop it.
pub fn apply(
    live: Option<&Value>,
    owners: &mut Ownership,
    manager: &str,
    config: &Value,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let applied = leaves(config);
    let mut object = live.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    let mut conflicts = Vec::new();
    for (other, fields) in owners.iter() {
        if other == manager {
            continue;
        }
        for path in fields.intersection(&applied) {
            if get(&object, path) != get(config, path) {
                conflicts.push(Conflict {
                    manager: other.clone(),
                    path: format!(".{}", path.join(".")),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    // Fields this manager set before and applies no more go, unless someone else owns them.
    let before = owners.get(manager).cloned().unwrap_or_default();
    for path in before.difference(&applied) {
        let shared = owners.iter().any(|(m, f)| m != manager && f.contains(path));
        if !shared {
            remove(&mut object, path);
        }
    }
    for path in &applied {
        if let Some(value) = get(config, path) {
            set(&mut object, path, value.clone());
        }
    }
    for (other, fields) in owners.iter_mut() {
        if other != manager && force {
            fields.retain(|p| !applied.contains(p));
        }
    }
    owners.insert(manager.to_owned(), applied);
    owners.retain(|_, f| !f.is_empty());
    Ok(object)
}

/// A write that is not an apply (an edit by hand): `manager` takes the leaves it changed.
pub fn update(owners: &mut Ownership, manager: &str, old: &Value, new: &Value) {
    let old_leaves = leaves(old);
    let changed: BTreeSet<Path> = leaves(new)
        .into_iter()
        .filter(|p| !old_leaves.contains(p) || get(old, p) != get(new, p))
        .collect();
    let gone: BTreeSet<Path> = old_leaves
        .into_iter()
        .filter(|p| get(new, p).is_none())
        .collect();
    for fields in owners.values_mut() {
        fields.retain(|p| !changed.contains(p) && !gone.contains(p));
    }
    owners
        .entry(manager.to_owned())
        .or_default()
        .extend(changed);
    owners.retain(|_, f| !f.is_empty());
}

/// `metadata.managedFields` for an object, in the API's shape (`f:` keys).
pub fn managed_fields(owners: &Ownership, api_version: &str) -> Value {
    let entries: Vec<Value> = owners
        .iter()
        .map(|(manager, fields)| {
            let mut tree = Value::Object(Map::new());
            for path in fields {
                let keyed: Path = path.iter().map(|k| format!("f:{k}")).collect();
                set(&mut tree, &keyed, Value::Object(Map::new()));
            }
            serde_json::json!({
                "manager": manager,
                "operation": if manager == micro_kubernetes::labels::MANAGER { "Apply" } else { "Update" },
                "apiVersion": api_version,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            })
        })
        .collect();
    Value::Array(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_merges_removes_and_conflicts() {
        let mut owners = Ownership::new();
        let first = json!({"spec": {"replicas": 2, "paused": false}, "metadata": {"name": "x"}});
        let obj = apply(None, &mut owners, "micro", &first, false).unwrap();
        assert_eq!(obj["spec"]["replicas"], 2);
        // Someone edits replicas by hand: now they own it.
        let mut edited = obj.clone();
        edited["spec"]["replicas"] = json!(5);
        update(&mut owners, "kubectl-edit", &obj, &edited);
        // Applying the old value conflicts without force and wins with it.
        let err = apply(Some(&edited), &mut owners, "micro", &first, false).unwrap_err();
        assert_eq!(err[0].path, ".spec.replicas");
        let back = apply(Some(&edited), &mut owners, "micro", &first, true).unwrap();
        assert_eq!(back["spec"]["replicas"], 2);
        // A field no longer applied goes.
        let less = json!({"spec": {"replicas": 2}});
        let smaller = apply(Some(&back), &mut owners, "micro", &less, false).unwrap();
        assert!(smaller["spec"].get("paused").is_none());
        // Fields of others stay.
        let mut other = smaller.clone();
        other["metadata"]["labels"] = json!({"team": "x"});
        update(&mut owners, "kubectl-label", &smaller, &other);
        let again = apply(Some(&other), &mut owners, "micro", &less, false).unwrap();
        assert_eq!(again["metadata"]["labels"]["team"], "x");
    }
}
