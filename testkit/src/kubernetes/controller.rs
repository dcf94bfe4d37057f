//! The fake's pretend deployment controller and kubelet: a Deployment's new template
//! gets its pods at once, ready, never ready, failing to pull, or crash-looping, as
//! [`Rollouts`] says; pods of a template that rolled out are removed.

use super::resources;
use super::store::{Key, Rollouts, Store, Stored};
use serde_json::{Value, json};

impl Store {
    pub(super) fn roll_out(&mut self, key: &Key) {
        let Some(stored) = self.objects.get(key) else {
            return;
        };
        let d = stored.object.clone();
        let (ns, name) = (key.1.clone(), key.2.clone());
        let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
        let generation = d["metadata"]["generation"].as_i64().unwrap_or(1);
        let container = |ready: bool| match &self.rollouts {
            Rollouts::Ready | Rollouts::Hold => json!({
                "name": "service", "ready": ready, "restartCount": 0,
                "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } },
            }),
            Rollouts::Fail(message) => json!({
                "name": "service", "ready": false, "restartCount": 0,
                "state": { "waiting": { "reason": "ImagePullBackOff", "message": message } },
            }),
            Rollouts::Crash(code) => json!({
                "name": "service", "ready": false, "restartCount": 3,
                "state": { "waiting": { "reason": "CrashLoopBackOff" } },
                "lastState": { "terminated": { "exitCode": code, "reason": "Error" } },
            }),
        };
        let ready = self.rollouts == Rollouts::Ready;
        let statuses = container(ready);
        // A template that does not get ready stops at its first surge pod (maxSurge 1,
        // maxUnavailable 0), the old pods serving on.
        let new_pods = if ready { replicas } else { replicas.min(1) };
        if self.rollouts != Rollouts::Hold {
            for i in 0..new_pods {
                let pod = format!("{name}-{generation}-{i}");
                let object = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {
                        "name": pod, "namespace": ns,
                        "labels": d["spec"]["template"]["metadata"]["labels"],
                        "annotations": { "fake/owner": name },
                    },
                    "spec": d["spec"]["template"]["spec"],
                    "status": { "phase": if ready { "Running" } else { "Pending" },
                        "containerStatuses": [statuses.clone()] },
                });
                self.put_pod(&ns, &pod, object);
            }
        }
        if ready {
            // The old template's pods go once the new one serves.
            let current = format!("{name}-{generation}-");
            let old: Vec<String> = self
                .objects
                .iter()
                .filter(|((plural, n, pod), s)| {
                    plural == "pods"
                        && *n == ns
                        && s.object["metadata"]["annotations"]["fake/owner"] == name.as_str()
                        && !pod.starts_with(&current)
                })
                .map(|((_, _, pod), _)| pod.clone())
                .collect();
            if let Some(r) = resources::by_plural("pods") {
                for pod in old {
                    let _ = self.delete(r, &ns, &pod);
                }
            }
        }
        let status = match &self.rollouts {
            Rollouts::Hold => return,
            Rollouts::Fail(message) => json!({
                "observedGeneration": generation,
                "replicas": d["status"]["replicas"],
                "updatedReplicas": 0,
                "readyReplicas": d["status"]["readyReplicas"],
                "availableReplicas": d["status"]["availableReplicas"],
                "conditions": [{ "type": "Progressing", "status": "False",
                    "reason": "ProgressDeadlineExceeded", "message": message }],
            }),
            Rollouts::Crash(_) => json!({
                "observedGeneration": generation,
                "replicas": d["status"]["replicas"].as_i64().unwrap_or(0) + new_pods,
                "updatedReplicas": new_pods,
                "readyReplicas": d["status"]["readyReplicas"],
                "availableReplicas": d["status"]["availableReplicas"],
                "conditions": [{ "type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated" }],
            }),
            Rollouts::Ready => json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    { "type": "Available", "status": "True", "reason": "MinimumReplicasAvailable" },
                    { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" },
                ],
            }),
        };
        let Some(stored) = self.objects.get_mut(key) else {
            return;
        };
        if stored.object["status"] == status {
            return;
        }
        stored.object["status"] = status;
        self.rv += 1;
        stored.object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        let object = stored.object.clone();
        if let Some(r) = resources::by_plural("deployments") {
            self.event(r, &ns, "MODIFIED", object);
        }
    }

    /// Creates or replaces a pod as the kubelet reports it.
    fn put_pod(&mut self, ns: &str, name: &str, mut object: Value) {
        let Some(r) = resources::by_plural("pods") else {
            return;
        };
        let key = (r.plural.to_owned(), ns.to_owned(), name.to_owned());
        let existed = self.objects.contains_key(&key);
        self.rv += 1;
        object["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        object["metadata"]["uid"] = json!(format!("uid-{}", self.rv));
        self.objects.insert(
            key,
            Stored {
                object: object.clone(),
                owners: Default::default(),
            },
        );
        self.logs
            .entry((ns.to_owned(), name.to_owned()))
            .or_default();
        self.event(r, ns, if existed { "MODIFIED" } else { "ADDED" }, object);
    }
}
