//! Reading request lines with a bound on their length.
//!
//! `BufRead::read_line` grows its buffer as long as the peer keeps sending, so a
//! client that never sends a newline could make a node allocate without bound. This
//! reader stops at [`LINE_BYTES_MAX`]: it reports the over-long line at once (so the
//! client hears about it without sending the rest) and then skips the remainder of
//! that line, so that the next request starts cleanly.

use std::io::{self, BufRead};

/// The longest request line accepted, in bytes (without the line ending).
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Why a line could not be read.
#[derive(Debug)]
pub enum LineError {
    /// The line is longer than the limit; the rest of it will be skipped.
    TooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The connection failed.
    Io(io::Error),
}

/// Reads lines of at most `limit` bytes from a buffered stream.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    limit: usize,
    line: Vec<u8>,
    /// Skipping the rest of an over-long line.
    discarding: bool,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of lines of at most `limit` bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        assert!(limit > 0, "a line limit must be positive");
        LineReader {
            inner,
            limit,
            line: Vec::new(),
            discarding: false,
        }
    }

    /// The underlying reader (to see whether more input is already buffered).
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The next line without its `\n` or `\r\n`; `Ok(None)` at the end of the stream.
    /// A last line without a newline still counts as a line.
    pub fn read_line(&mut self) -> Result<Option<String>, LineError> {
        self.line.clear();
        loop {
            let available = match self.inner.fill_buf() {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(LineError::Io(e)),
            };
            if available.is_empty() {
                // End of stream.
                self.discarding = false;
                if self.line.is_empty() {
                    return Ok(None);
                }
                return self.finish_line();
            }
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |p| p + 1);
            if self.discarding {
                self.inner.consume(take);
                if newline.is_some() {
                    self.discarding = false;
                }
                continue;
            }
            let content = newline.unwrap_or(available.len());
            // A trailing '\r' (of "\r\n") is not part of the line's length budget.
            if self.line.len() + content > self.limit + 1 {
                self.inner.consume(take);
                self.line.clear();
                self.discarding = newline.is_none();
                return Err(LineError::TooLong { limit: self.limit });
            }
            self.line.extend_from_slice(&available[..content]);
            self.inner.consume(take);
            if newline.is_some() {
                return self.finish_line();
            }
        }
    }

    fn finish_line(&mut self) -> Result<Option<String>, LineError> {
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() > self.limit {
            return Err(LineError::TooLong { limit: self.limit });
        }
        match std::str::from_utf8(&self.line) {
            Ok(text) => Ok(Some(text.to_string())),
            Err(_) => Err(LineError::InvalidUtf8),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufReader;

    use super::*;

    fn lines(input: &[u8], limit: usize, buffer: usize) -> Vec<Result<String, String>> {
        let mut reader = LineReader::new(BufReader::with_capacity(buffer, input), limit);
        let mut out = Vec::new();
        for _ in 0..100 {
            match reader.read_line() {
                Ok(Some(line)) => out.push(Ok(line)),
                Ok(None) => return out,
                Err(LineError::TooLong { .. }) => out.push(Err("too long".into())),
                Err(LineError::InvalidUtf8) => out.push(Err("utf8".into())),
                Err(LineError::Io(e)) => panic!("{e}"),
            }
        }
        panic!("the reader did not reach the end");
    }

    #[test]
    fn lines_end_with_lf_or_crlf_and_the_last_may_lack_one() {
        let got = lines(b"put 1 bar\r\nget 1\n\nlast", 100, 4);
        let want = ["put 1 bar", "get 1", "", "last"].map(|s| Ok(s.to_string()));
        assert_eq!(got, want);
    }

    #[test]
    fn an_over_long_line_is_one_error_and_the_next_line_is_read() {
        for buffer in [1, 3, 8, 64] {
            let input = b"get 1\nxxxxxxxxxxxxxxxxxxxxxxxx\nget 2\n";
            let got = lines(input, 10, buffer);
            let want = vec![
                Ok("get 1".to_string()),
                Err("too long".to_string()),
                Ok("get 2".to_string()),
            ];
            assert_eq!(got, want, "buffer {buffer}");
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_even_with_crlf() {
        assert_eq!(
            lines(b"0123456789\r\n", 10, 4),
            vec![Ok("0123456789".into())]
        );
        assert_eq!(
            lines(b"0123456789x\n", 10, 64),
            vec![Err("too long".into())]
        );
        assert_eq!(
            lines(b"0123456789x\r", 10, 64),
            vec![Err("too long".into())]
        );
    }

    #[test]
    fn invalid_utf8_is_one_error_and_the_stream_goes_on() {
        let got = lines(b"get \xff\xfe\nget 1\n", 100, 64);
        assert_eq!(got, vec![Err("utf8".into()), Ok("get 1".into())]);
    }
}
