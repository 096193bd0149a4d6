//! `cctl rootfs …`: ext4 root file systems made from an image in the local
//! store, a directory or layer tarballs (plain, gzip or zstd), and listed
//! back like `ls -l`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use containerization::StateRoot;
use containerization_ext4::{FileKind, FormatOptions, Formatter, Image, Stat};
use containerization_oci::layer::StoredLayer;
use containerization_oci::store::{ContentStore, ImageStore};
use containerization_oci::{Platform, Reference};

/// Subcommands of `cctl rootfs`.
#[derive(Debug, Subcommand)]
pub enum RootfsCommand {
    /// Make an ext4 image from a pulled image (`IMAGE`), a directory
    /// (`--from-dir`) or layer tarballs applied in order (`--layers`),
    /// without mounting anything.
    Create(CreateArgs),
    /// List a directory of an image (the root by default), or one entry,
    /// like `ls -l`.
    Inspect {
        /// The ext4 image.
        image: PathBuf,
        /// A path inside the image.
        path: Option<PathBuf>,
    },
}

/// Arguments of `cctl rootfs create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// An image in the local store (see `cctl image pull`); its layers are
    /// applied in order.
    #[arg(conflicts_with_all = ["from_dir", "layers"])]
    image: Option<String>,
    /// The platform to take from a multi-platform image, such as
    /// `linux/arm64` (the host's by default).
    #[arg(long, requires = "image")]
    platform: Option<String>,
    /// Copy this host directory into the image.
    #[arg(long, conflicts_with = "layers", required_unless_present_any = ["layers", "image"])]
    from_dir: Option<PathBuf>,
    /// Apply these layer tarballs (lowest first): whiteouts and opaque
    /// directories are honoured.
    #[arg(long, num_args = 1..)]
    layers: Vec<PathBuf>,
    /// The image to write (replaced only once it is complete).
    #[arg(short, long)]
    output: PathBuf,
    /// Image size, such as `512M` or `4G`; sized from the content when left out.
    #[arg(long, value_parser = parse_size)]
    size: Option<u64>,
    /// Block size in bytes: 4096, 2048 or 1024.
    #[arg(long, default_value_t = 4096)]
    block_size: u32,
    /// Add a jbd2 journal, for a root file system the guest writes to.
    #[arg(long)]
    journal: bool,
    /// Volume label (16 bytes at most).
    #[arg(long, default_value = "")]
    label: String,
}

/// Parses `1234`, `64K`, `512M`, `4G`, `1T` (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, shift) = match text.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                'K' => 10,
                'M' => 20,
                'G' => 30,
                'T' => 40,
                _ => return Err(format!("unknown size suffix {c:?}; use K, M, G or T")),
            };
            (&text[..at], shift)
        }
        _ => (text, 0),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512M or 4G"))?;
    value
        .checked_shl(shift)
        .filter(|v| v >> shift == value)
        .ok_or_else(|| format!("{text} is too large"))
}

impl RootfsCommand {
    /// Runs the subcommand.
    pub fn run(self, root: &StateRoot) -> anyhow::Result<()> {
        match self {
            Self::Create(args) => create(root, args),
            Self::Inspect { image, path } => inspect(&image, path.as_deref()),
        }
    }
}

/// The layers of a stored image for a platform, lowest first, and the store.
fn image_layers(
    root: &StateRoot,
    typed: &str,
    platform: Option<&str>,
) -> anyhow::Result<(ContentStore, Vec<StoredLayer>)> {
    let store = ImageStore::open(root.path()).context("cannot open the image store")?;
    let name = match typed.parse::<Reference>() {
        Ok(r) if store.get(&r.to_string()).is_ok() => r.to_string(),
        _ => typed.to_owned(),
    };
    let platform = match platform {
        Some(text) => text.parse()?,
        None => Platform::host(),
    };
    let resolved = store
        .resolve(&name, &platform)
        .with_context(|| format!("cannot find {typed} in the image store; pull it first"))?;
    let layers = StoredLayer::of_image(&resolved)?;
    Ok((store.content().clone(), layers))
}

