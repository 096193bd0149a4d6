//! On-disk stores: [`ContentStore`] (an OCI image layout of blobs) and
//! [`ImageStore`] (names for root descriptors), with garbage collection.

mod check;
mod checked;
mod content;
mod follow;
mod gc;
mod image;
mod lock;
mod sources;

pub use check::{CheckReport, Problem};
pub use content::{ContentStore, Ingest, IngestStart, digest_of};
pub use follow::{BlobFollower, FollowedBlob};
pub use gc::{PruneReport, Reachable, Usage};
pub use image::{Image, ImageStore, REF_NAME, ResolvedImage};
pub use lock::FileLock;
pub use sources::BlobSource;
