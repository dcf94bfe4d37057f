//! The defaults the real API server fills in, so that a runtime comparing whole objects
//! would see "changes" it never made. The runtime must compare only what it sets.

use super::resources::Resource;
use base64::Engine;
use serde_json::{Value, json};

fn default(v: &mut Value, key: &str, value: Value) {
    if let Some(map) = v.as_object_mut() {
        map.entry(key.to_owned()).or_insert(value);
    }
}

pub fn fill(r: &Resource, o: &mut Value) {
    match r.plural {
        "namespaces" => {
            let name = o["metadata"]["name"].clone();
            o["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
            o["status"] = json!({ "phase": "Active" });
        }
        "secrets" => {
            // stringData is write-only: it lands in data, base64-encoded.
            if let Some(Value::Object(strings)) =
                o.as_object_mut().and_then(|m| m.remove("stringData"))
            {
                for (k, v) in strings {
                    let text = v.as_str().unwrap_or_default().to_owned();
                    o["data"][k.as_str()] =
                        json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            default(o, "type", json!("Opaque"));
        }
        "services" => {
            let spec = &mut o["spec"];
            default(spec, "clusterIP", json!("10.96.0.10"));
            default(spec, "sessionAffinity", json!("None"));
            default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        "deployments" => {
            let spec = &mut o["spec"];
            default(spec, "revisionHistoryLimit", json!(10));
            default(spec, "progressDeadlineSeconds", json!(600));
            let pod = &mut spec["template"]["spec"];
            default(pod, "restartPolicy", json!("Always"));
            default(pod, "dnsPolicy", json!("ClusterFirst"));
            default(pod, "terminationGracePeriodSeconds", json!(30));
            default(pod, "schedulerName", json!("default-scheduler"));
            if let Some(containers) = pod["containers"].as_array_mut() {
                for c in containers {
                    default(c, "imagePullPolicy", json!("IfNotPresent"));
                    default(c, "terminationMessagePath", json!("/dev/termination-log"));
                }
            }
        }
        _ => {}
    }
}
