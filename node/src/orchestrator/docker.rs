//! The Docker Engine API through `bollard`: the handful of calls the orchestrator makes, with
//! errors that say what was being done. Works against Podman's Docker-compatible socket too.

use std::collections::HashMap;
use std::path::Path;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummaryStateEnum, EventMessage, Ipam, IpamConfig, Network,
    NetworkCreateRequest, Volume, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder, ImportImageOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};

use super::Error;
use catalog::manifest::{LABEL_APP, LABEL_MANAGED, Namespace};

/// A container as the engine lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedContainer {
    /// Engine id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// `running`, `exited`, `created`…
    pub state: ContainerSummaryStateEnum,
    /// The engine's status text, e.g. `Up 3 minutes (healthy)`, `Exited (1) 2 seconds ago`.
    pub status: String,
}

impl ObservedContainer {
    /// The health the status text reports, if the container has a healthcheck.
    pub fn health(&self) -> Option<&'static str> {
        if self.status.contains("(healthy)") {
            Some("healthy")
        } else if self.status.contains("(unhealthy)") {
            Some("unhealthy")
        } else if self.status.contains("(health: starting)") {
            Some("starting")
        } else {
            None
        }
    }

    /// The exit code in an `Exited (N) …` status.
    pub fn exit_code(&self) -> Option<i64> {
        let rest = self.status.strip_prefix("Exited (")?;
        rest.split(')').next()?.parse().ok()
    }
}

/// A connection to the engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    socket: String,
}

fn docker_err(context: impl Into<String>) -> impl FnOnce(BollardError) -> Error {
    let context = context.into();
    move |source| Error::Docker { context, source: Box::new(source) }
}

/// Where app networks get their subnets once the engine's address pools are used up.
pub const FALLBACK_POOL: &str = "10.213.0.0/16";
const FALLBACK_PREFIX: &str = "10.213";

/// The engine refused a network because its address pools are used up.
fn pools_exhausted(e: &BollardError) -> bool {
    match e {
        BollardError::DockerResponseServerError { message, .. } => {
            message.contains("fully subnetted") || message.contains("non-overlapping IPv4 address pool")
        }
        _ => false,
    }
}

/// The engine answered 404.
pub fn is_not_found(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 404, .. })
}

fn is_conflict(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 409, .. })
}

/// Filters `{"label": ["k=v", …]}`.
fn label_filter(labels: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), labels.iter().map(|(k, v)| format!("{k}={v}")).collect())])
}

impl Engine {
    /// Connects to the engine at `socket` (a path or `unix://` URL) and checks it answers.
    pub async fn connect(socket: &str) -> Result<Self, Error> {
        let unreachable = |reason: String| Error::EngineUnreachable { socket: socket.to_owned(), reason };
        let docker = Docker::connect_with_unix(socket, 120, bollard::API_DEFAULT_VERSION)
            .map_err(|e| unreachable(e.to_string()))?
            .negotiate_version()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        docker.ping().await.map_err(|e| unreachable(e.to_string()))?;
        Ok(Self { docker, socket: socket.trim_start_matches("unix://").to_owned() })
    }

