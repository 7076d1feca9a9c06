//! Terminal-safe text: what the text transports (`/follow`, `/sse`, `/poll?format=text`) do with
//! the control characters of a line, so that `curl` into a terminal shows a hostile line instead
//! of obeying it (an OSC 52 clipboard write, a title change, a screen clear, a bell).
//!
//! Kept as they are: tab, and SGR colour sequences (`ESC [ params m`, params made of digits, `;`
//! and `:`), which only colour text. Made visible: every other C0 control and DEL in caret
//! notation, as `cat -v` writes them (`^[`, `^G`, `^M`, `^?`), and the C1 controls U+0080..U+009F
//! as `\u0080`..`\u009f`. An escape sequence that is not SGR thus shows as text:
//! `ESC ] 52 ; c ; ... BEL` becomes `^[]52;c;...^G`. Everything else, multi-byte UTF-8 included,
//! is copied byte for byte. `raw=1` ([`parse_raw`]) turns this off. The JSON transports
//! (WebSocket, poll JSON) escape control characters themselves and do not come here.

use super::error::ApiError;

/// Bytes that start something to look at: C0 controls but tab, DEL, and 0xC2 (the lead byte of
/// U+0080..U+00BF in UTF-8, which holds the C1 controls). Every other byte is copied as is.
const LOOK: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = b != b'\t' as usize;
        b += 1;
    }
    table[0x7f] = true;
    table[0xc2] = true;
    table
};

const ESC: u8 = 0x1b;

/// Appends `line` to `out` with its control characters made visible (see the module doc). A line
/// without any is copied in one piece; nothing is allocated but `out`'s growth.
pub fn push_line(line: &str, out: &mut Vec<u8>) {
    let bytes = line.as_bytes();
    // Start of the bytes not yet copied: plain runs go out in one piece.
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if !LOOK[b as usize] {
            i += 1;
            continue;
        }
        if b == 0xc2 {
            // `line` is UTF-8, so a second byte follows; C1 controls are 0xC2 0x80..=0x9F.
            match bytes.get(i + 1) {
                Some(&second @ 0x80..=0x9f) => {
                    out.extend_from_slice(&bytes[copied..i]);
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[(second >> 4) as usize]);
                    out.push(HEX[(second & 0xf) as usize]);
                    i += 2;
                    copied = i;
                }
                _ => i += 1,
            }
            continue;
        }
        if b == ESC {
            if let Some(len) = sgr_len(&bytes[i..]) {
                i += len;
                continue;
            }
        }
        out.extend_from_slice(&bytes[copied..i]);
        out.push(b'^');
        out.push(if b == 0x7f { b'?' } else { b + 0x40 });
        i += 1;
        copied = i;
    }
    out.extend_from_slice(&bytes[copied..]);
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The length of the SGR sequence `ESC [ params m` that `bytes` starts with, if it starts with one.
fn sgr_len(bytes: &[u8]) -> Option<usize> {
    if bytes.get(1) != Some(&b'[') {
        return None;
    }
    let params = bytes[2..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b';' || **b == b':')
        .count();
    (bytes.get(2 + params) == Some(&b'm')).then_some(3 + params)
}

/// The `raw` query parameter: `1` (or `true`, `yes`) sends lines byte for byte, control
/// characters included; `0` (or `false`, `no`) is the default, terminal-safe text.
pub fn parse_raw(value: &str) -> Result<bool, ApiError> {
    super::query::switch("raw", value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(line: &str) -> String {
        let mut out = b"before|".to_vec();
        push_line(line, &mut out);
        let text = String::from_utf8(out).expect("the output stays UTF-8");
        text.strip_prefix("before|").expect("appended").to_owned()
    }

    #[test]
    fn plain_lines_and_multibyte_utf8_are_copied_as_is() {
        for line in [
            "",
            "GET /index.html 200",
            "héllo wörld ✓ 日本 🦀",
            "\u{a0}\u{bf}\u{ff}",
        ] {
            assert_eq!(safe(line), line);
        }
    }

    #[test]
    fn tab_and_sgr_colours_are_kept() {
        let line = "\x1b[31merror\x1b[0m\tok \x1b[1;38;5;208mbold\x1b[m \x1b[38:2::255:0:0mrgb";
        assert_eq!(safe(line), line);
    }

    #[test]
    fn osc_52_osc_0_screen_clear_and_bell_are_made_visible() {
        assert_eq!(
            safe("\x1b]52;c;ZXZpbA==\x07copied"),
            "^[]52;c;ZXZpbA==^Gcopied"
        );
        assert_eq!(safe("\x1b]0;pwned\x1b\\x"), "^[]0;pwned^[\\x");
        assert_eq!(safe("a\x1b[2Jb"), "a^[[2Jb");
        assert_eq!(safe("ding\x07"), "ding^G");
    }

    #[test]
    fn every_other_c0_control_and_del_use_caret_notation() {
        assert_eq!(safe("a\rb"), "a^Mb");
        assert_eq!(safe("\0\x01\x08\x0b\x0c\x1f\x7f"), "^@^A^H^K^L^_^?");
        // An unfinished or non-SGR CSI shows its ESC.
        assert_eq!(safe("\x1b[31"), "^[[31");
        assert_eq!(safe("\x1b[?1049h"), "^[[?1049h");
        assert_eq!(safe("\x1b"), "^[");
    }

    #[test]
    fn c1_controls_are_written_as_escapes() {
        assert_eq!(safe("a\u{9b}2Jb"), "a\\u009b2Jb");
        assert_eq!(safe("\u{80}\u{9d}\u{9f}"), "\\u0080\\u009d\\u009f");
        // Neighbours of C1 in the same UTF-8 lead byte are ordinary text.
        assert_eq!(safe("\u{a0}x\u{a9}"), "\u{a0}x\u{a9}");
    }

    #[test]
    fn raw_is_a_switch() {
        assert!(parse_raw("1").unwrap());
        assert!(!parse_raw("0").unwrap());
        let err = parse_raw("please").unwrap_err();
        assert!(err.to_string().contains("`raw`"), "{err}");
    }
}
