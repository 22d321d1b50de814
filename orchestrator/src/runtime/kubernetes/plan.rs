//! What to create for one request: the instance and, before it, each dependency it names
//! or lacks (`<name>-<service>`, as the local runtime does), with parameters validated and
//! input files read for their ConfigMap. No cluster is involved.

use std::collections::BTreeMap;
use std::path::Path;

use weir_catalog::catalog;
use weir_catalog::kubernetes::{
    in_cluster_endpoint, render, workload_kind, KubeInstance, KubeObject,
};
use weir_catalog::service::{ParamKind, Params, ServiceDefinition};
use weir_contracts::service_kind::ServiceKind;

use super::KubeError;

/// A request for one instance.
#[derive(Debug, Clone)]
pub struct Request {
    pub service: ServiceKind,
    pub name: String,
    pub params: Vec<(String, String)>,
    /// The image of each service not given an `image` parameter (instead of the catalog's
    /// default), for the instance and the dependencies planned for it.
    pub images: BTreeMap<ServiceKind, String>,
}

/// One instance to create, in order.
#[derive(Debug, Clone)]
pub struct PlannedInstance {
    pub name: String,
    pub definition: ServiceDefinition,
    pub params: Params,
    /// Need parameter → in-cluster `host:port`.
    pub dependencies: BTreeMap<String, String>,
    /// File name → contents, mounted at `weir_catalog::kubernetes::FILES_DIR`.
    pub files: BTreeMap<String, String>,
}

impl PlannedInstance {
    /// The instance's objects, labelled with the run when there is one.
    pub fn objects(&self, run_id: Option<&str>) -> Vec<KubeObject> {
        render(&KubeInstance {
            name: &self.name,
            service: &self.definition,
            params: &self.params,
            dependencies: self.dependencies.clone(),
            files: self.files.clone(),
            run_id,
        })
    }

    /// The kind and name of the object whose readiness says the instance is up.
    pub fn workload(&self) -> (&'static str, &str) {
        (workload_kind(&self.definition), &self.name)
    }

    /// `host:port` by which pods of the namespace reach it, if it has a port.
    pub fn endpoint(&self) -> Option<String> {
        in_cluster_endpoint(&self.name, &self.definition)
    }
}

/// The instances to create for `request`, dependencies first. `existing` maps the instances
/// already in the namespace to their service; those are used, not created again.
pub fn plan(
    request: &Request,
    existing: &BTreeMap<String, ServiceKind>,
) -> Result<Vec<PlannedInstance>, KubeError> {
    let mut planned = Vec::new();
    let mut known = existing.clone();
    plan_into(request, &mut known, &mut planned)?;
    Ok(planned)
}

fn plan_into(
    request: &Request,
    known: &mut BTreeMap<String, ServiceKind>,
    planned: &mut Vec<PlannedInstance>,
) -> Result<(), KubeError> {
    let definition = catalog::definition(request.service);
    let mut given = request.params.clone();
    if !given.iter().any(|(key, _)| key == "image") {
        if let Some(image) = request.images.get(&request.service) {
            given.push(("image".into(), image.clone()));
        }
    }
    let params = definition
        .validate(&given)
        .map_err(|errors| KubeError::InvalidParams {
            instance: request.name.clone(),
            errors,
        })?;
    let mut dependencies = BTreeMap::new();
    for need in definition.needs.iter().filter(|n| n.applies(&params)) {
        let name = params
            .str(need.param)
            .map(str::to_string)
            .unwrap_or_else(|| format!("{}-{}", request.name, need.service));
        match known.get(&name) {
            Some(&service) if service == need.service => {}
            Some(&service) => {
                return Err(KubeError::WrongDependency {
                    name,
                    expected: need.service,
                    actual: service,
                })
            }
            None => plan_into(
                &Request {
                    service: need.service,
                    name: name.clone(),
                    params: vec![],
                    images: request.images.clone(),
                },
                known,
                planned,
            )?,
        }
        let dependency = catalog::definition(need.service);
        if let Some(endpoint) = in_cluster_endpoint(&name, &dependency) {
            dependencies.insert(need.param.to_string(), endpoint);
        }
    }
    let files = input_files(&definition, &params)?;
    known.insert(request.name.clone(), definition.kind);
    planned.push(PlannedInstance {
        name: request.name.clone(),
        definition,
        params,
        dependencies,
        files,
    });
    Ok(())
}

