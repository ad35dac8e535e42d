//! A pass over the raw bytes that sits between the input and the `csv` parser.
//!
//! The `csv` crate parses well but forgives too much for an import that must
//! name the line a person sees in an editor: it reads an unterminated quote to
//! the end of the file without complaint, it reports record positions that
//! drift on CRLF files and after blank lines, and it buffers a row of any size.
//! This scanner follows the same quoting rules on the raw bytes, so it knows the
//! physical line where every row starts, where a quote opened, where the first
//! invalid UTF-8 byte is, and it stops a runaway row before it fills memory.
//! It strips a UTF-8 byte order mark, so the parser sees plain CSV.

use std::collections::VecDeque;
use std::io::{self, Read};

const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Where the scanner is inside the CSV grammar (RFC 4180 with the `csv`
/// crate's defaults: `,` delimiter, `"` quote, doubled quotes as escapes, and
/// `\r`, `\n` or `\r\n` ending a row; blank lines are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    RecordStart,
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote seen inside a quoted field: either the closing quote or the
    /// first half of an escaped `""`.
    QuoteInQuoted,
}

/// The first thing found wrong with the bytes. Offsets count from the first
/// byte after the byte order mark, like the `csv` crate's positions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Problem {
    InvalidUtf8 {
        offset: u64,
        line: u64,
        byte: u8,
    },
    UnterminatedQuote {
        offset: u64,
        line: u64,
        field: usize,
    },
    TextAfterQuote {
        offset: u64,
        line: u64,
        field: usize,
        close_line: u64,
    },
    RowTooLarge {
        offset: u64,
        line: u64,
        limit: u64,
        /// Line and field of a quote still open when the limit was hit.
        open_quote: Option<(u64, usize)>,
    },
}

impl Problem {
    /// The offset inside the row the problem belongs to, used to decide
    /// whether the parser has reached that row yet.
    fn offset(&self) -> u64 {
        match self {
            Problem::InvalidUtf8 { offset, .. }
            | Problem::UnterminatedQuote { offset, .. }
            | Problem::TextAfterQuote { offset, .. }
            | Problem::RowTooLarge { offset, .. } => *offset,
        }
    }
}

/// Incremental UTF-8 validation, byte by byte, so a sequence split across two
/// reads is judged as a whole (Unicode table 3-7, well-formed sequences).
#[derive(Debug, Default)]
struct Utf8 {
    need: u8,
    lo: u8,
    hi: u8,
    start_offset: u64,
    start_line: u64,
    lead: u8,
}

pub(super) struct Scanner<R> {
    inner: R,
    head: [u8; 3],
    head_len: usize,
    head_pos: usize,
    started: bool,
    bom_len: u64,
    offset: u64,
    line: u64,
    prev_cr: bool,
    state: State,
    field: usize,
    record_offset: u64,
    record_line: u64,
    record_bytes: u64,
    quote_open: (u64, u64, usize),
    utf8: Utf8,
    /// (offset, line) of every row start the parser has not claimed yet. The
    /// parser trails the scanner by at most its buffer, so this stays short.
    starts: VecDeque<(u64, u64)>,
    problem: Option<Problem>,
    finished: bool,
    max_row_bytes: u64,
}

impl<R: Read> Scanner<R> {
    pub(super) fn new(inner: R, max_row_bytes: u64) -> Self {
        Scanner {
            inner,
            head: [0; 3],
            head_len: 0,
            head_pos: 0,
            started: false,
            bom_len: 0,
            offset: 0,
            line: 1,
            prev_cr: false,
            state: State::RecordStart,
            field: 0,
            record_offset: 0,
            record_line: 1,
            record_bytes: 0,
            quote_open: (0, 1, 0),
            utf8: Utf8::default(),
            starts: VecDeque::new(),
            problem: None,
            finished: false,
            max_row_bytes,
        }
    }

    /// Length of the byte order mark that was stripped (0 or 3), to turn
    /// offsets back into positions in the file as uploaded.
    pub(super) fn bom_len(&self) -> u64 {
        self.bom_len
    }

    /// Bytes handed to the parser so far, after the byte order mark.
    #[cfg(test)]
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The line where the row that the parser read as bytes `start..end` begins.
    pub(super) fn claim_row_start(&mut self, start: u64, end: u64) -> Option<u64> {
        while let Some(&(offset, line)) = self.starts.front() {
            self.starts.pop_front();
            if offset < start {
                // Cannot happen while both follow the same grammar; skipping
                // keeps a disagreement from shifting every later line.
                continue;
            }
            if offset < end {
                return Some(line);
            }
            // Belongs to a later row: put it back.
            self.starts.push_front((offset, line));
            break;
        }
        None
    }

    /// The problem found so far, if it lies before `end`, i.e. in a row the
    /// parser has already read.
    pub(super) fn problem_before(&self, end: u64) -> Option<&Problem> {
        self.problem.as_ref().filter(|p| p.offset() < end)
    }

    /// Any problem found so far, wherever it is.
    pub(super) fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    fn flag(&mut self, problem: Problem) {
        if self.problem.is_none() {
            self.problem = Some(problem);
        }
    }

