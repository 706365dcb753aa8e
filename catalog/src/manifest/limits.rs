//! Size limits applied while a manifest is read and validated.

/// Bounds on a manifest's size and on the number and length of its parts.
///
/// Manifests arrive from untrusted publishers and peers, so every list and string is bounded.
/// [`Limits::default`] holds values that fit every real app seen so far with a wide margin;
/// a registry may tighten them. A manifest over a limit is refused with a problem naming the
/// field and the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest manifest document, in bytes (the `archy.toml` file or the JSON form). Default 256 KiB.
    pub max_manifest_bytes: usize,
    /// Largest icon file referenced by a local path, in bytes. Default 1 MiB.
    pub max_icon_bytes: u64,
    /// Most containers in one app. Default 16.
    pub max_containers: usize,
    /// Most declared volumes in one app. Default 32.
    pub max_volumes: usize,
    /// Most generated secrets in one app. Default 32.
    pub max_secrets: usize,
    /// Most dependencies on other apps. Default 32.
    pub max_dependencies: usize,
    /// Most requested permissions. Default 32.
    pub max_permissions: usize,
    /// Most categories. Default 8.
    pub max_categories: usize,
    /// Most entries in each of a container's lists (ports, volumes, tmpfs, binds, devices,
    /// depends_on, cap_add). Default 64.
    pub max_list_entries: usize,
    /// Most environment variables per container, plain, derived and secret together. Default 128.
    pub max_env_vars: usize,
    /// Most arguments in a command, entrypoint or healthcheck command. Default 128.
    pub max_args: usize,
    /// Longest title, in bytes. Default 64.
    pub max_title_len: usize,
    /// Longest summary, in bytes. Default 200.
    pub max_summary_len: usize,
    /// Longest description, in bytes. Default 16 KiB.
    pub max_description_len: usize,
    /// Longest of any other string (URLs, paths, image references, env values, arguments), in
    /// bytes. Default 4096.
    pub max_string_len: usize,
    /// Longest generated secret, in characters. Default 1024.
    pub max_secret_length: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_manifest_bytes: 256 * 1024,
            max_icon_bytes: 1024 * 1024,
            max_containers: 16,
            max_volumes: 32,
            max_secrets: 32,
            max_dependencies: 32,
            max_permissions: 32,
            max_categories: 8,
            max_list_entries: 64,
            max_env_vars: 128,
            max_args: 128,
            max_title_len: 64,
            max_summary_len: 200,
            max_description_len: 16 * 1024,
            max_string_len: 4096,
            max_secret_length: 1024,
        }
    }
}
