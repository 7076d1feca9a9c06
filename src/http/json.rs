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

/// True when some byte needs escaping in JSON: a control character, `"` or `\`.
fn needs_escape(bytes: &[u8]) -> bool {
    // Branch-free per byte, in blocks, so that it runs many bytes per cycle.
    let mut chunks = bytes.chunks_exact(32);
    for chunk in &mut chunks {
        let mut any = false;
        for &b in chunk {
            any |= (b < 0x20) | (b == b'"') | (b == b'\\');
        }
        if any {
            return true;
        }
    }
    chunks
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
    }
}
