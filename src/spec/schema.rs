//! The JSON Schema of the pipeline file, checked in at `schema/flightdeck.schema.json`
//! so editors can complete and check `flightdeck.yml`.
//! Regenerate with `cargo run -- schema > schema/flightdeck.schema.json`.

pub fn generate() -> String {
    let schema = schemars::schema_for!(super::Pipeline);
    let mut v = serde_json::to_value(&schema).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert(
            "$id".into(),
            "https://flightdeck.dev/schema/flightdeck.schema.json".into(),
        );
        o.insert("title".into(), "flightdeck pipeline".into());
    }
    serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
}

#[cfg(test)]
mod tests {
    #[test]
    fn checked_in_schema_is_fresh() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/flightdeck.schema.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == super::generate(),
            "schema/flightdeck.schema.json is stale: run `cargo run -- schema > schema/flightdeck.schema.json`"
        );
    }
}
