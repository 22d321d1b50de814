//! JSON Schemas of the files people write, generated from the types that read them, so that
//! editors complete and check workflow and topology files (`weir schema workflow`).

use schemars::{generate::SchemaSettings, JsonSchema, Schema};

/// The files Weir publishes a schema for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaFile {
    /// Workflow files (`workflows/*.yaml`).
    Workflow,
    /// Topology files (`workflows/topologies/*.yaml`).
    Topology,
}

impl SchemaFile {
    /// The schema (JSON Schema draft 2020-12) of the file as written, once variables are
    /// substituted: a `${name}` reference stands where its value will.
    pub fn schema(self) -> Schema {
        match self {
            SchemaFile::Workflow => generate::<crate::workflow::Workflow>("Weir workflow"),
            SchemaFile::Topology => generate::<weir_topology::spec::TopologyFile>("Weir topology"),
        }
    }
}

fn generate<T: JsonSchema>(title: &str) -> Schema {
    let mut schema = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator()
        .into_root_schema_for::<T>();
    schema.insert("title".into(), title.into());
    schema
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn repository() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    fn validator(file: SchemaFile) -> jsonschema::Validator {
        jsonschema::validator_for(&file.schema().to_value()).expect("a valid JSON Schema")
    }

    fn document(yaml: &str) -> serde_json::Value {
        serde_saphyr::from_str(yaml).expect("YAML")
    }

    fn errors(validator: &jsonschema::Validator, yaml: &str) -> Vec<String> {
        validator
            .iter_errors(&document(yaml))
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect()
    }

    #[test]
    fn shipped_workflows_and_topologies_match_their_schemas() {
        let workflows = validator(SchemaFile::Workflow);
        let topologies = validator(SchemaFile::Topology);
        let mut checked = 0;
        for entry in std::fs::read_dir(repository().join("workflows")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                let (expanded, _) = crate::workflow::expand(&path, &text, &[]).unwrap();
                assert_eq!(
                    errors(&workflows, &expanded),
                    Vec::<String>::new(),
                    "{path:?}"
                );
                checked += 1;
            }
        }
        for entry in std::fs::read_dir(repository().join("workflows/topologies")).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let expanded = weir_topology::spec::TopologySpec::expand(&path, &text, &[]).unwrap();
            assert_eq!(
                errors(&topologies, &expanded),
                Vec::<String>::new(),
                "{path:?}"
            );
            checked += 1;
        }
        assert!(checked >= 3, "only {checked} files checked");
    }

    #[test]
    fn the_workflow_schema_refuses_what_the_loader_refuses() {
        let workflows = validator(SchemaFile::Workflow);
        let two_kinds =
            "name: w\ntasks:\n  - name: t\n    wait: { duration: 1s }\n    teardown: {}\n";
        let no_kind = "name: w\ntasks:\n  - name: t\n";
        let unknown_field = "name: w\ntasks:\n  - name: t\n    retrys: 2\n    teardown: {}\n";
        let bad_on_failure =
            "name: w\ntasks:\n  - name: t\n    on-failure: ignore\n    teardown: {}\n";
        for yaml in [two_kinds, no_kind, unknown_field, bad_on_failure] {
            assert!(!errors(&workflows, yaml).is_empty(), "accepted:\n{yaml}");
            let loaded = crate::workflow::load_text(Path::new("w.yaml"), yaml, &[]);
            assert!(loaded.is_err(), "the loader accepted:\n{yaml}");
        }
        let fine = "name: w\ntasks:\n  - name: t\n    retry-delay: 2s\n    teardown: {}\n";
        assert_eq!(errors(&workflows, fine), Vec::<String>::new());
    }

    #[test]
    fn the_topology_schema_refuses_an_unknown_operator() {
        let topologies = validator(SchemaFile::Topology);
        let yaml = "name: t\ninput: { topic: a, group: g }\nerror_topic: e\noperators:\n  - parse: {}\n  - sort: {}\n";
        assert!(!errors(&topologies, yaml).is_empty());
    }
}
