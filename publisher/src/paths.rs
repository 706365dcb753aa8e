//! Default locations.

use std::path::PathBuf;

/// The default publisher key: `$ARCHY_KEY`, else `$XDG_CONFIG_HOME/archy/publisher.key`, else
/// `~/.config/archy/publisher.key`.
pub fn default_key_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ARCHY_KEY") {
        return PathBuf::from(path);
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    config.join("archy").join("publisher.key")
}