    /// Whether the engine answers now (`GET /_ping`), with a short deadline so that an engine
    /// that hangs counts as unreachable.
    pub async fn ping(&self) -> Result<(), Error> {
        let unreachable = |reason: String| Error::EngineUnreachable { socket: self.socket.clone(), reason };
        match tokio::time::timeout(std::time::Duration::from_secs(10), self.docker.ping()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable("no answer within 10 s".into())),
        }
    }

    /// The underlying client (for tests and benchmarks that compare with raw calls).
    pub fn raw(&self) -> &Docker {
        &self.docker
    }

    /// The socket path.
    pub fn socket(&self) -> &str {
        &self.socket
    }

    /// Containers carrying all of `labels`, running or not.
    pub async fn containers(&self, labels: &[(&str, &str)]) -> Result<Vec<ObservedContainer>, Error> {
        let options = ListContainersOptionsBuilder::new().all(true).filters(&label_filter(labels)).build();
        let list = self.docker.list_containers(Some(options)).await.map_err(docker_err("listing containers"))?;
        Ok(list
            .into_iter()
            .map(|c| ObservedContainer {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                state: c.state.unwrap_or(ContainerSummaryStateEnum::EMPTY),
                status: c.status.unwrap_or_default(),
            })
            .collect())
    }

    /// Inspects a container by name or id; `None` if there is none.
    pub async fn inspect(&self, name: &str) -> Result<Option<ContainerInspectResponse>, Error> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(format!("inspecting container {name}"))(e)),
        }
    }

    /// Creates a container; returns its id.
    pub async fn create(&self, name: &str, body: ContainerCreateBody) -> Result<String, Error> {
        let options = CreateContainerOptionsBuilder::new().name(name).build();
        let r = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(docker_err(format!("creating container {name}")))?;
        Ok(r.id)
    }

    /// Creates a container the engine names (a helper that is never started); returns its id.
    pub async fn create_unnamed(&self, body: ContainerCreateBody) -> Result<String, Error> {
        let r = self
            .docker
            .create_container(None::<bollard::query_parameters::CreateContainerOptions>, body)
            .await
            .map_err(docker_err("creating a helper container"))?;
        Ok(r.id)
    }

    /// Starts a container (a running one is left as it is).
    pub async fn start(&self, name: &str) -> Result<(), Error> {
        self.docker.start_container(name, None).await.map_err(docker_err(format!("starting container {name}")))
    }

    /// Stops a container, giving it `timeout_secs` before it is killed.
    pub async fn stop(&self, name: &str, timeout_secs: i32) -> Result<(), Error> {
        let options = StopContainerOptionsBuilder::new().t(timeout_secs).build();
        match self.docker.stop_container(name, Some(options)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r.map_err(docker_err(format!("stopping container {name}"))),
        }
    }

    /// Removes a container (stopping it first); a missing one is fine. Never its volumes.
    pub async fn remove(&self, name: &str) -> Result<(), Error> {
        let options = RemoveContainerOptionsBuilder::new().force(true).v(false).build();
        match self.docker.remove_container(name, Some(options)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            // "removal already in progress"
            Err(e) if is_conflict(&e) => Ok(()),
            r => r.map_err(docker_err(format!("removing container {name}"))),
        }
    }

    /// Renames a container (its id, mounts and state stay as they are).
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), Error> {
        let options = RenameContainerOptionsBuilder::new().name(name).build();
        self.docker
            .rename_container(id, options)
            .await
            .map_err(docker_err(format!("renaming container {id} to {name}")))
    }

    /// The labels of the object named exactly `name` in namespace `ns`; `None` if there is none.
    pub async fn labels_of(&self, ns: Namespace, name: &str) -> Result<Option<HashMap<String, String>>, Error> {
        let found = match ns {
            Namespace::Containers => self.docker.inspect_container(name, None).await.map(|c| {
                let named = c.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(name);
                named.then(|| c.config.and_then(|c| c.labels).unwrap_or_default())
            }),
            Namespace::Networks => self
                .docker
                .inspect_network(name, None)
                .await
                .map(|n| (n.name.as_deref() == Some(name)).then(|| n.labels.unwrap_or_default())),
            Namespace::Volumes => self.docker.inspect_volume(name).await.map(|v| (v.name == name).then_some(v.labels)),
        };
        match found {
            Ok(labels) => Ok(labels),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(docker_err(format!("looking up {name}"))(e)),
        }
    }

    /// Networks carrying all of `labels`.
    pub async fn networks(&self, labels: &[(&str, &str)]) -> Result<Vec<Network>, Error> {
        let options = ListNetworksOptionsBuilder::new().filters(&label_filter(labels)).build();
        self.docker.list_networks(Some(options)).await.map_err(docker_err("listing networks"))
    }

    /// Creates a bridge network; returns its id. When the engine's own address pools are used up
    /// (Docker's defaults allow about 30 bridge networks), the network gets the first free /24 of
    /// [`FALLBACK_POOL`] instead, so a node can run more apps than the engine's defaults allow.
    pub async fn create_network(&self, name: &str, labels: HashMap<String, String>) -> Result<String, Error> {
        let request = NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        };
        match self.docker.create_network(request.clone()).await {
            Ok(r) => Ok(r.id),
            Err(e) if pools_exhausted(&e) => {
                let subnet = self.free_subnet().await?;
                tracing::info!(network = name, %subnet, "engine address pools used up; using archy's own subnet");
                let request = NetworkCreateRequest {
                    ipam: Some(Ipam {
                        config: Some(vec![IpamConfig { subnet: Some(subnet), ..Default::default() }]),
                        ..Default::default()
                    }),
                    ..request
                };
                let r = self
                    .docker
                    .create_network(request)
                    .await
                    .map_err(docker_err(format!("creating network {name}")))?;
                Ok(r.id)
            }
            Err(e) => Err(docker_err(format!("creating network {name}"))(e)),
        }
    }

    /// The first /24 of [`FALLBACK_POOL`] that no network on the engine uses.
    async fn free_subnet(&self) -> Result<String, Error> {
        let all = self.docker.list_networks(None).await.map_err(docker_err("listing networks"))?;
        let used: std::collections::HashSet<String> = all
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| c.subnet.clone())
            .collect();
        (0..=255u8)
            .map(|i| format!("{FALLBACK_PREFIX}.{i}.0/24"))
            .find(|s| !used.contains(s))
            .ok_or_else(|| Error::NotAvailable(format!("no free /24 left in {FALLBACK_POOL} for another app network")))
    }

    /// Removes a network by id or name; a missing one is fine.
    pub async fn remove_network(&self, id: &str) -> Result<(), Error> {
        match self.docker.remove_network(id).await {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r.map_err(docker_err(format!("removing network {id}"))),
        }
    }

    /// Volumes carrying all of `labels`.
    pub async fn volumes(&self, labels: &[(&str, &str)]) -> Result<Vec<Volume>, Error> {
        let options = ListVolumesOptionsBuilder::new().filters(&label_filter(labels)).build();
        let r = self.docker.list_volumes(Some(options)).await.map_err(docker_err("listing volumes"))?;
        Ok(r.volumes.unwrap_or_default())
    }

    /// Creates a volume, or returns the existing one of that name (the engine's create is
    /// idempotent by name, which is what keeps data across reinstalls).
    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<Volume, Error> {
        let request = VolumeCreateRequest { name: Some(name.to_owned()), labels: Some(labels), ..Default::default() };
        self.docker.create_volume(request).await.map_err(docker_err(format!("creating volume {name}")))
    }

    /// Where the engine keeps volume `name` on its host.
    pub async fn volume_mountpoint(&self, name: &str) -> Result<String, Error> {
        let v = self.docker.inspect_volume(name).await.map_err(docker_err(format!("inspecting volume {name}")))?;
        Ok(v.mountpoint)
    }

    /// Removes a volume; a missing one is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), Error> {
        let options = RemoveVolumeOptionsBuilder::new().force(false).build();
        match self.docker.remove_volume(name, Some(options)).await {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r.map_err(docker_err(format!("removing volume {name}"))),
        }
    }

    /// Whether the engine has the image `reference` (id or name).
    pub async fn has_image(&self, reference: &str) -> Result<bool, Error> {
        match self.docker.inspect_image(reference).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(docker_err(format!("inspecting image {reference}"))(e)),
        }
    }

    /// Removes an image (by id); one that is gone already is fine.
    pub async fn remove_image(&self, id: &str) -> Result<(), Error> {
        match self.docker.remove_image(id, None::<bollard::query_parameters::RemoveImageOptions>, None).await {
            Err(e) if is_not_found(&e) => Ok(()),
            r => r.map(|_| ()).map_err(docker_err(format!("removing image {id}"))),
        }
    }

    /// Pulls a digest-pinned reference.
    pub async fn pull(&self, reference: &str) -> Result<(), Error> {
        let options = CreateImageOptionsBuilder::new().from_image(reference).build();
        self.docker
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(docker_err(format!("pulling {reference}")))
    }

    /// `docker load` of an image archive; returns what the engine reported loading.
    pub async fn load(&self, archive: &Path) -> Result<Vec<String>, Error> {
        let file =
            tokio::fs::File::open(archive).await.map_err(|source| Error::Io { path: archive.to_owned(), source })?;
        let stream = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024);
        let options = ImportImageOptionsBuilder::new().quiet(true).build();
        let infos: Vec<_> = self
            .docker
            .import_image_stream(options, stream, None)
            .try_collect()
            .await
            .map_err(docker_err(format!("loading image archive {}", archive.display())))?;
        Ok(infos.into_iter().filter_map(|i| i.stream).map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
    }

    /// Extracts `tar` into `path` of a (created, not necessarily started) container.
    pub async fn upload(&self, container: &str, path: &str, tar: Vec<u8>) -> Result<(), Error> {
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        self.docker
            .upload_to_container(container, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(docker_err(format!("setting up {path} in {container}")))
    }

    /// Streams a tar of `path` in a container (created, not necessarily started) into the file
    /// `to` (0600), fsynced; returns its size. The tar names `path`'s last component first. A
    /// tar that grows past `limit` bytes is abandoned and its file removed: `Ok(None)`.
    pub async fn download_to_file(
        &self,
        container: &str,
        path: &str,
        to: &Path,
        limit: u64,
    ) -> Result<Option<u64>, Error> {
        use tokio::io::AsyncWriteExt as _;
        let io = |source| Error::Io { path: to.to_owned(), source };
        let options = bollard::query_parameters::DownloadFromContainerOptionsBuilder::new().path(path).build();
        let mut stream = self.docker.download_from_container(container, Some(options));
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(to).await.map_err(io)?;
        // Large writes: each write of a tokio file is a trip to the blocking pool.
        let mut file = tokio::io::BufWriter::with_capacity(4 << 20, file);
        let mut bytes = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(docker_err(format!("copying {path} out of {container}")))?;
            bytes += chunk.len() as u64;
            if bytes > limit {
                drop(file);
                let _ = tokio::fs::remove_file(to).await;
                return Ok(None);
            }
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        file.get_ref().sync_all().await.map_err(io)?;
        Ok(Some(bytes))
    }

    /// Extracts the tar file `from` into `path` of a (created, not necessarily started)
    /// container, streaming it; owners and modes come from the tar.
    pub async fn upload_file(&self, container: &str, path: &str, from: &Path) -> Result<(), Error> {
        let file = tokio::fs::File::open(from).await.map_err(|source| Error::Io { path: from.to_owned(), source })?;
        let options = UploadToContainerOptionsBuilder::new().path(path).build();
        let body = bollard::body_try_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 20));
        self.docker
            .upload_to_container(container, Some(options), body)
            .await
            .map_err(docker_err(format!("copying {} into {path} of {container}", from.display())))
    }

    /// The container's log lines (stdout and stderr), the last `tail` of them.
    pub fn logs(
        &self,
        container: &str,
        tail: Option<u64>,
        follow: bool,
    ) -> impl Stream<Item = Result<bollard::container::LogOutput, Error>> + use<> {
        let tail = tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
        let options = LogsOptionsBuilder::new().stdout(true).stderr(true).follow(follow).tail(&tail).build();
        let context = format!("reading logs of {container}");
        self.docker.logs(container, Some(options)).map(move |r| r.map_err(docker_err(context.clone())))
    }

    /// The engine's events about archy-managed containers, networks and volumes.
    pub fn events(&self) -> impl Stream<Item = Result<EventMessage, Error>> + use<> {
        let filters = label_filter(&[(LABEL_MANAGED, "true")]);
        let options = EventsOptionsBuilder::new().filters(&filters).build();
        self.docker.events(Some(options)).map(|r| r.map_err(docker_err("watching engine events")))
    }

    /// Labels `app`'s objects carry, for filters.
    pub fn app_filter<'a>(node: &'a str, app: &'a str) -> [(&'a str, &'a str); 3] {
        [(LABEL_MANAGED, "true"), (super::LABEL_NODE, node), (LABEL_APP, app)]
    }
}
