//! Where a command writes a document it was asked for with a FILE flag
//! (`bench --json FILE`, `bench --plot FILE.svg`): `-` is stdout, anything
//! else a file that is opened *before* the run, so a path that cannot be
//! written fails at once, not after a ten-second benchmark. Writing the
//! document later cannot then fail for the path's sake.
//!
//! A file this opened and never wrote (the run failed or was refused) is
//! removed again if it did not exist before. A path that is no regular
//! file (a FIFO, `/dev/stdout`, a process substitution's `/dev/fd/63`)
//! is written as a stream: never truncated or rewound, and a FIFO that no
//! process reads is refused at once instead of waiting for one.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use tickcast::runtime::open::{no_reader, open_now};

/// Why an output path was refused: one line naming the flag and the path.
#[derive(Debug)]
pub struct OutputError {
    flag: &'static str,
    path: PathBuf,
    why: String,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.flag, self.path.display(), self.why)
    }
}

impl std::error::Error for OutputError {}

/// An output opened for one document.
#[derive(Debug)]
pub struct Output {
    flag: &'static str,
    sink: Sink,
}

#[derive(Debug)]
enum Sink {
    Stdout,
    File {
        path: PathBuf,
        file: File,
        /// It did not exist before it was opened here.
        created: bool,
        /// A regular file, emptied before it is written; anything else (a
        /// pipe, a device) is a stream, written as it is.
        regular: bool,
        written: bool,
    },
}

impl Output {
    /// Opens `path` for the document of `flag` (such as `--json`): `-` is
    /// stdout; otherwise its directory must exist and the file must open
    /// for writing (it is created if missing, emptied only when written).
    pub fn open(flag: &'static str, path: &Path) -> Result<Output, OutputError> {
        let refuse = |why: String| OutputError {
            flag,
            path: path.to_path_buf(),
            why,
        };
        if path == Path::new("-") {
            return Ok(Output {
                flag,
                sink: Sink::Stdout,
            });
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        if !dir.is_dir() {
            return Err(refuse(format!(
                "directory {} does not exist",
                dir.display()
            )));
        }
        if path.is_dir() {
            return Err(refuse("is a directory; give a file name".into()));
        }
        let created = !path.exists();
        let file = open_for_writing(path).map_err(|e| refuse(format!("cannot write: {e}")))?;
        let meta = file
            .metadata()
            .map_err(|e| refuse(format!("cannot write: {e}")))?;
        if is_stdout(&meta) {
            // `--json /dev/stdout` (or the file stdout is redirected to):
            // one stream, or the tables would overwrite the document.
            return Ok(Output {
                flag,
                sink: Sink::Stdout,
            });
        }
        let regular = meta.is_file();
        Ok(Output {
            flag,
            sink: Sink::File {
                path: path.to_path_buf(),
                file,
                created,
                regular,
                written: false,
            },
        })
    }

    /// True for `-`.
    pub fn is_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout)
    }

    /// The file written to (`None` for stdout).
    pub fn path(&self) -> Option<&Path> {
        match &self.sink {
            Sink::Stdout => None,
            Sink::File { path, .. } => Some(path),
        }
    }

    /// Writes `text` as the whole document: to stdout, or replacing the
    /// file's contents.
    pub fn write(&mut self, text: &str) -> Result<(), OutputError> {
        let flag = self.flag;
        match &mut self.sink {
            Sink::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| OutputError {
                        flag,
                        path: "-".into(),
                        why: format!("cannot write to stdout: {e}"),
                    })
            }
            Sink::File {
                path,
                file,
                regular,
                written,
                ..
            } => {
                let emptied = if *regular {
                    file.set_len(0).and_then(|()| file.rewind())
                } else {
                    Ok(())
                };
                let done = emptied
                    .and_then(|()| file.write_all(text.as_bytes()))
                    .and_then(|()| file.flush());
                *written = true;
                done.map_err(|e| OutputError {
                    flag,
                    path: path.clone(),
                    why: format!("cannot write: {e}"),
                })
            }
        }
    }
}

