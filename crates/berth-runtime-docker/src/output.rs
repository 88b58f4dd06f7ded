//! Docker's log frames → whole output lines, as the awslogs driver ships them. Pure.
//!
//! With `timestamps=1`, every frame the Engine sends starts with the RFC 3339 (nanosecond) time the daemon
//! received it and a space. A frame that does not end in a newline is a partial message (Docker splits lines
//! over 16 KiB, and a process may flush half a line): the following frames of the same stream continue it, and
//! the line keeps the first fragment's timestamp. Lines longer than [`MAX_LINE_BYTES`] are cut there (on a UTF-8
//! boundary), as the awslogs driver cuts events; empty lines are dropped (CloudWatch has no empty events);
//! invalid UTF-8 becomes U+FFFD.

use std::time::UNIX_EPOCH;

use berth_runtime::{MAX_LINE_BYTES, OutputLine, OutputStream};

use crate::util::parse_docker_time;

/// Reassembles lines from frames, one pending partial line per stream.
#[derive(Debug, Default)]
pub(crate) struct Assembler {
    stdout: Option<(i64, Vec<u8>)>,
    stderr: Option<(i64, Vec<u8>)>,
}

impl Assembler {
    /// Takes one frame; returns the lines it completes, in order.
    pub(crate) fn frame(&mut self, stream: OutputStream, frame: &[u8]) -> Vec<OutputLine> {
        let (timestamp_ns, mut rest) = split_timestamp(frame);
        let pending = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let mut out = Vec::new();
        loop {
            let (piece, complete, after) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], true, &rest[i + 1..]),
                None => (rest, false, &rest[rest.len()..]),
            };
            let (ts, buf) = pending.get_or_insert_with(|| (timestamp_ns.unwrap_or(0), Vec::new()));
            let ts = *ts;
            buf.extend_from_slice(piece);
            while buf.len() > MAX_LINE_BYTES {
                let cut = boundary(buf, MAX_LINE_BYTES);
                let head: Vec<u8> = buf.drain(..cut).collect();
                push(&mut out, ts, stream, &head);
            }
            if complete {
                if let Some((_, buf)) = pending.take() {
                    push(&mut out, ts, stream, &buf);
                }
            } else if pending.as_ref().is_some_and(|(_, b)| b.is_empty()) {
                *pending = None;
            }
            if after.is_empty() {
                break;
            }
            rest = after;
        }
        out
    }

    /// The output ended: whatever is pending becomes the last lines.
    pub(crate) fn finish(&mut self) -> Vec<OutputLine> {
        let mut out = Vec::new();
        for (stream, pending) in [(OutputStream::Stdout, &mut self.stdout), (OutputStream::Stderr, &mut self.stderr)] {
            if let Some((ts, buf)) = pending.take() {
                push(&mut out, ts, stream, &buf);
            }
        }
        out.sort_by_key(|l| l.timestamp_ns);
        out
    }
}

fn push(out: &mut Vec<OutputLine>, timestamp_ns: i64, stream: OutputStream, bytes: &[u8]) {
    if !bytes.is_empty() {
        out.push(OutputLine { timestamp_ns, stream, line: String::from_utf8_lossy(bytes).into_owned() });
    }
}

/// The largest cut ≤ `max` that does not split a UTF-8 sequence (any cut when there is no boundary near).
fn boundary(buf: &[u8], max: usize) -> usize {
    let mut cut = max.min(buf.len());
    // Continuation bytes are 0b10xxxxxx; a sequence is at most 4 bytes long.
    for _ in 0..3 {
        if cut > 0 && cut < buf.len() && buf[cut] & 0xC0 == 0x80 {
            cut -= 1;
        }
    }
    if cut == 0 { max.min(buf.len()) } else { cut }
}

