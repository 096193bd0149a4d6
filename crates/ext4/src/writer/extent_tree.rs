//! Extent trees of any depth: up to four extents fit in the inode; beyond
//! that, leaves of 340 extents and index nodes of 340 children are built
//! bottom-up until four nodes remain for the root.

use crate::format::extent::{self, Extent, IndexEntry, Node, ROOT_ENTRIES};

/// One node below the root: its first logical block and its content.
struct Built {
    first: u32,
    node: Node,
}

/// Blocks of a tree to write: (block number, bytes).
pub(crate) type TreeBlocks = Vec<(u64, Vec<u8>)>;

/// The tree over `extents` (sorted by logical block). `alloc` hands out one
/// block per call; returns the 60-byte root for `i_block` and the blocks to
/// write (block number, bytes).
pub(crate) fn build<E>(
    extents: &[Extent],
    block_size: usize,
    inode_seed: Option<u32>,
    mut alloc: impl FnMut() -> Result<u64, E>,
) -> Result<([u8; 60], TreeBlocks), E> {
    if extents.len() <= ROOT_ENTRIES {
        return Ok((
            extent::encode_root(&Node::Leaf(extents.to_vec())),
            Vec::new(),
        ));
    }
    let per_block = extent::entries_per_block(block_size);
    let mut level: Vec<Built> = extents
        .chunks(per_block)
        .map(|chunk| Built {
            first: chunk[0].logical,
            node: Node::Leaf(chunk.to_vec()),
        })
        .collect();
    let mut depth = 0u16;
    let mut written = Vec::new();
    loop {
        let mut entries = Vec::with_capacity(level.len());
        for built in level {
            let block = alloc()?;
            let mut bytes = vec![0u8; block_size];
            extent::encode_block(&built.node, &mut bytes, inode_seed);
            written.push((block, bytes));
            entries.push(IndexEntry {
                logical: built.first,
                child: block,
            });
        }
        depth += 1;
        if entries.len() <= ROOT_ENTRIES {
            let root = Node::Index { depth, entries };
            return Ok((extent::encode_root(&root), written));
        }
        level = entries
            .chunks(per_block)
            .map(|chunk| Built {
                first: chunk[0].logical,
                node: Node::Index {
                    depth,
                    entries: chunk.to_vec(),
                },
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::build;
    use crate::format::extent::{self, Extent, Node};

    #[test]
    fn half_a_million_extents_make_a_tree_of_depth_three() {
        let extents: Vec<Extent> = (0..500_000u32)
            .map(|i| Extent {
                logical: i * 2,
                len: 1,
                physical: u64::from(i) * 2 + 1_000_000,
            })
            .collect();
        let mut next = 10u64;
        let (root, blocks) = build::<()>(&extents, 4096, Some(7), || {
            next += 1;
            Ok(next)
        })
        .expect("built");
        let Some(Node::Index { depth, entries }) = extent::decode(&root) else {
            panic!("root is an index");
        };
        // 1471 leaves, 5 index nodes, 1 index node over them, then the root.
        assert_eq!(depth, 3);
        assert_eq!(entries.len(), 1);
        assert_eq!(blocks.len(), 1471 + 5 + 1);
    }
}
