//! Path rules: relative paths inside the app folder or catalog, and absolute paths in a
//! container or on the host.
//!
//! Every rule refuses `..` and `.` components, empty components (`a//b`), a trailing `/`,
//! backslashes and control characters, so a path means exactly what it says and cannot climb
//! out of where it is meant to point.

/// Checks a `/`-separated relative path (an icon file in the app folder, a TUF target path).
/// Returns the problem and its fix.
pub(crate) fn check_relative(path: &str) -> Result<(), (String, &'static str)> {
    const FIX: &str = "use a relative path like `icons/app.svg` with no `..`, `.` or empty parts";
    if path.is_empty() {
        return Err(("path is empty".into(), FIX));
    }
    if path.starts_with('/') {
        return Err((format!("`{path}` is absolute where a relative path is required"), FIX));
    }
    common(path).map_err(|problem| (problem, FIX))
}

/// Checks an absolute, normalized path such as a mount target in a container or a host path.
pub(crate) fn check_absolute(path: &str) -> Result<(), (String, &'static str)> {
    const FIX: &str = "use an absolute path like `/data` with no `..`, `.` or empty parts";
    if !path.starts_with('/') {
        return Err((format!("`{path}` is not an absolute path"), FIX));
    }
    if path == "/" {
        return Err(("`/` is not allowed here".into(), FIX));
    }
    common(&path[1..]).map_err(|problem| (problem, FIX))
}

fn common(rest: &str) -> Result<(), String> {
    if rest.chars().any(|c| c.is_control()) {
        return Err("path holds a control character".into());
    }
    if rest.contains('\\') {
        return Err("path holds a backslash".into());
    }
    for part in rest.split('/') {
        match part {
            ".." => return Err("path holds a `..` component".into()),
            "." => return Err("path holds a `.` component".into()),
            "" => return Err("path holds an empty component (`//` or a trailing `/`)".into()),
            _ => {}
        }
    }
    Ok(())
}

/// The Docker engine's socket paths: a bind of either, or of a folder holding one, hands the
/// container control of the engine (root on the host).
pub(crate) const DOCKER_SOCKETS: [&str; 2] = ["/var/run/docker.sock", "/run/docker.sock"];

/// Whether binding host path `path` exposes the Docker socket: it is a socket path or one of
/// its parent folders (`/`, `/run`, `/var`, `/var/run`).
pub(crate) fn exposes_docker_socket(path: &str) -> bool {
    path == "/"
        || DOCKER_SOCKETS
            .iter()
            .any(|sock| *sock == path || sock.strip_prefix(path).is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        for ok in ["icon.svg", "icons/app.png", "a/b..c/d"] {
            assert!(check_relative(ok).is_ok(), "{ok}");
        }
        for bad in ["", "/etc/passwd", "../icon.svg", "a/../../b", "./icon", "a//b", "a/", "a\\b", "a\u{0}b"] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn absolute_paths() {
        for ok in ["/data", "/var/lib/app", "/srv/a..b"] {
            assert!(check_absolute(ok).is_ok(), "{ok}");
        }
        for bad in ["data", "/", "/data/..", "/a/./b", "//a", "/a/", "/a\nb"] {
            assert!(check_absolute(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn docker_socket_and_its_parents() {
        for yes in ["/var/run/docker.sock", "/run/docker.sock", "/var/run", "/run", "/var", "/"] {
            assert!(exposes_docker_socket(yes), "{yes}");
        }
        for no in ["/var/lib", "/srv", "/var/run/docker.sock.d", "/ru"] {
            assert!(!exposes_docker_socket(no), "{no}");
        }
    }
}
