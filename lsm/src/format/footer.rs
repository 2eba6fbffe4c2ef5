//! The fixed 64-byte footer at the end of every SSTable.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

pub const FOOTER_BYTES: usize = 64;
pub const SST_MAGIC: [u8; 8] = *b"FDBSST01";
pub const SST_FORMAT_VERSION: u32 = 1;

#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Debug, Clone, Copy)]
#[repr(C)]
pub struct Footer {
    pub magic: [u8; 8],
    pub format_version: U32,
    /// crc32c of the 64 footer bytes with this field zeroed.
    pub crc: U32,
    pub filter_offset: U64,
    pub index_offset: U64,
    pub props_offset: U64,
    pub filter_len: U32,
    pub index_len: U32,
    pub props_len: U32,
    pub reserved: U32,
    pub entries: U64,
}

const _: () = assert!(size_of::<Footer>() == FOOTER_BYTES);

impl Footer {
    pub fn seal(mut self) -> Self {
        self.crc = 0.into();
        self.crc = crc32c::crc32c(self.as_bytes()).into();
        self
    }

    /// Decodes and verifies; the error says what is wrong.
    pub fn decode(bytes: &[u8]) -> Result<Footer, String> {
        let footer = Footer::read_from_bytes(bytes)
            .map_err(|_| format!("footer must be {FOOTER_BYTES} bytes, got {}", bytes.len()))?;
        if footer.magic != SST_MAGIC {
            return Err(format!("bad table magic {:02x?}", footer.magic));
        }
        let mut zeroed = footer;
        zeroed.crc = 0.into();
        let computed = crc32c::crc32c(zeroed.as_bytes());
        if computed != footer.crc.get() {
            return Err(format!(
                "footer checksum mismatch: stored {:#010x}, computed {computed:#010x}",
                footer.crc.get()
            ));
        }
        if footer.format_version.get() != SST_FORMAT_VERSION {
            return Err(format!(
                "unsupported table format version {}",
                footer.format_version.get()
            ));
        }
        Ok(footer)
    }
}
