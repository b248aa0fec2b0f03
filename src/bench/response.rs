//! Reading an HTTP/1.1 streaming response by hand: the head, then the body as it arrives.
//!
//! Subscribers speak HTTP themselves instead of using a client library so that a connection
//! costs a few hundred bytes of state; everything here is incremental and holds no buffer
//! beyond the response head.

/// The largest response head accepted; a streaming server's head is a few hundred bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// What the head said about how the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Chunked,
    Length(u64),
    /// Until the server closes the connection.
    Close,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub framing: Framing,
}

/// Collects bytes until the blank line that ends the head.
#[derive(Debug, Default)]
pub struct HeadReader {
    bytes: Vec<u8>,
}

impl HeadReader {
    /// Takes the next bytes read. Returns the head and how many bytes of `input` it used
    /// (the rest is body) once complete, `Ok(None)` while more is needed.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<(Head, usize)>, String> {
        let before = self.bytes.len();
        self.bytes.extend_from_slice(input);
        // Resume the search a little before the new bytes: the blank line may straddle reads.
        let from = before.saturating_sub(3);
        let Some(end) = self.bytes[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| from + at + 4)
        else {
            if self.bytes.len() > MAX_HEAD_BYTES {
                return Err(format!("response head longer than {MAX_HEAD_BYTES} bytes"));
            }
            return Ok(None);
        };
        let head = parse_head(&self.bytes[..end])?;
        let used = end - before;
        self.bytes = Vec::new();
        Ok(Some((head, used)))
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP/1.x status line: {status_line:?}"))?;
    let mut framing = Framing::Close;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                framing = Framing::Chunked;
            }
        } else if name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let length = value
                .parse()
                .map_err(|_| format!("bad Content-Length {value:?}"))?;
            framing = Framing::Length(length);
        }
    }
    Ok(Head { status, framing })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `seen` tells whether a digit came yet.
    Size { size: u64, seen: bool },
    /// Skipping a chunk extension up to the end of the size line.
    Extension { size: u64 },
    /// Inside chunk data with this many bytes to go.
    Data(u64),
    /// The CRLF after chunk data.
    DataEnd,
    /// After the last chunk: the stream is over.
    Done,
}

/// Removes `Transfer-Encoding: chunked` framing, so the payload reaches the scanner whole
/// even when a chunk boundary falls inside it.
#[derive(Debug, Clone)]
pub struct Dechunker {
    state: Chunk,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: Chunk::Size {
                size: 0,
                seen: false,
            },
        }
    }
}

impl Dechunker {
    /// Passes the data in `input` to `out` piece by piece. `Ok(true)` once the terminating
    /// chunk was seen.
    pub fn feed(&mut self, mut input: &[u8], mut out: impl FnMut(&[u8])) -> Result<bool, String> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                Chunk::Data(remaining) => {
                    let take = remaining.min(input.len() as u64) as usize;
                    out(&input[..take]);
                    input = &input[take..];
                    let left = remaining - take as u64;
                    self.state = if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    };
                    continue;
                }
                Chunk::Size { size, seen } => {
                    self.state = match byte {
                        b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                            let digit = u64::from((byte as char).to_digit(16).expect("hex digit"));
                            let size = size
                                .checked_mul(16)
                                .and_then(|s| s.checked_add(digit))
                                .ok_or("chunk size overflows")?;
                            Chunk::Size { size, seen: true }
                        }
                        b';' | b' ' | b'\t' | b'\r' if seen => Chunk::Extension { size },
                        b'\n' if seen => self.after_size_line(size),
                        _ => return Err(format!("bad byte {byte:#04x} in a chunk size")),
                    };
                }
                Chunk::Extension { size } => {
                    if byte == b'\n' {
                        self.state = self.after_size_line(size);
                    }
                }
                Chunk::DataEnd => match byte {
                    b'\r' => {}
                    b'\n' => {
                        self.state = Chunk::Size {
                            size: 0,
                            seen: false,
                        }
                    }
                    _ => return Err(format!("bad byte {byte:#04x} after chunk data")),
                },
                Chunk::Done => return Ok(true),
            }
            input = rest;
        }
        Ok(self.state == Chunk::Done)
    }

    fn after_size_line(&self, size: u64) -> Chunk {
        if size == 0 {
            Chunk::Done
        } else {
            Chunk::Data(size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_split_across_reads() {
        let response = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
                         Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";
        let mut reader = HeadReader::default();
        let (first, second) = response.split_at(60);
        assert_eq!(reader.feed(first).unwrap(), None);
        let (head, used) = reader.feed(second).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, Framing::Chunked);
        assert_eq!(&second[used..], b"5\r\nhello\r\n");
    }

    #[test]
    fn heads_with_length_or_nothing() {
        let mut reader = HeadReader::default();
        let (head, _) = reader
            .feed(b"HTTP/1.0 404 Not Found\r\nContent-Length: 12\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((head.status, head.framing), (404, Framing::Length(12)));
        let (head, _) = HeadReader::default()
            .feed(b"HTTP/1.1 200 OK\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(head.framing, Framing::Close);
        assert!(HeadReader::default().feed(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[test]
    fn dechunking_in_any_pieces() {
        let body = b"4;ext=1\r\nsgb0\r\nA\r\n-123456789\r\n0\r\n\r\n";
        for piece in 1..body.len() {
            let mut dechunker = Dechunker::default();
            let mut data = Vec::new();
            let mut done = false;
            for chunk in body.chunks(piece) {
                done = dechunker
                    .feed(chunk, |d| data.extend_from_slice(d))
                    .unwrap();
            }
            assert!(done);
            assert_eq!(data, b"sgb0-123456789");
        }
        assert!(Dechunker::default().feed(b"zz\r\n", |_| {}).is_err());
    }
}
