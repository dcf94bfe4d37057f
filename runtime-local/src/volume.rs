//! Each namespace's checkouts on a filesystem of their own: an ext4 image (sparse: it costs
//! the disk only what is written) loop-mounted at `runtime/<ns>`, as big as the
//! namespace's `checkout-size` quota and with as many inodes as its `checkout-files`.
//! The kernel then bounds what a tenant's services and builds write, bytes and files as
//! the filesystem charges them, at the moment they write: no walk of names can be fooled
//! (paths past `PATH_MAX`, a hundred thousand empty files) and nothing overshoots between
//! two checks. Chosen over project quotas, which the data dir's filesystem may not have
//! (ext4 needs them at `mkfs`, XFS at mount), and over tmpfs, which would keep every
//! checkout in memory.
//!
//! Inside the sandbox, `/app` is a folder of that filesystem, so the mount table shows a
//! path within it, never the data dir's.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a volume, or a folder on it, holds against its quota; a volume also says how
/// much more its tenant may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fill {
    pub bytes: u64,
    pub files: u64,
    pub bytes_free: u64,
    pub files_free: u64,
}

/// The namespaces' volumes of one server.
#[derive(Clone, Debug)]
pub(crate) struct Volumes {
    /// `volumes/<ns>.ext4`: the images.
    images: PathBuf,
    /// `runtime/<ns>`: where each is mounted.
    mounts: PathBuf,
}

/// Bytes of inode table per inode (ext4's default inode size).
const INODE_BYTES: u64 = 256;

impl Volumes {
    pub fn new(images: PathBuf, mounts: PathBuf) -> Self {
        Volumes { images, mounts }
    }

    /// Whether this machine can make and mount them: `mkfs.ext4` and `mount`, as root.
    pub fn available() -> Result<(), &'static str> {
        for tool in [
            "mkfs.ext4",
            "resize2fs",
            "tune2fs",
            "mount",
            "umount",
            "losetup",
        ] {
            if which(tool).is_none() {
                return Err(tool);
            }
        }
        Ok(())
    }

    fn image(&self, namespace: &str) -> PathBuf {
        self.images.join(format!("{namespace}.ext4"))
    }

    pub fn mount_point(&self, namespace: &str) -> PathBuf {
        self.mounts.join(namespace)
    }

    /// Makes `namespace`'s volume exist, be mounted, and hold `bytes` for its tenant,
    /// with room for `files`. A quota raised since grows it, online. One lowered since:
    /// what is past `bytes` is reserved for root (ext4's reserved blocks, which no tenant
    /// process may use; at most half of it); and when nothing of the namespace runs
    /// (`idle`), a volume far too big is made again at its size (checkouts are the
    /// platform's to make again). Otherwise [`Volumes::fill`] against the quota tells.
    pub fn ensure(
        &self,
        namespace: &str,
        bytes: u64,
        files: u64,
        idle: bool,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.images)?;
        let image = self.image(namespace);
        let point = self.mount_point(namespace);
        let size = image_size(bytes, files);
        if idle && std::fs::metadata(&image).is_ok_and(|m| m.len() > 2 * size) {
            self.remove(namespace);
        }
        if !image.exists() {
            // A folder of an older server's (or of an interrupted creation) goes first.
            if !is_mount_point(&point) {
                let _ = std::fs::remove_dir_all(&point);
            }
            let tmp = image.with_extension("ext4.tmp");
            let f = std::fs::File::create(&tmp)?;
            f.set_len(size)?;
            drop(f);
            run(Command::new(tool("mkfs.ext4")?)
                .args(["-q", "-F", "-m", "0", "-O", "^has_journal"])
                .args(["-E", "lazy_itable_init=1,nodiscard"])
                .args(["-N", &inodes(bytes, files).to_string()])
                .arg(&tmp))?;
            std::fs::rename(&tmp, &image)?;
        }
        if !is_mount_point(&point) {
            std::fs::create_dir_all(&point)?;
            run(Command::new(tool("mount")?)
                .args([
                    "-t",
                    "ext4",
                    "-o",
                    "loop,nosuid,nodev,noatime,noinit_itable",
                ])
                .arg(&image)
                .arg(&point))?;
            // The checkouts' parent: the server's; each checkout is chowned to its tenant.
            std::fs::set_permissions(&point, std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
        }
        if std::fs::metadata(&image)?.len() < size {
            self.grow(&image, &point, size)?;
        }
        self.reserve_past(&point, bytes)
    }

    /// Reserves for root every block past the first `bytes` a tenant may fill.
    fn reserve_past(&self, point: &Path, bytes: u64) -> std::io::Result<()> {
        let s = nix::sys::statvfs::statvfs(point).map_err(std::io::Error::from)?;
        let block = s.fragment_size().max(1);
        // ext4 reserves at most half (tune2fs refuses more).
        let reserved = s
            .blocks()
            .saturating_sub(bytes.div_ceil(block))
            .min(s.blocks() / 2);
        let device = loop_device_of(point).ok_or_else(|| {
            std::io::Error::other(format!("no loop device under {}", point.display()))
        })?;
        run(Command::new(tool("tune2fs")?)
            .args(["-r", &reserved.to_string()])
            .arg(&device))
    }

    /// Grows a mounted volume to `size` bytes, online.
    fn grow(&self, image: &Path, point: &Path, size: u64) -> std::io::Result<()> {
        let device = loop_device_of(point).ok_or_else(|| {
            std::io::Error::other(format!("no loop device under {}", point.display()))
        })?;
        std::fs::OpenOptions::new()
            .write(true)
            .open(image)?
            .set_len(size)?;
        run(Command::new(tool("losetup")?).arg("-c").arg(&device))?;
        run(Command::new(tool("resize2fs")?).arg(&device))
    }

    /// What `namespace`'s volume holds now, if it is mounted.
    pub fn fill(&self, namespace: &str) -> Option<Fill> {
        let point = self.mount_point(namespace);
        let s = nix::sys::statvfs::statvfs(&point).ok()?;
        let block = s.fragment_size();
        Some(Fill {
            bytes: (s.blocks() - s.blocks_free()) * block,
            files: s.files() - s.files_free(),
            bytes_free: s.blocks_available() * block,
            files_free: s.files_free(),
        })
    }

    /// Unmounts `namespace`'s volume and removes it, with everything on it.
    pub fn remove(&self, namespace: &str) {
        let point = self.mount_point(namespace);
        unmount(&point);
        let _ = std::fs::remove_dir(&point);
        let _ = std::fs::remove_file(self.image(namespace));
    }

    /// Unmounts every volume (the server stops; they are mounted again at its next start).
    pub fn unmount_all(&self) {
        for point in mounted_under(&self.mounts) {
            unmount(&point);
        }
    }
}