/// Splits Docker's `<RFC 3339 nano> ` prefix off a frame: (its time in ns, the rest). Without a prefix the frame
/// is returned whole with no time.
fn split_timestamp(frame: &[u8]) -> (Option<i64>, &[u8]) {
    let Some(space) = frame.iter().take(40).position(|b| *b == b' ') else { return (None, frame) };
    let parsed = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(parse_docker_time)
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_nanos()).ok());
    match parsed {
        Some(ns) => (Some(ns), &frame[space + 1..]),
        None => (None, frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "2026-11-27T19:40:44.123456789Z";
    const T1_NS: i64 = 1_795_808_444_123_456_789;
    const T2: &str = "2026-11-27T19:40:45.5Z";
    const T2_NS: i64 = 1_795_808_445_500_000_000;

    fn line(ts: i64, stream: OutputStream, s: &str) -> OutputLine {
        OutputLine { timestamp_ns: ts, stream, line: s.into() }
    }

    #[test]
    fn frames_become_lines() {
        use OutputStream::{Stderr, Stdout};
        // (frames in order, lines completed after each frame, lines at the end)
        type Case = (Vec<(OutputStream, String)>, Vec<Vec<OutputLine>>, Vec<OutputLine>);
        let cases: Vec<Case> = vec![
            // One whole line per frame.
            (vec![(Stdout, format!("{T1} hello\n"))], vec![vec![line(T1_NS, Stdout, "hello")]], vec![]),
            // A line split over two frames keeps the first timestamp.
            (
                vec![(Stdout, format!("{T1} hel")), (Stdout, format!("{T2} lo\n"))],
                vec![vec![], vec![line(T1_NS, Stdout, "hello")]],
                vec![],
            ),
            // Streams are reassembled separately.
            (
                vec![(Stdout, format!("{T1} out-")), (Stderr, format!("{T2} err\n")), (Stdout, format!("{T2} end\n"))],
                vec![vec![], vec![line(T2_NS, Stderr, "err")], vec![line(T1_NS, Stdout, "out-end")]],
                vec![],
            ),
            // Empty lines are dropped; a CR stays.
            (
                vec![(Stdout, format!("{T1} \n")), (Stdout, format!("{T2} x\r\n"))],
                vec![vec![], vec![line(T2_NS, Stdout, "x\r")]],
                vec![],
            ),
            // Several lines in one frame share its time.
            (
                vec![(Stdout, format!("{T1} a\nb\n"))],
                vec![vec![line(T1_NS, Stdout, "a"), line(T1_NS, Stdout, "b")]],
                vec![],
            ),
            // A trailing partial line is flushed at the end.
            (vec![(Stderr, format!("{T1} no newline"))], vec![vec![]], vec![line(T1_NS, Stderr, "no newline")]),
            // No timestamp prefix: the whole frame is the line, at time 0.
            (vec![(Stdout, "plain\n".into())], vec![vec![line(0, Stdout, "plain")]], vec![]),
        ];
        for (frames, after_each, at_end) in cases {
            let mut a = Assembler::default();
            for ((stream, frame), want) in frames.iter().zip(&after_each) {
                assert_eq!(&a.frame(*stream, frame.as_bytes()), want, "{frames:?}");
            }
            assert_eq!(a.finish(), at_end, "{frames:?}");
        }
    }

    #[test]
    fn long_lines_are_cut_as_awslogs_does() {
        let mut a = Assembler::default();
        // 300 KiB of '€' (3 bytes each) arriving in 16 KiB frames, then a newline.
        let text = "€".repeat(100 * 1024);
        let mut out = Vec::new();
        for chunk in text.as_bytes().chunks(16 * 1024) {
            let mut frame = format!("{T1} ").into_bytes();
            frame.extend_from_slice(chunk);
            out.extend(a.frame(OutputStream::Stdout, &frame));
        }
        out.extend(a.frame(OutputStream::Stdout, format!("{T2} \n").as_bytes()));
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|l| l.timestamp_ns == T1_NS && l.line.len() <= MAX_LINE_BYTES));
        assert_eq!(out[0].line.len(), MAX_LINE_BYTES - 2, "cut on a character boundary");
        assert_eq!(out.iter().map(|l| l.line.as_str()).collect::<String>(), text);
        // Invalid UTF-8 is replaced, not dropped.
        let mut frame = format!("{T1} a").into_bytes();
        frame.extend_from_slice(&[0xff, b'\n']);
        assert_eq!(a.frame(OutputStream::Stdout, &frame), vec![line(T1_NS, OutputStream::Stdout, "a\u{fffd}")]);
    }
}
