//! The `arcbox-ext4` crate as a reference point for `bench/ext4`: the same
//! inputs through another pure-Rust ext4 writer.
//!
//! ```sh
//! arcbox_reference OUT.ext4 SIZE_BYTES --dir DIR
//! arcbox_reference OUT.ext4 SIZE_BYTES --layers L1.tar.gz L2.tar.gz …
//! ```
//!
//! A directory is streamed to it as a tar (it has no directory import);
//! layers are gunzipped on the way when they start with the gzip magic.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

type Failure = Box<dyn std::error::Error>;

fn open_layer(path: &str) -> Result<Box<dyn Read>, Failure> {
    let mut reader = BufReader::new(File::open(path)?);
    let gzip = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    })
}

fn main() -> Result<(), Failure> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, size, mode, inputs @ ..] = args.as_slice() else {
        return Err("usage: arcbox_reference OUT SIZE --dir DIR | --layers LAYER…".into());
    };
    let mut image = arcbox_ext4::Formatter::new(Path::new(out), 4096, size.parse()?)?;
    match mode.as_str() {
        "--dir" => {
            let dir = inputs.first().ok_or("--dir needs a directory")?.clone();
            let (reader, writer) = std::io::pipe()?;
            let producer = std::thread::spawn(move || -> std::io::Result<()> {
                let mut builder = tar::Builder::new(writer);
                builder.follow_symlinks(false);
                builder.append_dir_all(".", &dir)?;
                builder.finish()
            });
            image.unpack_tar(reader)?;
            producer.join().map_err(|_| "the tar thread panicked")??;
        }
        "--layers" => {
            for layer in inputs {
                image.unpack_tar(open_layer(layer)?)?;
            }
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    image.close()?;
    Ok(())
}
