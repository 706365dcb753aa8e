//! iroh endpoints as archy binds them: relays disabled, no address lookup, direct addresses only,
//! so nothing ever reaches public infrastructure.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! let dir = tempfile::tempdir()?;
//! let secret = archy_net::load_or_create_secret(&dir.path().join("iroh.key"))?;
//! let endpoint = archy_net::bind_endpoint(secret.clone(), "127.0.0.1:0".parse()?).await?;
//! let me = archy_net::local_peer_addr(&endpoint)?;
//! assert!(me.addr.ip().is_loopback());
//! // The key file keeps the endpoint id across restarts.
//! assert_eq!(archy_net::load_or_create_secret(&dir.path().join("iroh.key"))?.public(), me.id);
//! endpoint.close().await;
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use iroh::endpoint::presets;
use iroh::{Endpoint, RelayMode, SecretKey};

use crate::PeerAddr;

/// Loads the endpoint's secret key from `path`, creating it (0600) on first use, so the
/// endpoint id stays the same across restarts.
pub fn load_or_create_secret(path: &Path) -> anyhow::Result<SecretKey> {
    // iroh endpoint keys are Ed25519, so they are kept in archy's key file format (0600).
    if !path.exists() {
        catalog::keyfile::write_new(path, &catalog::keys::SigningKey::generate())?;
    }
    let key = catalog::keyfile::read(path)?;
    Ok(SecretKey::from_bytes(&key.seed()))
}

/// Binds an iroh endpoint on `bind` with relays disabled and no address lookup: only direct
/// addresses, never traffic to public infrastructure.
pub async fn bind_endpoint(secret: SecretKey, bind: SocketAddr) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| anyhow::anyhow!("bad bind address {bind}: {e}"))?
        .bind()
        .await
        .map_err(|e| anyhow::anyhow!("binding iroh endpoint on {bind}: {e}"))?;
    Ok(endpoint)
}

/// The address peers can dial: the endpoint id with its first bound socket.
pub fn local_peer_addr(endpoint: &Endpoint) -> anyhow::Result<PeerAddr> {
    let addr = endpoint.bound_sockets().into_iter().next().context("the endpoint has no bound socket")?;
    Ok(PeerAddr { id: endpoint.id(), addr })
}
