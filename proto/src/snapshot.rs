//! Breaking-change guard: a checked-in, line-per-element snapshot of the wire contract.
//!
//! Each line is `key => value`, where the key names an element by its wire identity (field number,
//! enum number, RPC name) and the value is what a client depends on (name, type, cardinality).
//! Comparing a snapshot with the current descriptors classifies every difference:
//! a key that disappeared or whose value changed is **breaking**; a new key is **additive**.
//! Refresh the file on purpose with `KEM_UPDATE_PROTO_SNAPSHOT=1 cargo test -p kem-proto`.

use std::collections::BTreeMap;

use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind};

/// Path of the checked-in snapshot, relative to the `proto/` crate.
pub const SNAPSHOT_FILE: &str = "descriptor.snapshot";

/// Renders the wire contract of every `kem.*` package, one sorted line per element.
pub fn render(pool: &DescriptorPool) -> String {
    let mut lines = BTreeMap::new();
    for message in pool.all_messages().filter(|m| m.package_name().starts_with("kem.")) {
        if message.is_map_entry() {
            continue;
        }
        for field in message.fields() {
            lines.insert(format!("field {}#{}", message.full_name(), field.number()), describe_field(&field));
        }
    }
    for enumeration in pool.all_enums().filter(|e| e.package_name().starts_with("kem.")) {
        for value in enumeration.values() {
            lines.insert(format!("enum {}#{}", enumeration.full_name(), value.number()), value.name().to_owned());
        }
    }
    for service in pool.services().filter(|s| s.package_name().starts_with("kem.")) {
        for method in service.methods() {
            let streaming = match (method.is_client_streaming(), method.is_server_streaming()) {
                (false, false) => "",
                (true, false) => " client-streaming",
                (false, true) => " server-streaming",
                (true, true) => " bidi-streaming",
            };
            lines.insert(
                format!("rpc {}", method.full_name()),
                format!("{} -> {}{streaming}", method.input().full_name(), method.output().full_name()),
            );
        }
    }
    let mut out = String::from(
        "# kem wire-contract snapshot. Generated; refresh on purpose with\n\
         # KEM_UPDATE_PROTO_SNAPSHOT=1 cargo test -p kem-proto\n",
    );
    for (key, value) in lines {
        out.push_str(&key);
        out.push_str(" => ");
        out.push_str(&value);
        out.push('\n');
    }
    out
}

fn kind_name(kind: &Kind) -> String {
    match kind {
        Kind::Message(m) => m.full_name().to_owned(),
        Kind::Enum(e) => e.full_name().to_owned(),
        other => format!("{other:?}").to_ascii_lowercase(),
    }
}

fn describe_field(field: &FieldDescriptor) -> String {
    let ty = if field.is_map() {
        match field.kind().as_message() {
            Some(entry) => format!(
                "map<{}, {}>",
                kind_name(&entry.map_entry_key_field().kind()),
                kind_name(&entry.map_entry_value_field().kind())
            ),
            None => "map<?>".to_owned(),
        }
    } else {
        let label = match field.cardinality() {
            Cardinality::Repeated => "repeated ",
            _ if field.field_descriptor_proto().proto3_optional() => "optional ",
            _ => "",
        };
        format!("{label}{}", kind_name(&field.kind()))
    };
    let oneof = match field.containing_oneof() {
        Some(o) if !o.is_synthetic() => format!(" oneof {}", o.name()),
        _ => String::new(),
    };
    format!("{} {ty}{oneof}", field.name())
}

/// How the current contract differs from a snapshot.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Removed or changed elements: existing clients break.
    pub breaking: Vec<String>,
    /// New elements: safe, but the snapshot must be refreshed to record them.
    pub additive: Vec<String>,
}

fn parse(snapshot: &str) -> BTreeMap<&str, &str> {
    snapshot
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split_once(" => "))
        .collect()
}

/// Compares a recorded snapshot with a freshly rendered one.
pub fn diff(recorded: &str, current: &str) -> Diff {
    let (old, new) = (parse(recorded), parse(current));
    let mut out = Diff::default();
    for (key, was) in &old {
        match new.get(key) {
            None => out.breaking.push(format!("removed: {key} ({was})")),
            Some(now) if now != was => out.breaking.push(format!("changed: {key}: `{was}` became `{now}`")),
            Some(_) => {}
        }
    }
    for (key, now) in &new {
        if !old.contains_key(key) {
            out.additive.push(format!("added: {key} ({now})"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_matches_the_checked_in_snapshot() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT_FILE);
        let current = render(crate::descriptor_pool());
        if std::env::var_os("KEM_UPDATE_PROTO_SNAPSHOT").is_some() {
            std::fs::write(&path, &current).expect("write snapshot");
            return;
        }
        let recorded = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read {}: {e}; create it with KEM_UPDATE_PROTO_SNAPSHOT=1 cargo test -p kem-proto",
                path.display()
            )
        });
        let diff = diff(&recorded, &current);
        assert!(
            diff.breaking.is_empty(),
            "BREAKING contract change (clients built on the published protos would break):\n{}\n\
             If this is deliberate (a new major version), refresh with KEM_UPDATE_PROTO_SNAPSHOT=1.",
            diff.breaking.join("\n")
        );
        assert!(
            diff.additive.is_empty(),
            "the contract grew; record it with KEM_UPDATE_PROTO_SNAPSHOT=1 cargo test -p kem-proto:\n{}",
            diff.additive.join("\n")
        );
    }

    const RECORDED: &str = "field kem.x.v1.A#1 => name string\nfield kem.x.v1.A#2 => tags repeated string\nenum kem.x.v1.E#1 => E_ONE\nrpc kem.x.v1.S.Get => kem.x.v1.GetRequest -> kem.x.v1.GetResponse\n";

    #[test]
    fn changed_field_type_is_breaking() {
        let current = RECORDED.replace("#1 => name string", "#1 => name int64");
        let d = diff(RECORDED, &current);
        assert_eq!(d.breaking.len(), 1, "{d:?}");
        assert!(d.breaking[0].contains("kem.x.v1.A#1"));
    }

    #[test]
    fn removed_field_enum_value_or_rpc_is_breaking() {
        for line in [
            "field kem.x.v1.A#2 => tags repeated string\n",
            "enum kem.x.v1.E#1 => E_ONE\n",
            "rpc kem.x.v1.S.Get => kem.x.v1.GetRequest -> kem.x.v1.GetResponse\n",
        ] {
            let current = RECORDED.replace(line, "");
            let d = diff(RECORDED, &current);
            assert_eq!(d.breaking.len(), 1, "removing {line:?}: {d:?}");
            assert!(d.breaking[0].starts_with("removed:"));
        }
    }

    #[test]
    fn renumbered_or_relabelled_field_is_breaking_and_new_field_is_additive() {
        let current = RECORDED.replace("tags repeated string", "tags string") + "field kem.x.v1.A#3 => note string\n";
        let d = diff(RECORDED, &current);
        assert_eq!(d.breaking.len(), 1, "{d:?}");
        assert_eq!(d.additive, vec!["added: field kem.x.v1.A#3 (note string)".to_owned()]);
    }

    #[test]
    fn identical_snapshots_have_no_diff() {
        assert_eq!(diff(RECORDED, RECORDED), Diff::default());
        let rendered = render(crate::descriptor_pool());
        assert!(rendered.lines().any(|l| l.starts_with("rpc kem.user.v1.UserService.Register =>")));
    }
}
