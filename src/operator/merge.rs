//! Merging a user's partial object (`spec.deployment`, `spec.service`)
//! into a generated one, the way kubeless users expect: objects merge key
//! by key, lists of named items (containers, env, volumes, ports) merge by
//! `name`, anything else the user gives replaces what was generated.

use serde_json::Value;

/// Merges `overlay` into `base`.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(overlay)) if named(base) && named(overlay) => {
            for item in overlay {
                match base.iter_mut().find(|b| b["name"] == item["name"]) {
                    Some(existing) => merge(existing, item),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Whether every item is an object with a string `name`.
fn named(items: &[Value]) -> bool {
    items.iter().all(|item| item["name"].is_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn named_lists_merge_by_name_and_the_rest_is_replaced() {
        let mut base = json!({
            "replicas": 1,
            "containers": [{"name": "function", "image": "a", "env": [{"name": "A", "value": "1"}]}],
            "args": ["host"],
        });
        merge(
            &mut base,
            &json!({
                "replicas": 3,
                "containers": [
                    {"name": "function", "env": [{"name": "B", "value": "2"}]},
                    {"name": "sidecar", "image": "s"}
                ],
                "args": ["other"],
                "nodeSelector": {"disk": "ssd"},
            }),
        );
        assert_eq!(
            base,
            json!({
                "replicas": 3,
                "containers": [
                    {"name": "function", "image": "a", "env": [
                        {"name": "A", "value": "1"}, {"name": "B", "value": "2"}
                    ]},
                    {"name": "sidecar", "image": "s"}
                ],
                "args": ["other"],
                "nodeSelector": {"disk": "ssd"},
            })
        );
    }
}
