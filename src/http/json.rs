//! JSON string escaping for the hot path: log lines going into `lines` frames and poll answers.
//!
//! serde_json escapes a string byte by byte through a table; most log lines have nothing to
//! escape, so [`push_str`] first checks the whole line in one pass the compiler vectorizes and
//! copies it in one piece, and hands only lines that need escaping to serde_json. The output is
//! byte for byte serde_json's.

/// Appends `text` as a JSON string (quotes included) to `out`.
pub fn push_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    if !needs_escape(bytes) {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Appends lines as JSON strings, each after a comma but the first unless `comma`: the lines
/// held back to back in `text`, the first starting at `start` and line `i` ending at `ends[i]`
/// (see `LineBatch::run`). The whole run is checked in one pass; when nothing in it needs
/// escaping, the usual case, each line is copied as it is, else line by line through
/// [`push_str`]. Bounds that do not fit `text` write nothing.
pub fn push_lines(out: &mut Vec<u8>, text: &str, start: usize, ends: &[u32], comma: bool) {
    let bytes = text.as_bytes();
    let Some(run) = ends
        .last()
        .and_then(|&last| bytes.get(start..last as usize))
    else {
        return;
    };
    if needs_escape(run) {
        let mut from = start;
        for (i, &end) in ends.iter().enumerate() {
            let end = end as usize;
            if comma || i > 0 {
                out.push(b',');
            }
            push_str(out, text.get(from..end).unwrap_or_default());
            from = end;
        }
        return;
    }
    out.reserve(run.len() + 3 * ends.len());
    let mut from = start;
    for (i, &end) in ends.iter().enumerate() {
        let end = end as usize;
        if comma || i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        out.extend_from_slice(bytes.get(from..end).unwrap_or_default());
        out.push(b'"');
        from = end;
    }
}

/// True when some byte needs escaping in JSON: a control character, `"` or `\\`.
fn needs_escape(bytes: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if bytes.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (just checked), all that `needs_escape_avx2` asks.
            return unsafe { needs_escape_avx2(bytes) };
        }
    }
    scan::<32>(bytes)
}

/// [`scan`] compiled for AVX2: twice the bytes per instruction of the SSE2 baseline.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn needs_escape_avx2(bytes: &[u8]) -> bool {
    scan::<64>(bytes)
}

/// The scan of [`needs_escape`], `LANES` bytes a step.
#[inline(always)]
fn scan<const LANES: usize>(bytes: &[u8]) -> bool {
    // Lane by lane into an accumulator that is looked at once at the end: the compiler keeps it
    // in vector registers (compare, or; no mask extracted per block). Escapes are rare, so
    // scanning a run to its end costs less than checking for one at every block.
    let mut acc = [0u8; LANES];
    let mut chunks = bytes.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &b) in acc.iter_mut().zip(chunk) {
            *a |= u8::from(b < 0x20) | u8::from(b == b'"') | u8::from(b == b'\\');
        }
    }
    acc.iter().any(|&a| a != 0)
        || chunks
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_is_serde_jsons_for_every_kind_of_text() {
        let long_plain = "x".repeat(100);
        let long_quote = format!("{}\"{}", "a".repeat(40), "b".repeat(40));
        let samples = [
            "",
            "plain ascii",
            long_plain.as_str(),
            long_quote.as_str(),
            "tab\there",
            "quote \" and backslash \\",
            "control \u{1} \u{1f} del \u{7f}",
            "unicode é ✓ 😀 \u{2028}",
            "ends with backslash \\",
        ];
        for text in samples {
            let mut ours = Vec::new();
            push_str(&mut ours, text);
            assert_eq!(ours, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
        // Every position of an escape in runs long enough for the vector scans.
        for len in [63, 64, 65, 200, 1000] {
            let clean = "a".repeat(len);
            assert!(!needs_escape(clean.as_bytes()), "{len}");
            for at in 0..len {
                for bad in [b'"', b'\\', 0x1f, 0x00] {
                    let mut text = clean.clone().into_bytes();
                    text[at] = bad;
                    assert!(needs_escape(&text), "{len} {at} {bad}");
                }
            }
        }
        // A run of lines back to back, with and without something to escape in it.
        for run in [&samples[..2], &samples[1..3], &samples[3..], &samples[..]] {
            let text: String = run.concat();
            let mut ends = Vec::new();
            let mut end = 0;
            for line in run {
                end += line.len() as u32;
                ends.push(end);
            }
            let mut ours = b"[".to_vec();
            push_lines(&mut ours, &text, 0, &ends, false);
            ours.push(b']');
            assert_eq!(ours, serde_json::to_vec(run).unwrap(), "{run:?}");
            // From the second line on, after something already written.
            let mut ours = b"[\"x\"".to_vec();
            push_lines(&mut ours, &text, run[0].len(), &ends[1..], true);
            ours.push(b']');
            let mut want = vec!["x"];
            want.extend_from_slice(&run[1..]);
            assert_eq!(ours, serde_json::to_vec(&want).unwrap(), "{run:?}");
        }
    }
}
