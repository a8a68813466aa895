//! A running digest of the event trace (64-bit FNV-1a). Two runs of one seed must
//! end with the same digest; any divergence in any event changes it.
//!
//! FNV-1a is a dozen lines and has no dependencies; it is not collision resistant,
//! which a determinism check does not need.

/// A 64-bit FNV-1a hasher that never depends on the platform or on process state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digest(u64);

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Digest {
    fn default() -> Self {
        Digest(FNV_OFFSET)
    }
}

impl Digest {
    /// A fresh digest.
    pub fn new() -> Self {
        Digest::default()
    }

    /// Mixes in `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }

    /// Mixes in a number (little-endian bytes).
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// The digest so far.
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// The FNV-1a digest of `bytes` alone.
pub fn digest_of(bytes: &[u8]) -> u64 {
    let mut d = Digest::new();
    d.write(bytes);
    d.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_vectors() {
        assert_eq!(digest_of(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(digest_of(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(digest_of(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn order_matters() {
        let mut a = Digest::new();
        a.write_u64(1);
        a.write_u64(2);
        let mut b = Digest::new();
        b.write_u64(2);
        b.write_u64(1);
        assert_ne!(a.value(), b.value());
    }
}