    fn fill_head(&mut self) -> io::Result<()> {
        while self.head_len < BOM.len() {
            match self.inner.read(&mut self.head[self.head_len..]) {
                Ok(0) => break,
                Ok(n) => self.head_len += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.head[..self.head_len] == BOM {
            self.bom_len = BOM.len() as u64;
            self.head_len = 0;
        }
        Ok(())
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.utf8.need > 0 {
            let u = &self.utf8;
            let problem = Problem::InvalidUtf8 {
                offset: u.start_offset,
                line: u.start_line,
                byte: u.lead,
            };
            self.flag(problem);
        }
        if self.state == State::Quoted {
            let (offset, line, field) = self.quote_open;
            self.flag(Problem::UnterminatedQuote {
                offset,
                line,
                field,
            });
        }
    }

    /// Scans `bytes` and returns how many may go to the parser: all of them,
    /// unless a row outgrows the limit, in which case the bytes before that
    /// point still go through so the rows before it are read normally.
    fn scan(&mut self, bytes: &[u8]) -> usize {
        for (i, &b) in bytes.iter().enumerate() {
            // A lone CR is a line break too (old Mac files); count it once we
            // know no LF follows, so CRLF counts as one line.
            if self.prev_cr && b != b'\n' {
                self.line += 1;
            }
            self.check_utf8(b);
            if !self.step(b) {
                return i;
            }
            if b == b'\n' {
                self.line += 1;
            }
            self.prev_cr = b == b'\r';
            self.offset += 1;
        }
        bytes.len()
    }

    fn check_utf8(&mut self, b: u8) {
        let u = &mut self.utf8;
        if u.need > 0 {
            if (u.lo..=u.hi).contains(&b) {
                u.need -= 1;
                u.lo = 0x80;
                u.hi = 0xBF;
                return;
            }
            let problem = Problem::InvalidUtf8 {
                offset: u.start_offset,
                line: u.start_line,
                byte: u.lead,
            };
            u.need = 0;
            self.flag(problem);
        }
        let (need, lo, hi) = match b {
            0x00..=0x7F => return,
            0xC2..=0xDF => (1, 0x80, 0xBF),
            0xE0 => (2, 0xA0, 0xBF),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            0xED => (2, 0x80, 0x9F),
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            0xF4 => (3, 0x80, 0x8F),
            _ => {
                let problem = Problem::InvalidUtf8 {
                    offset: self.offset,
                    line: self.line,
                    byte: b,
                };
                self.flag(problem);
                return;
            }
        };
        self.utf8 = Utf8 {
            need,
            lo,
            hi,
            start_offset: self.offset,
            start_line: self.line,
            lead: b,
        };
    }

    /// Advances the grammar by one byte; false when the row is too large.
    fn step(&mut self, b: u8) -> bool {
        let is_end = b == b'\r' || b == b'\n';
        if self.state == State::RecordStart {
            if is_end {
                return true;
            }
            self.state = State::FieldStart;
            self.field = 0;
            self.record_offset = self.offset;
            self.record_line = self.line;
            self.record_bytes = 0;
            self.starts.push_back((self.offset, self.line));
        }
        self.record_bytes += 1;
        if self.record_bytes > self.max_row_bytes {
            let open_quote = matches!(self.state, State::Quoted | State::QuoteInQuoted)
                .then_some((self.quote_open.1, self.quote_open.2));
            self.flag(Problem::RowTooLarge {
                offset: self.record_offset,
                line: self.record_line,
                limit: self.max_row_bytes,
                open_quote,
            });
            return false;
        }
        self.state = match (self.state, b) {
            (State::FieldStart, b'"') => {
                self.quote_open = (self.offset, self.line, self.field);
                State::Quoted
            }
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, b',') => {
                self.field += 1;
                State::FieldStart
            }
            (State::FieldStart | State::Unquoted | State::QuoteInQuoted, _) if is_end => {
                State::RecordStart
            }
            (State::FieldStart | State::Unquoted, _) => State::Unquoted,
            (State::Quoted, b'"') => State::QuoteInQuoted,
            (State::Quoted, _) => State::Quoted,
            (State::QuoteInQuoted, b'"') => State::Quoted,
            (State::QuoteInQuoted, _) => {
                // The parser would glue this text onto the field; in a file
                // Shopify wrote it never happens, so it almost always means a
                // closing quote is missing earlier and the quotes now pair up
                // wrongly.
                let (offset, line, field) = self.quote_open;
                let close_line = self.line;
                self.flag(Problem::TextAfterQuote {
                    offset,
                    line,
                    field,
                    close_line,
                });
                State::Unquoted
            }
            (State::RecordStart, _) => State::RecordStart,
        };
        true
    }
}

fn too_large() -> io::Error {
    io::Error::other("row exceeds the size limit")
}

impl<R: Read> Read for Scanner<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.started {
            self.started = true;
            self.fill_head()?;
        }
        if matches!(self.problem, Some(Problem::RowTooLarge { .. })) {
            return Err(too_large());
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = if self.head_pos < self.head_len {
            let n = (self.head_len - self.head_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.head[self.head_pos..self.head_pos + n]);
            self.head_pos += n;
            n
        } else {
            self.inner.read(buf)?
        };
        if n == 0 {
            self.finish();
            return Ok(0);
        }
        match self.scan(&buf[..n]) {
            0 => Err(too_large()),
            passed => Ok(passed),
        }
    }
}
