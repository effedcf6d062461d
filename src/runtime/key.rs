//! Key files: reading a pre-shared [`Key`] from disk, with the checks that
//! keep a key secret (owner-only permissions) and one-line errors that say
//! what to do. The key itself and what it seals are [`crate::wire::auth`].

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::runtime::open::open_now;
use crate::wire::auth::{Key, KEY_LEN};

/// Longest key file read: a key and a line ending, with room to tell the
/// user what is wrong with a longer one.
const MAX_KEY_FILE: u64 = 4096;

/// Why a key file could not be used. Each message is one line naming the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// No file at that path.
    #[error("key file {} does not exist (make one with: openssl rand -hex 32 > FILE; chmod 600 FILE)", .0.display())]
    Missing(PathBuf),
    /// The file exists but could not be read.
    #[error("cannot read key file {}: {source}", .path.display())]
    Unreadable {
        /// The key file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// A FIFO (or pipe) that gave nothing: no process wrote to it.
    #[error("key file {} is a FIFO no process writes to: start its writer first", .0.display())]
    NoWriter(PathBuf),
    /// The path is a directory.
    #[error("key file {} is a directory; give the file that holds the key", .0.display())]
    Directory(PathBuf),
    /// Group or others may read the file.
    #[error("key file {} is readable by group or others (mode {mode:03o}): run chmod 600 {}", .path.display(), .path.display())]
    TooOpen {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Fewer than 64 hex digits: less than 32 bytes of key.
    #[error("key file {} holds {digits} hex digits; a key is 64 (32 bytes, e.g. openssl rand -hex 32)", .path.display())]
    TooShort {
        /// The key file.
        path: PathBuf,
        /// Hex digits found.
        digits: usize,
    },
    /// More than 64 hex digits.
    #[error("key file {} holds more than 64 hex digits; a key is exactly 64 (32 bytes)", .path.display())]
    TooLong {
        /// The key file.
        path: PathBuf,
    },
    /// A character that is not a hex digit (other than one final line ending).
    #[error("key file {} has a non-hex character at byte {offset}; it must hold 64 hex digits and nothing else", .path.display())]
    NotHex {
        /// The key file.
        path: PathBuf,
        /// Offset of the first bad byte.
        offset: usize,
    },
}

impl Key {
    /// Loads a key file. The format: exactly 64 hexadecimal digits (either
    /// case), the 32 bytes of the key, optionally followed by one line ending
    /// (`\n` or `\r\n`), e.g. as written by `openssl rand -hex 32`. Text, so
    /// it survives copy and paste and a stray newline cannot become key
    /// material. On Unix the file must not be readable by group or others
    /// (`chmod 600`): the key is refused otherwise.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Key, KeyError> {
        let path = path.as_ref();
        let unreadable = |source| KeyError::Unreadable {
            path: path.to_path_buf(),
            source,
        };
        // One open, then checks on that handle: nothing can swap the file
        // between the permission check and the read. A pipe or FIFO (a
        // key kept off disk: `--key-file <(pass show key)`) is read too;
        // its open does not wait for a writer, and one with no writer reads
        // as empty at once ([`open_now`]).
        let file = match open_now(std::fs::OpenOptions::new().read(true), path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(KeyError::Missing(path.to_path_buf()))
            }
            Err(e) => return Err(unreadable(e)),
        };
        let meta = file.metadata().map_err(unreadable)?;
        if meta.is_dir() {
            return Err(KeyError::Directory(path.to_path_buf()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::TooOpen {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        let mut text = Vec::new();
        file.take(MAX_KEY_FILE)
            .read_to_end(&mut text)
            .map_err(unreadable)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if text.is_empty() && meta.file_type().is_fifo() {
                return Err(KeyError::NoWriter(path.to_path_buf()));
            }
        }
        Key::parse_hex(&text).map_err(|e| e.at(path))
    }

    /// Parses the key file format (see [`Key::from_file`]).
    fn parse_hex(text: &[u8]) -> Result<Key, HexProblem> {
        let text = text
            .strip_suffix(b"\n")
            .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
            .unwrap_or(text);
        if let Some(offset) = text.iter().position(|b| !b.is_ascii_hexdigit()) {
            return Err(HexProblem::NotHex(offset));
        }
        match text.len() {
            n if n < 2 * KEY_LEN => return Err(HexProblem::TooShort(n)),
            n if n > 2 * KEY_LEN => return Err(HexProblem::TooLong),
            _ => {}
        }
        let mut key = [0u8; KEY_LEN];
        for (k, pair) in key.iter_mut().zip(text.chunks_exact(2)) {
            *k = (hex_digit(pair[0]) << 4) | hex_digit(pair[1]);
        }
        Ok(Key::from_bytes(key))
    }
}

enum HexProblem {
    NotHex(usize),
    TooShort(usize),
    TooLong,
}

impl HexProblem {
    fn at(self, path: &Path) -> KeyError {
        let path = path.to_path_buf();
        match self {
            HexProblem::NotHex(offset) => KeyError::NotHex { path, offset },
            HexProblem::TooShort(digits) => KeyError::TooShort { path, digits },
            HexProblem::TooLong => KeyError::TooLong { path },
        }
    }
}

fn hex_digit(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10, // checked is_ascii_hexdigit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh path under the temp dir, unique to this test and process.
    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("tickcast-auth-{}-{name}", std::process::id()))
    }

    #[cfg(unix)]
    fn key_file(name: &str, content: &[u8], mode: u32) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = temp_path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    const HEX: &[u8] = b"000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";

    #[cfg(unix)]
    #[test]
    fn key_file_is_64_hex_digits_and_one_optional_line_ending() {
        let want = Key::from_bytes(std::array::from_fn(|i| i as u8));
        for (name, content) in [
            ("bare", HEX.to_vec()),
            ("lf", [HEX, b"\n"].concat()),
            ("crlf", [HEX, b"\r\n"].concat()),
        ] {
            let p = key_file(name, &content, 0o600);
            assert_eq!(Key::from_file(&p).unwrap(), want, "{name}");
            std::fs::remove_file(p).unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn key_file_errors_are_one_clear_line() {
        let check = |name: &str, content: &[u8], mode: u32, want: &str| {
            let p = key_file(name, content, mode);
            let err = Key::from_file(&p).unwrap_err().to_string();
            std::fs::remove_file(&p).unwrap();
            assert!(err.contains(want), "{name}: {err}");
            assert!(err.contains(&*p.to_string_lossy()), "{name}: {err}");
            assert!(!err.contains('\n'), "{name}: {err}");
        };
        check(
            "short",
            &HEX[..62],
            0o600,
            "holds 62 hex digits; a key is 64",
        );
        check("empty", b"", 0o600, "holds 0 hex digits");
        check(
            "long",
            &[HEX, b"00"].concat(),
            0o600,
            "more than 64 hex digits",
        );
        check(
            "two-lines",
            &[HEX, b"\n\n"].concat(),
            0o600,
            "non-hex character at byte 64",
        );
        check(
            "space",
            &[b" ", HEX].concat(),
            0o600,
            "non-hex character at byte 0",
        );
        check("world", HEX, 0o644, "(mode 644): run chmod 600");
        check("group", HEX, 0o640, "(mode 640): run chmod 600");
        check("others-write", HEX, 0o602, "(mode 602)");

        let missing = temp_path("missing");
        let err = Key::from_file(&missing).unwrap_err();
        assert!(matches!(err, KeyError::Missing(_)), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");

        let dir = temp_path("dir");
        std::fs::create_dir_all(&dir).unwrap();
        let err = Key::from_file(&dir).unwrap_err();
        std::fs::remove_dir(&dir).unwrap();
        assert!(matches!(err, KeyError::Directory(_)), "{err}");
        assert!(
            err.to_string()
                .ends_with("is a directory; give the file that holds the key"),
            "{err}"
        );

        // A FIFO with no writer reads as empty at once, and says so: it is
        // not waited on (a pipe with its writer is read as any file:
        // tests/cli.rs).
        let fifo = temp_path("fifo");
        let _ = std::fs::remove_file(&fifo);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = Key::from_file(&fifo).unwrap_err();
        std::fs::remove_file(&fifo).unwrap();
        assert!(matches!(err, KeyError::NoWriter(_)), "{err}");
        assert!(
            err.to_string()
                .ends_with("is a FIFO no process writes to: start its writer first"),
            "{err}"
        );
    }
}