/// Whether `meta` is the file stdout writes to (the same device and
/// inode): `/dev/stdout`, `/dev/fd/1`, or the file stdout is redirected to.
// `st_dev` and `st_ino` are u64 on Linux, narrower on some other Unixes.
#[allow(clippy::unnecessary_cast)]
fn is_stdout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    nix::sys::stat::fstat(std::io::stdout())
        .is_ok_and(|out| out.st_dev as u64 == meta.dev() && out.st_ino as u64 == meta.ino())
}

/// Opens `path` for writing (created if missing, not truncated) without
/// waiting ([`open_now`]): a FIFO no process reads yet is an error at once
/// ("no process reads this FIFO yet: start its reader first") where a
/// plain open would block until one does, deaf to Ctrl-C.
fn open_for_writing(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(false);
    open_now(&options, path).map_err(|e| {
        if no_reader(&e, path) {
            std::io::Error::other("no process reads this FIFO yet: start its reader first")
        } else {
            e
        }
    })
}

/// Writes `line` and a line end on stdout: the document of a `--json`
/// flag without a FILE, or a table. A stdout that cannot be written (a
/// reader that closed early, a full disk) is an error naming it, exit 1,
/// never a panic.
pub fn stdout(line: &str) -> anyhow::Result<()> {
    stdout_text(&format!("{line}\n"))
}

/// Writes `text`, which holds its own line ends, on stdout (see [`stdout`]).
pub fn stdout_text(text: &str) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write to standard output")
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Sink::File {
            path,
            created: true,
            written: false,
            ..
        } = &self.sink
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The `--plot` value: `-` or a name ending in `.svg` (any case). Only SVG
/// is drawn, and a `.png` holding SVG would mislead every viewer.
pub fn svg_path(s: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(s);
    let svg = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if s == "-" || svg {
        Ok(path)
    } else {
        Err(format!(
            "only SVG is written: give a name ending in .svg, or - for stdout \
             (convert it afterwards, e.g. rsvg-convert -o {s} {})",
            path.with_extension("svg").display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tickcast-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn a_path_in_a_missing_directory_is_refused_before_anything_runs() {
        let e = Output::open("--json", Path::new("/nonexistent/x.json")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--json /nonexistent/x.json: directory /nonexistent does not exist"
        );
        let dir = scratch("");
        let e = Output::open("--plot", &dir).unwrap_err();
        assert!(
            e.to_string().ends_with("is a directory; give a file name"),
            "{e}"
        );
    }

    #[test]
    fn a_file_is_opened_early_written_whole_and_removed_if_never_written() {
        let path = scratch("report.json");
        let _ = std::fs::remove_file(&path);
        let out = Output::open("--json", &path).unwrap();
        assert!(path.exists(), "opened, so created, before the run");
        drop(out);
        assert!(!path.exists(), "never written: removed again");
        std::fs::write(&path, "an older, longer report").unwrap();
        let mut out = Output::open("--json", &path).unwrap();
        drop(Output::open("--json", &path).unwrap());
        assert!(path.exists(), "a file that was there stays");
        out.write("{}\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}\n");
        drop(out);
        assert!(path.exists());
        std::fs::remove_file(&path).unwrap();
        assert!(Output::open("--json", Path::new("-")).unwrap().is_stdout());
    }

    #[test]
    fn plots_are_svg_or_stdout() {
        assert_eq!(svg_path("out.svg"), Ok(PathBuf::from("out.svg")));
        assert_eq!(svg_path("dir/OUT.SVG"), Ok(PathBuf::from("dir/OUT.SVG")));
        assert_eq!(svg_path("-"), Ok(PathBuf::from("-")));
        for bad in ["out.png", "out", "out.svg.png"] {
            let e = svg_path(bad).unwrap_err();
            assert!(e.starts_with("only SVG is written"), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }
}