/// The contents of the instance's path parameters: the runner's topology as
/// `topology.yaml`, any other file under its own name (the replay source reads the format
/// from the extension).
fn input_files(
    definition: &ServiceDefinition,
    params: &Params,
) -> Result<BTreeMap<String, String>, KubeError> {
    let mut files = BTreeMap::new();
    for param in definition
        .params
        .iter()
        .filter(|p| matches!(p.kind, ParamKind::Path))
    {
        let Some(path) = params.str(param.name) else {
            continue;
        };
        let contents = std::fs::read_to_string(path).map_err(|source| KubeError::File {
            path: path.to_string(),
            source,
        })?;
        let key = if definition.kind == ServiceKind::TopologyRunner {
            "topology.yaml".to_string()
        } else {
            Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "input".into())
        };
        files.insert(key, contents);
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(service: &str, name: &str, params: &[(&str, &str)]) -> Request {
        Request {
            service: ServiceKind::parse(service).unwrap(),
            name: name.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            images: BTreeMap::new(),
        }
    }

    #[test]
    fn image_defaults_apply_to_dependencies_and_yield_to_a_given_image() {
        let mut kafka = request("kafka", "k", &[("image", "mine/kafka:1")]);
        kafka.images = BTreeMap::from([
            (ServiceKind::ZooKeeper, "local/zookeeper:3.8".to_string()),
            (ServiceKind::Kafka, "local/kafka:3.9.1".to_string()),
        ]);
        let planned = plan(&kafka, &BTreeMap::new()).unwrap();
        assert_eq!(planned[0].params.str("image"), Some("local/zookeeper:3.8"));
        assert_eq!(planned[1].params.str("image"), Some("mine/kafka:1"));
    }

    #[test]
    fn a_missing_dependency_is_planned_first_and_named_after_its_user() {
        let planned = plan(&request("kafka", "k", &[]), &BTreeMap::new()).unwrap();
        let names: Vec<&str> = planned.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["k-zookeeper", "k"]);
        assert_eq!(planned[1].dependencies["zookeeper"], "k-zookeeper:2181");
        assert_eq!(planned[0].workload(), ("StatefulSet", "k-zookeeper"));
    }

    #[test]
    fn an_existing_dependency_is_used_not_created() {
        let existing = BTreeMap::from([("zk".to_string(), ServiceKind::ZooKeeper)]);
        let planned = plan(&request("kafka", "k", &[("zookeeper", "zk")]), &existing).unwrap();
        assert_eq!(planned.len(), 1);
        assert_eq!(planned[0].dependencies["zookeeper"], "zk:2181");
    }

    #[test]
    fn a_dependency_of_the_wrong_service_is_refused() {
        let existing = BTreeMap::from([("zk".to_string(), ServiceKind::Kafka)]);
        let error = plan(&request("kafka", "k", &[("zookeeper", "zk")]), &existing).unwrap_err();
        assert!(error.to_string().contains("`zk` is a kafka"), "{error}");
    }

    #[test]
    fn kraft_brokers_need_no_zookeeper() {
        let planned = plan(
            &request("kafka", "k", &[("mode", "kraft")]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(planned.len(), 1);
    }

    #[test]
    fn the_topology_file_travels_in_the_config_map() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("flow.yaml");
        std::fs::write(&file, "name: x\n").unwrap();
        let existing = BTreeMap::from([("k".to_string(), ServiceKind::Kafka)]);
        let planned = plan(
            &request(
                "topology-runner",
                "t",
                &[("file", file.to_str().unwrap()), ("kafka", "k")],
            ),
            &existing,
        )
        .unwrap();
        assert_eq!(planned[0].files["topology.yaml"], "name: x\n");
        assert_eq!(planned[0].dependencies["kafka"], "k:9092");
        assert_eq!(planned[0].workload(), ("Deployment", "t"));
    }

    #[test]
    fn invalid_parameters_name_the_instance() {
        let error = plan(
            &request("zookeeper", "zk", &[("heap_mb", "1")]),
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("of `zk`"), "{error}");
    }
}
