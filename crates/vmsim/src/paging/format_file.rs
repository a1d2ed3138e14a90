//! User-defined paging formats read from TOML files.
//!
//! ```toml
//! # A 15-bit classroom machine: 32-byte pages, two levels of 5 index bits,
//! # 1-byte entries with the valid bit in bit 7 and the frame number in bits 0-6.
//! name = "classroom-15"
//! va_bits = 15
//! page_size = 32          # bytes, or a string such as "4KiB"
//! level_bits = [5, 5]     # root first
//! entry_bytes = 1
//! valid = 7
//! frame_lo = 0
//! frame_bits = 7
//! # optional bits: writable, user, executable, accessed, dirty
//! # optional: pa_bits (must equal frame_bits + page offset bits)
//! ```

use std::path::Path;

use serde::Deserialize;

use crate::addr::PageSize;
use crate::units::WrittenSize;

use super::format::{Format, FormatError};
use super::pte::UserBits;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FormatFile {
    name: Option<String>,
    va_bits: u32,
    pa_bits: Option<u32>,
    page_size: WrittenSize,
    level_bits: Vec<u32>,
    entry_bytes: u32,
    valid: u32,
    writable: Option<u32>,
    user: Option<u32>,
    executable: Option<u32>,
    accessed: Option<u32>,
    dirty: Option<u32>,
    frame_lo: u32,
    frame_bits: u32,
}

impl Format {
    /// Reads a user-defined format from TOML text; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, FormatError> {
        let file: FormatFile = toml::from_str(text).map_err(|source| FormatError::Toml {
            origin: origin.to_string(),
            source: Box::new(source),
        })?;
        let ctx = |e: FormatError| FormatError::InFile {
            origin: origin.to_string(),
            source: Box::new(e),
        };
        let bytes = file
            .page_size
            .bytes()
            .map_err(|source| FormatError::PageSize {
                origin: origin.to_string(),
                source: Box::new(source),
            })?;
        let page_size = PageSize::from_bytes(bytes).map_err(|_| {
            ctx(FormatError::Inconsistent(format!(
                "page_size = {bytes} is not a power of two"
            )))
        })?;
        let bits = UserBits {
            entry_bytes: file.entry_bytes,
            valid: file.valid,
            writable: file.writable,
            user: file.user,
            executable: file.executable,
            accessed: file.accessed,
            dirty: file.dirty,
            frame_lo: file.frame_lo,
            frame_bits: file.frame_bits,
        };
        let name = file.name.unwrap_or_else(|| origin.to_string());
        let fmt =
            Format::user(&name, file.va_bits, page_size, &file.level_bits, bits).map_err(ctx)?;
        if let Some(pa) = file.pa_bits
            && pa != fmt.pa_bits()
        {
            return Err(ctx(FormatError::Inconsistent(format!(
                "pa_bits = {pa}, but frame_bits ({}) + page offset bits ({}) = {}",
                file.frame_bits,
                page_size.shift(),
                fmt.pa_bits()
            ))));
        }
        Ok(fmt)
    }

    /// Reads a user-defined format from a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, FormatError> {
        let text = vmsim_trace::limits::read_text_limited(
            path,
            vmsim_trace::limits::MAX_TOML_BYTES,
            "a paging format file",
        )
        .map_err(|source| FormatError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    trait Chain {
        fn to_string_chain(&self) -> String;
    }

    impl Chain for FormatError {
        fn to_string_chain(&self) -> String {
            crate::error_line::one_line(self)
        }
    }

    const C15: &str = "va_bits = 15\npage_size = 32\nlevel_bits = [5, 5]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 7\n";

    #[test]
    fn classroom_15_bit() {
        let f = Format::from_toml(C15, "c15.toml").expect("valid");
        assert_eq!(f.va_bits(), 15);
        assert_eq!(f.pa_bits(), 12);
        assert_eq!(f.level_bits(), vec![5, 5]);
    }

    #[test]
    fn classroom_12_bit_2_4_split() {
        let text = "va_bits = 12\npage_size = \"64B\"\nlevel_bits = [2, 4]\nentry_bytes = 1\nvalid = 7\nframe_lo = 0\nframe_bits = 6\n";
        let f = Format::from_toml(text, "c12.toml").expect("valid");
        assert_eq!(f.levels()[1].shift, 6);
        assert_eq!(f.levels()[0].number, 1);
    }

    #[test]
    fn inconsistent_files_name_the_fields() {
        let bad = C15.replace("level_bits = [5, 5]", "level_bits = [5, 4]");
        let e = Format::from_toml(&bad, "f.toml")
            .expect_err("inconsistent")
            .to_string_chain();
        assert!(
            e.contains("level_bits") && e.contains("va_bits = 15") && e.contains("f.toml"),
            "{e}"
        );
        let bad = C15.replace("valid = 7", "valid = 2");
        let e = Format::from_toml(&bad, "f.toml")
            .expect_err("overlap")
            .to_string_chain();
        assert!(e.contains("valid = 2 overlaps the frame field"), "{e}");
        let bad = format!("{C15}dirty = 9\n");
        let e = Format::from_toml(&bad, "f.toml")
            .expect_err("outside")
            .to_string_chain();
        assert!(e.contains("dirty = 9 is outside"), "{e}");
        let bad = format!("{C15}pa_bits = 16\n");
        let e = Format::from_toml(&bad, "f.toml")
            .expect_err("pa")
            .to_string_chain();
        assert!(e.contains("pa_bits = 16"), "{e}");
        let e = Format::from_toml("va_bits = 'x'", "f.toml")
            .expect_err("parse")
            .to_string_chain();
        assert!(e.starts_with("f.toml:"), "{e}");
        let bad = format!("{C15}colour = 3\n");
        assert!(Format::from_toml(&bad, "f.toml").is_err());
    }
}
