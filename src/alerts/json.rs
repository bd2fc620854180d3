//! The JSON a webhook receives for a block alert: the same facts as the
//! email, each event itemised.

use serde_json::{Map, Value, json};

use super::message::{Alert, Attempt};

fn attempt_json(alert: &Alert, a: &Attempt) -> Value {
    let mut fields = Map::new();
    if let Some(name) = &a.name {
        fields.insert("name".into(), json!(name));
    } else {
        fields.insert("site".into(), json!(a.site(&alert.category)));
    }
    fields.insert("query_type".into(), json!(a.query_type));
    if let Some(list) = &a.list {
        fields.insert("list".into(), json!(list));
    }
    if let Some(rule) = &a.name_rule {
        fields.insert("rule".into(), json!(rule));
    }
    fields.insert("at_unix_ms".into(), json!(a.at_unix_ms));
    fields.insert(
        "time_local".into(),
        json!(alert.local(a.at_unix_ms).rfc3339()),
    );
    fields.insert("time_utc".into(), json!(alert.utc(a.at_unix_ms).rfc3339()));
    Value::Object(fields)
}

/// The same facts as the email. `name` is left out, not blanked, for locked
/// lists, so a receiver that logs whole bodies never sees it. The top level
/// describes the first event; `events` lists every itemised one; `text` lets
/// chat webhooks (Teams, Slack) show something readable unchanged.
pub(crate) fn payload(alert: &Alert) -> Value {
    let first = alert.attempts.first();
    let mut top = match first.map(|a| attempt_json(alert, a)) {
        Some(Value::Object(fields)) => fields,
        _ => Map::new(),
    };
    let d = &alert.device;
    top.insert("kind".into(), json!("block"));
    top.insert("alert_id".into(), json!(alert.id));
    top.insert("school".into(), json!(alert.school));
    top.insert(
        "device".into(),
        json!({
            "label": d.label,
            "name": d.name,
            "owner": d.owner,
            "room": d.room,
            "mac": d.mac,
            "ip": d.ip.to_string(),
        }),
    );
    top.insert("profile".into(), json!(alert.profile));
    top.insert("profile_name".into(), json!(alert.profile_name));
    top.insert("category".into(), json!(alert.category));
    top.insert("action".into(), json!(alert.action));
    top.insert("locked".into(), json!(alert.locked));
    top.insert("folded".into(), json!(alert.folded));
    top.insert("attempts".into(), json!(alert.total_attempts()));
    top.insert(
        "events".into(),
        Value::Array(
            alert
                .attempts
                .iter()
                .map(|a| attempt_json(alert, a))
                .collect(),
        ),
    );
    top.insert("subject".into(), json!(alert.subject()));
    top.insert("text".into(), json!(alert.email_body()));
    Value::Object(top)
}
