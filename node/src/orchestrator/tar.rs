//! A minimal ustar writer: enough for the few archives the orchestrator hands the engine (a
//! volume root with its owner set) and for building test images. No long names, no links.

/// One entry of an archive.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path inside the archive, at most 100 bytes (`./` for the extraction folder itself).
    pub path: String,
    /// File contents; `None` makes a directory.
    pub contents: Option<Vec<u8>>,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
}

impl Entry {
    /// A regular file owned by root.
    pub fn file(path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self { path: path.to_owned(), contents: Some(contents.into()), mode, uid: 0, gid: 0 }
    }

    /// A directory owned by root.
    pub fn dir(path: &str, mode: u32) -> Self {
        Self { path: path.to_owned(), contents: None, mode, uid: 0, gid: 0 }
    }

    /// The same entry with owner `uid:gid`.
    pub fn owned(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// The archive holding `entries`, in order.
///
/// # Panics
/// If a path is longer than 100 bytes (the callers use short, fixed paths).
pub fn build(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut header = [0u8; 512];
        assert!(e.path.len() <= 100, "tar path over 100 bytes: {}", e.path);
        header[..e.path.len()].copy_from_slice(e.path.as_bytes());
        let size = e.contents.as_ref().map_or(0, Vec::len);
        octal(&mut header[100..108], u64::from(e.mode));
        octal(&mut header[108..116], u64::from(e.uid));
        octal(&mut header[116..124], u64::from(e.gid));
        octal(&mut header[124..136], size as u64);
        octal(&mut header[136..148], 0);
        header[156] = if e.contents.is_some() { b'0' } else { b'5' };
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field read as spaces.
        header[148..156].copy_from_slice(b"        ");
        let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
        octal(&mut header[148..155], sum);
        header[155] = b' ';
        out.extend_from_slice(&header);
        if let Some(data) = &e.contents {
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Writes `value` as zero-padded octal followed by NUL into `field`.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_tar_reads_it() {
        let archive = build(&[Entry::dir("www/", 0o755).owned(1000, 1000), Entry::file("www/a.txt", "hi\n", 0o644)]);
        assert_eq!(archive.len() % 512, 0);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.tar");
        std::fs::write(&path, &archive).expect("write");
        let out = std::process::Command::new("tar").arg("-tvf").arg(&path).output().expect("tar runs");
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(listing.contains("1000/1000") && listing.contains("www/a.txt"), "{listing}");
    }
}