fn create(root: &StateRoot, args: CreateArgs) -> anyhow::Result<()> {
    let options = FormatOptions {
        size: args.size,
        label: args.label,
        journal: args.journal,
        block_size: args.block_size,
        ..FormatOptions::default()
    };
    let mut image = Formatter::create(&args.output, options)
        .with_context(|| format!("cannot start {}", args.output.display()))?;
    if let Some(dir) = &args.from_dir {
        image
            .add_dir_tree(dir)
            .with_context(|| format!("cannot copy {} into the image", dir.display()))?;
    } else if let Some(name) = &args.image {
        // Each layer is checked as it is read; the image is written only
        // if every verdict is good.
        let (content, layers) = image_layers(root, name, args.platform.as_deref())?;
        for (index, layer) in layers.iter().enumerate() {
            let what = || format!("layer {} of {name} ({})", index + 1, layer.digest);
            let mut reader = content.open_layer(layer).with_context(what)?;
            match image.unpack_layer(&mut reader) {
                Ok(()) => reader.finish().with_context(what)?,
                Err(error) => {
                    reader.check_blob().with_context(what)?;
                    return Err(error).with_context(|| format!("cannot apply the {}", what()));
                }
            }
        }
    } else {
        if args.layers.is_empty() {
            bail!("give IMAGE, --from-dir DIR or --layers LAYER.tar…");
        }
        for layer in &args.layers {
            let file = std::fs::File::open(layer)
                .with_context(|| format!("cannot open the layer {}", layer.display()))?;
            image
                .unpack_layer(file)
                .with_context(|| format!("cannot apply the layer {}", layer.display()))?;
        }
    }
    let summary = image.finish().context("cannot finish the image")?;
    println!(
        "{}: {} MiB, {} of {} inodes used, {} MiB of data and metadata",
        args.output.display(),
        summary.size >> 20,
        summary.inodes_used,
        summary.inodes_count,
        (summary.blocks_used * summary.block_size) >> 20
    );
    Ok(())
}

fn inspect(path: &Path, inner: Option<&Path>) -> anyhow::Result<()> {
    let image = Image::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let inner = inner.unwrap_or(Path::new("/"));
    let stat = image.stat(inner)?;
    if stat.kind != FileKind::Directory {
        println!("{}", line(&image, inner, &inner.to_string_lossy(), &stat)?);
        return Ok(());
    }
    let mut entries = image.read_dir(inner)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        let name = String::from_utf8_lossy(&entry.name).into_owned();
        let child = inner.join(std::ffi::OsStr::new(&name));
        let stat = image.stat_inode(entry.inode)?;
        println!("{}", line(&image, &child, &name, &stat)?);
    }
    Ok(())
}

/// One `ls -l` line.
fn line(image: &Image, path: &Path, name: &str, stat: &Stat) -> anyhow::Result<String> {
    let m = &stat.metadata;
    let size = match stat.device {
        Some(dev) => format!("{}, {}", dev.major, dev.minor),
        None => stat.size.to_string(),
    };
    let mut text = format!(
        "{} {:>3} {:>5} {:>5} {:>12} {} {}",
        mode_string(stat.kind, m.permissions),
        stat.links,
        m.uid,
        m.gid,
        size,
        date(m.mtime.seconds),
        name
    );
    if stat.kind == FileKind::Symlink {
        let target = image.read_link(path)?;
        text.push_str(" -> ");
        text.push_str(&String::from_utf8_lossy(&target));
    }
    Ok(text)
}

/// `drwxr-xr-x` and friends, set-id and sticky bits included.
fn mode_string(kind: FileKind, perm: u16) -> String {
    let t = match kind {
        FileKind::Directory => 'd',
        FileKind::Regular => '-',
        FileKind::Symlink => 'l',
        FileKind::CharDevice => 'c',
        FileKind::BlockDevice => 'b',
        FileKind::Fifo => 'p',
        FileKind::Socket => 's',
    };
    let mut s = String::from(t);
    for (shift, special, lower, upper) in [
        (6, 0o4000, 's', 'S'),
        (3, 0o2000, 's', 'S'),
        (0, 0o1000, 't', 'T'),
    ] {
        let bits = (perm >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let exec = bits & 1 != 0;
        s.push(match (perm & special != 0, exec) {
            (true, true) => lower,
            (true, false) => upper,
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

/// `YYYY-MM-DD HH:MM` in UTC.
fn date(seconds: i64) -> String {
    let (year, month, day, hour, minute, _) = crate::clock::civil(seconds);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

#[cfg(test)]
mod tests {
    use super::{FileKind, date, mode_string, parse_size};

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("3X").is_err());
        assert!(parse_size("99999999999T").is_err());
    }

    #[test]
    fn modes_and_dates_print_like_ls() {
        assert_eq!(mode_string(FileKind::Regular, 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(FileKind::Directory, 0o1777), "drwxrwxrwt");
        assert_eq!(date(0), "1970-01-01 00:00");
        assert_eq!(date(1_700_000_000), "2023-11-14 22:13");
    }
}
