//! The `.vmt` on-disk layout: constants and the varint/zigzag primitives.
//!
//! The normative description is `docs/vmt-format.md`; this module is its code
//! and must stay in step with it. It owns no I/O.

/// The first 8 bytes of every `.vmt` file (PNG-style: a non-ASCII byte, the
/// name, CR LF, ^Z, LF, so text-mode mangling is detected).
pub const MAGIC: [u8; 8] = *b"\x89VMT\r\n\x1a\n";
/// The format version this build writes and reads.
pub const VERSION: u16 = 1;
/// Bytes in the file header: magic, version u16, flags u16, reserved u32.
pub const FILE_HEADER_BYTES: usize = 16;
/// Bytes in a block header: record count u32, payload length u32, CRC-32C u32.
pub const BLOCK_HEADER_BYTES: usize = 12;
/// The most records one data block may hold (the writer uses exactly this many
/// in every block but the last).
pub const MAX_BLOCK_RECORDS: u32 = 1 << 16;
/// The longest encoded record: tag, pid varint (5), size varint (5), address varint (10).
pub const MAX_RECORD_BYTES: u32 = 21;
/// The smallest encoded record: tag and a one-byte address delta.
pub const MIN_RECORD_BYTES: u32 = 2;
/// The largest payload a reader will load for one block (a sane bound so a
/// corrupt length cannot make it allocate gigabytes).
pub const MAX_BLOCK_PAYLOAD: u32 = MAX_BLOCK_RECORDS * MAX_RECORD_BYTES;
/// Payload bytes of the end block (the total record count, u64 LE).
pub const END_PAYLOAD_BYTES: u32 = 8;

/// Tag bit 2: a pid varint follows the tag.
pub const TAG_PID: u8 = 1 << 2;
/// Tag bits 3..=7 hold the size when it is 1..=31; 0 there means a size varint follows.
pub const TAG_SIZE_SHIFT: u32 = 3;
/// The largest size stored in the tag itself.
pub const TAG_MAX_INLINE_SIZE: u32 = 31;

/// The CRC-32C of a block: over its record count (u32 LE) then its payload.
#[must_use]
pub fn block_crc(count: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&count.to_le_bytes()), payload)
}

/// Zigzag-encodes a signed delta so small magnitudes of either sign are small.
#[inline]
#[must_use]
pub const fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Undoes [`zigzag`].
#[inline]
#[must_use]
pub const fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Appends `v` as an unsigned LEB128 varint (7 bits a byte, low first).
#[inline]
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*i`, advancing `*i`. `None` if the bytes run out or the
/// value does not fit in 64 bits.
#[inline(always)]
pub fn get_varint(p: &[u8], i: &mut usize) -> Option<u64> {
    let b = *p.get(*i)?;
    *i += 1;
    if b < 0x80 {
        return Some(u64::from(b));
    }
    let mut v = u64::from(b & 0x7f);
    let mut shift = 7u32;
    loop {
        let b = *p.get(*i)?;
        *i += 1;
        if shift == 63 && b > 1 {
            return None;
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0i64, 1, -1, 63, -64, i64::MAX, i64::MIN] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn varint_round_trips_and_rejects_overlong() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut i = 0;
            assert_eq!(get_varint(&b, &mut i), Some(v));
            assert_eq!(i, b.len());
        }
        let mut i = 0;
        assert_eq!(get_varint(&[0xff; 11], &mut i), None);
        let mut i = 0;
        assert_eq!(get_varint(&[0x80], &mut i), None);
    }
}
