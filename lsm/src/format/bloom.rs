//! Bloom filter over user keys, with a hash that is fixed by the format.

use super::blocks::{ArchivedFilterBlock, FilterBlock};

/// 64-bit hash of a key (a fixed variant of FNV-1a followed by a murmur3
/// finalizer); part of the on-disk format: never change it.
pub fn key_hash(key: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for chunk in key.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h ^= u64::from_le_bytes(word);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
        h = h.rotate_left(29);
    }
    h ^= key.len() as u64;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Builds a filter for `hashes` with `bits_per_key` bits each.
pub fn build(hashes: &[u64], bits_per_key: u32) -> FilterBlock {
    let bits = (hashes.len() as u64 * bits_per_key as u64).max(64);
    let bytes = bits.div_ceil(8) as usize;
    let bits = bytes as u64 * 8;
    // k = ln 2 * bits/key, clamped to a sane range.
    let hash_count = ((bits_per_key as f64 * 0.69) as u32).clamp(1, 30);
    let mut out = vec![0u8; bytes];
    for &h in hashes {
        let (mut a, b) = (h, h.rotate_right(32) | 1);
        for _ in 0..hash_count {
            let bit = a % bits;
            out[(bit / 8) as usize] |= 1 << (bit % 8);
            a = a.wrapping_add(b);
        }
    }
    FilterBlock {
        hash_count,
        bits: out,
    }
}

impl ArchivedFilterBlock {
    /// False only if the key is certainly absent.
    pub fn may_contain(&self, hash: u64) -> bool {
        let bits = self.bits.len() as u64 * 8;
        if bits == 0 {
            return true;
        }
        let (mut a, b) = (hash, hash.rotate_right(32) | 1);
        for _ in 0..self.hash_count.to_native() {
            let bit = a % bits;
            if self.bits[(bit / 8) as usize] & (1 << (bit % 8)) == 0 {
                return false;
            }
            a = a.wrapping_add(b);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BlockKind, decode_block, encode_block};
    use std::path::Path;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<Vec<u8>> = (0..10_000u32)
            .map(|i| format!("key{i:08}").into_bytes())
            .collect();
        let hashes: Vec<u64> = keys.iter().map(|k| key_hash(k)).collect();
        let framed = encode_block(&build(&hashes, 10), BlockKind::Filter);
        let block = decode_block(&framed, BlockKind::Filter, Path::new("t"), 0).expect("valid");
        let filter = block.filter();
        assert!(hashes.iter().all(|&h| filter.may_contain(h)));
        let false_positives = (0..10_000u32)
            .filter(|i| filter.may_contain(key_hash(format!("other{i:08}").as_bytes())))
            .count();
        assert!(
            false_positives < 300,
            "{false_positives} false positives of 10000 at 10 bits/key"
        );
    }
}
