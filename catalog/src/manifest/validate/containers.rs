//! `[[containers]]`: names, images, commands, healthchecks, limits and start order. The
//! environment, ports, mounts and relaxations of the defaults of a container have files of their
//! own.

use std::collections::HashMap;

use super::{Context, Validator};
use crate::manifest::raw::{RawArchive, RawContainer, RawHealthcheck, RawImage};
use crate::manifest::{Container, Healthcheck, Image, ImageError, Name, PinnedImage, RestartPolicy, User, paths};

const IMAGE_FIX: &str =
    "use name@sha256:<64 hex> or an archive target { target = \"<TUF target path>\", image_id = \"sha256:<64 hex>\" }";

impl Validator<'_> {
    /// Rule: container names are valid and unique in the app.
    pub(super) fn container_names(&mut self, containers: &[RawContainer]) -> Vec<Option<Name>> {
        let mut seen: HashMap<Name, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, c) in containers.iter().enumerate() {
            let field = format!("containers[{i}].name");
            let name = self.name(&field, &c.name, "container");
            if let Some(name) = &name
                && let Some(first) = seen.insert(name.clone(), i)
            {
                self.p.push(
                    &field,
                    format!("container name `{name}` is already used by containers[{first}]"),
                    "give each container its own name",
                );
                // Keep the first index for later messages.
                seen.insert(name.clone(), first);
            }
            out.push(name);
        }
        out
    }

    pub(super) fn container(&mut self, i: usize, c: &RawContainer, cx: &Context<'_>) -> Option<Container> {
        let base = format!("containers[{i}]");
        let max_list = self.limits.max_list_entries;
        for (field, len) in [
            ("ports", c.ports.len()),
            ("volumes", c.volumes.len()),
            ("tmpfs", c.tmpfs.len()),
            ("binds", c.binds.len()),
            ("devices", c.devices.len()),
            ("depends_on", c.depends_on.len()),
            ("cap_add", c.cap_add.len()),
        ] {
            if len > max_list {
                self.p.push(
                    format!("{base}.{field}"),
                    format!("{len} entries, over the limit of {max_list}"),
                    "use fewer entries",
                );
            }
        }
        let image = self.image(&base, c.image.as_ref());
        let command = self.args(&format!("{base}.command"), c.command.as_deref());
        let entrypoint = self.args(&format!("{base}.entrypoint"), c.entrypoint.as_deref());
        let (env, derived_env, secret_env) = self.env(&base, c, cx);
        let ports = self.ports(&base, &c.ports, c.host_network);
        let mut targets: HashMap<String, String> = HashMap::new();
        let volumes = self.mounts(&base, &c.volumes, cx, &mut targets);
        let tmpfs = self.tmpfs(&base, &c.tmpfs, &mut targets);
        let binds = self.binds(&base, &c.binds, cx, &mut targets);
        let devices = self.devices(&base, &c.devices, cx);
        let user = match c.user.as_deref().map(|u| (u, u.parse::<User>())) {
            None => Some(None),
            Some((_, Ok(user))) => Some(Some(user)),
            Some((u, Err(_))) => {
                self.p.push(
                    format!("{base}.user"),
                    format!("`{u}` is not a numeric uid[:gid]"),
                    "use numbers like \"1000\" or \"1000:1000\"",
                );
                None
            }
        };
        let healthcheck = match &c.healthcheck {
            None => Some(None),
            Some(h) => self.healthcheck(&format!("{base}.healthcheck"), h).map(Some),
        };
        let restart = match c.restart.as_deref().map(|r| (r, r.parse::<RestartPolicy>())) {
            None => Some(RestartPolicy::default()),
            Some((_, Ok(r))) => Some(r),
            Some((r, Err(_))) => {
                self.p.push(
                    format!("{base}.restart"),
                    format!("unknown restart policy `{r}`"),
                    "use no, on-failure, always or unless-stopped",
                );
                None
            }
        };
        let mut limits_ok = true;
        if let Some(mib) = c.memory_mib
            && mib < 6
        {
            self.p.push(
                format!("{base}.memory_mib"),
                format!("{mib} MiB is below Docker's minimum of 6 MiB"),
                "use at least 6, or leave it out",
            );
            limits_ok = false;
        }
        if c.cpus_milli == Some(0) {
            self.p.push(
                format!("{base}.cpus_milli"),
                "a CPU limit of 0 would stop the container",
                "use thousandths of a CPU, e.g. 500 for half a CPU, or leave it out",
            );
            limits_ok = false;
        }
        let depends_on = self.depends_on(&base, i, &c.depends_on, cx);
        let relaxations = self.relaxations(&base, c, cx);

        if !limits_ok {
            return None;
        }
        let relaxations = relaxations?;
        Some(Container {
            name: cx.container_names.get(i).cloned().flatten()?,
            image: image?,
            command: command?,
            entrypoint: entrypoint?,
            env: env?,
            derived_env: derived_env?,
            secret_env: secret_env?,
            ports: ports?,
            volumes: volumes?,
            tmpfs: tmpfs?,
            binds: binds?,
            devices: devices?,
            user: user?,
            data_uid: c.data_uid,
            healthcheck: healthcheck?,
            restart: restart?,
            memory_mib: c.memory_mib,
            cpus_milli: c.cpus_milli,
            depends_on: depends_on?,
            privileged: c.privileged,
            host_network: c.host_network,
            cap_add: relaxations.cap_add,
            pids_limit: relaxations.pids_limit,
            no_new_privileges: relaxations.no_new_privileges,
        })
    }

    /// Rule: images are pinned by digest, or are archive targets with an image id.
    fn image(&mut self, base: &str, image: Option<&RawImage>) -> Option<Image> {
        let field = format!("{base}.image");
        match image {
            None => {
                self.missing(&field, IMAGE_FIX);
                None
            }
            Some(RawImage::Reference(s)) => {
                if !self.string(&field, s) {
                    return None;
                }
                match s.parse::<PinnedImage>() {
                    Ok(image) => Some(Image::Pinned(image)),
                    Err(ImageError::NotPinned(_)) => {
                        self.p.push(&field, format!("image `{s}` is not pinned by digest"), IMAGE_FIX);
                        None
                    }
                    Err(e) => {
                        self.p.push(&field, e.to_string(), IMAGE_FIX);
                        None
                    }
                }
            }
            Some(RawImage::Archive(RawArchive { target, image_id })) => {
                let target_field = format!("{field}.target");
                let target = self
                    .required(
                        &target_field,
                        target,
                        "add target = \"<app-id>/<file>.tar\", the image archive's TUF target path",
                    )
                    .filter(|t| self.string(&target_field, t))
                    .filter(|t| match paths::check_relative(t) {
                        Ok(()) => true,
                        Err((problem, _)) => {
                            self.p.push(
                                &target_field,
                                problem,
                                "use a TUF target path like `hello-web/hello-web.oci.tar`",
                            );
                            false
                        }
                    });
                let id_field = format!("{field}.image_id");
                let image_id = self
                    .required(&id_field, image_id, "add image_id = \"sha256:<64 hex>\" (build.sh prints it)")
                    .and_then(|s| match s.parse() {
                        Ok(d) => Some(d),
                        Err(e) => {
                            self.p.push(
                                &id_field,
                                format!("{e}"),
                                "use the id `docker image inspect --format {{.Id}}` prints",
                            );
                            None
                        }
                    });
                Some(Image::Archive { target: target?.to_owned(), image_id: image_id? })
            }
        }
    }

    fn args(&mut self, field: &str, args: Option<&[String]>) -> Option<Option<Vec<String>>> {
        let Some(args) = args else { return Some(None) };
        let mut ok = true;
        if args.is_empty() {
            self.p.push(field, "the list is empty", "give the program and its arguments, or leave the field out");
            ok = false;
        }
        if args.len() > self.limits.max_args {
            self.p.push(
                field,
                format!("{} arguments, over the limit of {}", args.len(), self.limits.max_args),
                "use fewer arguments",
            );
            ok = false;
        }
        for (j, a) in args.iter().enumerate() {
            ok &= self.string(&format!("{field}[{j}]"), a);
        }
        ok.then(|| Some(args.to_vec()))
    }

    fn healthcheck(&mut self, field: &str, h: &RawHealthcheck) -> Option<Healthcheck> {
        let command = match self.args(&format!("{field}.command"), h.command.as_deref()) {
            Some(Some(command)) => Some(command),
            Some(None) => {
                self.missing(
                    &format!("{field}.command"),
                    "add command = [\"program\", \"arg\"…]; exit status 0 means healthy",
                );
                None
            }
            None => None,
        };
        let mut secs = |name: &str, v: Option<u32>, default: u32, min: u32| -> Option<u32> {
            let value = v.unwrap_or(default);
            if value < min || value > 86_400 {
                self.p.push(
                    format!("{field}.{name}"),
                    format!("{value} is outside {min}..=86400"),
                    format!("use a whole number between {min} and 86400"),
                );
                None
            } else {
                Some(value)
            }
        };
        let interval_secs = secs("interval_secs", h.interval_secs, Healthcheck::DEFAULT_INTERVAL_SECS, 1);
        let timeout_secs = secs("timeout_secs", h.timeout_secs, Healthcheck::DEFAULT_TIMEOUT_SECS, 1);
        let start_period_secs =
            secs("start_period_secs", h.start_period_secs, Healthcheck::DEFAULT_START_PERIOD_SECS, 0);
        let retries = secs("retries", h.retries, Healthcheck::DEFAULT_RETRIES, 1);
        Some(Healthcheck {
            command: command?,
            interval_secs: interval_secs?,
            timeout_secs: timeout_secs?,
            start_period_secs: start_period_secs?,
            retries: retries?,
        })
    }

    /// Rule: depends_on names other containers of the app, each once.
    fn depends_on(&mut self, base: &str, i: usize, raw: &[String], cx: &Context<'_>) -> Option<Vec<Name>> {
        let mut out: Vec<Name> = Vec::new();
        let mut ok = true;
        for (j, d) in raw.iter().enumerate() {
            let field = format!("{base}.depends_on[{j}]");
            let position = cx.container_names.iter().position(|n| n.as_ref().is_some_and(|n| n.as_str() == d));
            match position {
                None => {
                    self.p.push(
                        &field,
                        format!("there is no container `{d}` in this app"),
                        "name a container of this app",
                    );
                    ok = false;
                }
                Some(p) if p == i => {
                    self.p.push(&field, "a container cannot depend on itself", "remove it");
                    ok = false;
                }
                Some(p) => match cx.container_names[p].clone() {
                    Some(name) if out.contains(&name) => {
                        self.p.push(&field, format!("`{d}` is listed twice"), "remove the duplicate");
                        ok = false;
                    }
                    Some(name) => out.push(name),
                    None => ok = false,
                },
            }
        }
        ok.then_some(out)
    }

    /// Rule: depends_on has no cycles (so there is a start order).
    pub(super) fn depends_on_cycles(&mut self, containers: &[RawContainer], names: &[Option<Name>]) {
        let index = |d: &str| names.iter().position(|n| n.as_ref().is_some_and(|n| n.as_str() == d));
        // 0 = unvisited, 1 = on the current path, 2 = done.
        let mut state = vec![0u8; containers.len()];
        let mut path: Vec<usize> = Vec::new();
        for start in 0..containers.len() {
            if state[start] == 0 {
                self.visit(start, containers, &index, &mut state, &mut path);
            }
        }
    }

    fn visit(
        &mut self,
        i: usize,
        containers: &[RawContainer],
        index: &dyn Fn(&str) -> Option<usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
    ) {
        state[i] = 1;
        path.push(i);
        for (j, d) in containers[i].depends_on.iter().enumerate() {
            let Some(next) = index(d) else { continue };
            if next == i {
                continue; // reported as self-dependency
            }
            match state[next] {
                0 => self.visit(next, containers, index, state, path),
                1 => {
                    let from = path.iter().position(|&p| p == next).unwrap_or(0);
                    let name = |k: usize| containers[k].name.clone().unwrap_or_default();
                    let mut cycle: Vec<String> = path[from..].iter().map(|&k| name(k)).collect();
                    cycle.push(name(next));
                    self.p.push(
                        format!("containers[{i}].depends_on[{j}]"),
                        format!("depends_on forms a cycle: {}", cycle.join(" -> ")),
                        "remove one of the dependencies so the containers have a start order",
                    );
                }
                _ => {}
            }
        }
        path.pop();
        state[i] = 2;
    }
}