/// The image's size for a quota of `bytes` and `files`: room for both, the inode table
/// and a little of ext4's own.
fn image_size(bytes: u64, files: u64) -> u64 {
    let raw = bytes + inodes(bytes, files) * INODE_BYTES + bytes / 64 + (2 << 20);
    raw.div_ceil(1 << 20) << 20
}

/// Inodes for a quota: its files, within what ext4 accepts for the size.
fn inodes(bytes: u64, files: u64) -> u64 {
    files.clamp(128, (bytes / 1024).max(128))
}

fn which(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn tool(name: &'static str) -> std::io::Result<PathBuf> {
    which(name).ok_or_else(|| std::io::Error::other(format!("`{name}` is not installed")))
}

fn run(cmd: &mut Command) -> std::io::Result<()> {
    let out = cmd
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(std::io::Error::other(format!(
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

fn unmount(point: &Path) {
    if !is_mount_point(point) {
        return;
    }
    let Ok(umount) = tool("umount") else { return };
    // A process still inside (it is being killed) would make it busy: detach it then.
    if run(Command::new(&umount).arg(point)).is_err() {
        let _ = run(Command::new(&umount).arg("-l").arg(point));
    }
}

/// The mount table's lines as (device, mount point).
fn mounts() -> Vec<(String, PathBuf)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ');
            let point = fields.nth(4)?;
            let source = line.split(" - ").nth(1)?.split(' ').nth(1)?;
            Some((source.to_owned(), PathBuf::from(unescape(point))))
        })
        .collect()
}

/// The mount table writes space, tab, newline and backslash as octal escapes.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn is_mount_point(point: &Path) -> bool {
    mounts().iter().any(|(_, p)| p == point)
}

fn loop_device_of(point: &Path) -> Option<String> {
    mounts()
        .into_iter()
        .rev()
        .find(|(_, p)| p == point)
        .map(|(device, _)| device)
}

fn mounted_under(root: &Path) -> Vec<PathBuf> {
    mounts()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.parent() == Some(root))
        .collect()
}

/// What a folder holds as the filesystem charges it (blocks allocated, and one inode per
/// entry), without following links. Walked through descriptors (`/proc/self/fd/N/name`),
/// so no path it builds is longer than one name, however deep the tree: a tree deeper
/// than [`MAX_DEPTH`] is marked, not walked (it holds at least what was counted).
pub(crate) fn held(dir: &Path) -> (Fill, bool) {
    let mut fill = Fill {
        bytes: 0,
        files: 0,
        bytes_free: 0,
        files_free: 0,
    };
    let mut too_deep = false;
    if let Ok(root) = open_dir(dir) {
        walk(&root, 0, &mut fill, &mut too_deep);
    }
    (fill, too_deep)
}

/// Folders deeper than this are not walked into.
const MAX_DEPTH: usize = 256;

fn open_dir(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(path)
}

fn walk(dir: &std::fs::File, depth: usize, fill: &mut Fill, too_deep: &mut bool) {
    use std::os::fd::AsRawFd;
    let base = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let Ok(entries) = std::fs::read_dir(&base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = base.join(entry.file_name());
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        fill.bytes += meta.blocks() * 512;
        fill.files += 1;
        if meta.is_dir() {
            if depth >= MAX_DEPTH {
                *too_deep = true;
            } else if let Ok(child) = open_dir(&path) {
                walk(&child, depth + 1, fill, too_deep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_past_path_max_is_counted_whole() {
        let root = tempfile::tempdir().unwrap();
        // 20 names of 250 bytes: 5,000 bytes of path, past PATH_MAX (4,096).
        let name = "d".repeat(250);
        let mut here = std::fs::File::open(root.path()).unwrap();
        use std::os::fd::AsRawFd;
        for _ in 0..20 {
            let base = PathBuf::from(format!("/proc/self/fd/{}", here.as_raw_fd()));
            std::fs::create_dir(base.join(&name)).unwrap();
            here = open_dir(&base.join(&name)).unwrap();
        }
        let base = PathBuf::from(format!("/proc/self/fd/{}", here.as_raw_fd()));
        std::fs::write(base.join("hidden"), vec![1u8; 1 << 20]).unwrap();
        let (fill, too_deep) = held(root.path());
        assert!(!too_deep);
        assert_eq!(fill.files, 21);
        assert!(fill.bytes >= 1 << 20, "{fill:?}");
    }

    #[test]
    fn images_have_room_for_the_quota_and_its_inodes() {
        assert!(image_size(4 << 20, 100_000) >= 4 << 20);
        assert_eq!(inodes(4 << 20, 100_000), 4096);
        assert_eq!(inodes(2 << 30, 100_000), 100_000);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
