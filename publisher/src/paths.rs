//! Default locations.

use std::path::PathBuf;

/// The default publisher key: `$ARCHY_KEY`, else `$XDG_CONFIG_HOME/archy/publisher.key`, else
/// `~/.config/archy/publisher.key`.
pub fn default_key_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ARCHY_KEY") {
        return PathBuf::from(path);
    }
    config_dir().join("archy").join("publisher.key")
}

/// The default Nostr key, beside the publisher key: `$ARCHY_NOSTR_KEY`, else
/// `$XDG_CONFIG_HOME/archy/nostr.key`, else `~/.config/archy/nostr.key`.
pub fn default_nostr_key_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ARCHY_NOSTR_KEY") {
        return PathBuf::from(path);
    }
    config_dir().join("archy").join("nostr.key")
}

fn config_dir() -> PathBuf {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."))
}
