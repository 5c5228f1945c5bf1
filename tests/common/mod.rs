//! Helpers shared by the integration tests (each test file includes this module and uses part
//! of it, hence the allowance for what one file leaves unused).
#![allow(dead_code)]

pub mod bnlab_cli;
pub mod html_check;
pub mod photo;
pub mod run_files;

/// The course's epoch line, as the brief gives it.
pub const EPOCH_LINE: &str = r"^Epoch\[[0-9]+/[0-9]+\] - Train loss: [0-9]\.[0-9]{5} Train Accuracy: [0-9]\.[0-9]{5} \|\| Validation Loss: [0-9]\.[0-9]{5} Validation Accuracy: [0-9]\.[0-9]{5}$";

/// Whether a line is exactly one of the course's epoch lines.
pub fn is_epoch_line(line: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(EPOCH_LINE).expect("a valid pattern"))
        .is_match(line)
}

/// A command's standard output and error, as text.
pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The command succeeded (or the test fails showing both of its outputs).
#[track_caller]
pub fn assert_ok(o: &std::process::Output) {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// Names of the entries in `dir`, sorted (temporary files included, hidden or not).
pub fn entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

pub mod http {
    //! A tiny HTTP/1.1 server on 127.0.0.1 for the download tests (nothing leaves the machine):
    //! it serves a map of file name -> reply under one path prefix, answers 404 for any other
    //! path, counts the connections it serves, and can inject failures (see [`Reply`]).

    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// What the server does for one file name.
    pub enum Reply {
        /// 200 with these bytes.
        Body(Vec<u8>),
        /// Announces the full length, sends only the first `sent` bytes, then closes.
        Drop { body: Vec<u8>, sent: usize },
        /// 404, as for a name that is not served at all.
        NotFound,
    }

    impl Reply {
        /// 200 with `body` damaged: its middle byte (at `len / 2`) XORed with 0x55.
        pub fn corrupted(mut body: Vec<u8>) -> Reply {
            let mid = body.len() / 2;
            body[mid] ^= 0x55;
            Reply::Body(body)
        }
    }

    impl From<Vec<u8>> for Reply {
        fn from(body: Vec<u8>) -> Reply {
            Reply::Body(body)
        }
    }

    /// Serves `files` (name -> reply, or bytes for a plain 200) under `/{prefix}/`; other paths
    /// get 404. Returns the base URL (`http://127.0.0.1:PORT/{prefix}/`) and a counter of the
    /// requests served. The server lives until the test process ends.
    pub fn start_server<N: Into<String>, R: Into<Reply>>(
        prefix: &str,
        files: impl IntoIterator<Item = (N, R)>,
    ) -> (String, Arc<AtomicUsize>) {
        let files: HashMap<String, Reply> = files
            .into_iter()
            .map(|(n, r)| (n.into(), r.into()))
            .collect();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}/{prefix}/", listener.local_addr().unwrap());
        let path_prefix = format!("/{prefix}/");
        let count = Arc::new(AtomicUsize::new(0));
        let counter = count.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = handle(stream, &path_prefix, &files);
            }
        });
        (base, count)
    }

    fn handle(
        mut stream: TcpStream,
        path_prefix: &str,
        files: &HashMap<String, Reply>,
    ) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line)?;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let name = path.strip_prefix(path_prefix).unwrap_or("");
        let (status, body, sent) = match files.get(name) {
            Some(Reply::Body(b)) => ("200 OK", b.as_slice(), b.len()),
            Some(Reply::Drop { body, sent }) => ("200 OK", body.as_slice(), *sent),
            Some(Reply::NotFound) | None => ("404 Not Found", &b"not found"[..], 9),
        };
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        stream.write_all(&body[..sent])?;
        stream.flush()?;
        stream.shutdown(std::net::Shutdown::Both)
    }

    /// A base URL under `/{prefix}/` on a port nothing listens on (connections are refused):
    /// a dead mirror.
    pub fn refused_url(prefix: &str) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/{prefix}/", l.local_addr().unwrap())
    } // listener dropped here
}

/// Asserts that `r` failed with a message that names `path` and contains every word of `what`.
#[track_caller]
pub fn assert_err_names<T: std::fmt::Debug>(
    r: bnlab::Result<T>,
    path: &std::path::Path,
    what: &[&str],
) {
    let msg = r.expect_err("expected an error").to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message does not name {}: {msg}",
        path.display()
    );
    for w in what {
        assert!(msg.contains(w), "message lacks {w:?}: {msg}");
    }
}

/// A CSV table of `rows` rows: three well-separated classes (`cls`) of three features.
pub fn write_three_class_table(path: &std::path::Path, rows: u32) {
    let mut text = String::from("f1,f2,f3,cls\n");
    for i in 0..rows {
        let k = i % 3;
        let jitter = (i * 7919 % 13) as f32 / 13.0;
        text += &format!(
            "{},{},{},{k}\n",
            k as f32 * 4.0 + jitter,
            jitter - k as f32,
            1.5 * jitter
        );
    }
    std::fs::write(path, text).unwrap();
}
