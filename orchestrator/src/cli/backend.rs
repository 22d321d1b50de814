//! `--backend` and the options of each backend, shared by every command that starts or
//! finds services; [`BackendArgs::connect`] hands back the runtime.

use std::sync::Arc;

use clap::{Args, FromArgMatches};
use weir::home::WeirHome;
use weir::runtime::kubernetes::KubeOptions;
use weir::runtime::{self, Backend, Runtime, RuntimeConfig};

#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Where services run: processes on this machine, or the cluster the kubeconfig names
    /// (KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long, value_enum, default_value_t = Backend::Local)]
    pub backend: Backend,
    /// The namespace of standalone instances on Kubernetes (runs get one of their own).
    #[arg(long, default_value = "weir")]
    pub namespace: String,
    /// The image carrying `weir`, for Kubernetes Jobs and the services `weir` runs.
    #[arg(long, env = "WEIR_IMAGE", default_value = weir_catalog::catalog::WEIR_IMAGE)]
    pub weir_image: String,
}

impl Default for BackendArgs {
    /// What the flags say when none is given.
    fn default() -> Self {
        let command = BackendArgs::augment_args(clap::Command::new("weir"));
        BackendArgs::from_arg_matches(&command.get_matches_from(["weir"]))
            .expect("the defaults parse")
    }
}

impl BackendArgs {
    pub async fn connect(&self) -> anyhow::Result<Arc<dyn Runtime>> {
        Ok(runtime::connect(self.config()?).await?)
    }

    pub fn config(&self) -> anyhow::Result<RuntimeConfig> {
        Ok(RuntimeConfig {
            backend: self.backend,
            home: WeirHome::from_env(),
            weir_exe: std::env::current_exe()?,
            kubernetes: KubeOptions {
                weir_image: self.weir_image.clone(),
                standalone_namespace: self.namespace.clone(),
            },
        })
    }
}
