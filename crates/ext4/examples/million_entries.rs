//! Memory check: one million entries (1,000 directories of 1,000 small
//! files) through the formatter. Run it under `/usr/bin/time -v` and read
//! "Maximum resident set size":
//!
//! ```sh
//! cargo build --release -p containerization-ext4 --example million_entries
//! /usr/bin/time -v target/release/examples/million_entries /var/tmp/m.ext4
//! ```

use containerization_ext4::{FormatOptions, Formatter, Metadata, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: million_entries OUT.ext4")?;
    let meta = Metadata::new(0o644, Timestamp::from_seconds(1_700_000_000));
    let mut image = Formatter::create(&out, FormatOptions::default())?;
    for d in 0..1_000 {
        for f in 0..1_000 {
            let body = format!("{d}/{f}\n");
            image.add_file(format!("dir{d:04}/file{f:04}"), &meta, &mut body.as_bytes())?;
        }
    }
    let summary = image.finish()?;
    println!(
        "{} bytes, {} inodes used",
        summary.size, summary.inodes_used
    );
    Ok(())
}
