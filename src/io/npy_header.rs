//! A strict check of a `.npy` header before `npyz` parses it. numpy writes the header as one
//! Python dict literal, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`; npyz
//! reads it with a general Python-literal grammar that backtracks exponentially on some short
//! malformed headers (found by fuzzing: a 150-byte header hung the parser) and multiplies the
//! shape without checking (a header claiming `(2^32, 2^32)` overflowed). Here the header must be
//! exactly that dict — the three keys once each, a dtype string, `True`/`False`, a tuple of
//! integers whose product fits 64 bits — or the file is refused with a one-line error.

use std::io::Read;
use std::path::Path;

/// Longest header accepted (numpy's own are under 200 bytes; a few hundred dimensions fit).
const MAX_HEADER: usize = 16 << 10;

/// Reads and checks the header of `path`; `Err` is the message (without the path).
pub fn check(path: &Path) -> std::io::Result<std::result::Result<(), String>> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(12 + MAX_HEADER as u64)
        .read_to_end(&mut head)?;
    Ok(check_bytes(&head))
}

/// Checks the magic, the version, the header length and the header dict.
pub fn check_bytes(head: &[u8]) -> std::result::Result<(), String> {
    if !head.starts_with(b"\x93NUMPY") || head.len() < 10 {
        return Err("it does not start with the .npy magic \\x93NUMPY".into());
    }
    let (len, start) = match head[6] {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        2 | 3 if head.len() >= 12 => (
            u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
            12,
        ),
        v => return Err(format!("unknown .npy format version {v}")),
    };
    if len > MAX_HEADER {
        return Err(format!(
            "its header is {len} bytes long (at most {MAX_HEADER})"
        ));
    }
    let text = head
        .get(start..start + len)
        .ok_or("the file ends inside its header")?;
    let text = std::str::from_utf8(text).map_err(|_| "its header is not text")?;
    dict(text.trim_end_matches(['\n', ' ', '\0']))
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` with the keys in any order.
fn dict(text: &str) -> std::result::Result<(), String> {
    let not_dict = || {
        format!(
            "its header is not numpy's dict of 'descr', 'fortran_order' and 'shape' ({})",
            preview(text)
        )
    };
    let inner = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(not_dict)?;
    let (mut descr, mut order, mut shape) = (false, false, false);
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (key, after) = quoted(rest).ok_or_else(not_dict)?;
        let after = after.trim_start().strip_prefix(':').ok_or_else(not_dict)?;
        let after = after.trim_start();
        let seen = match key {
            "descr" => &mut descr,
            "fortran_order" => &mut order,
            "shape" => &mut shape,
            _ => return Err(not_dict()),
        };
        if std::mem::replace(seen, true) {
            return Err(not_dict());
        }
        let after = match key {
            "descr" => {
                let (d, after) = quoted(after).ok_or_else(not_dict)?;
                let ok = d.len() <= 16
                    && d.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "<>|=".contains(c));
                if !ok {
                    return Err(not_dict());
                }
                after
            }
            "fortran_order" => ["True", "False"]
                .iter()
                .find_map(|w| after.strip_prefix(w))
                .ok_or_else(not_dict)?,
            _ => {
                let close = after.find(')').ok_or_else(not_dict)?;
                let dims = after.strip_prefix('(').ok_or_else(not_dict)?;
                tuple(&dims[..close - 1])?;
                &after[close + 1..]
            }
        };
        rest = after.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        if !rest.is_empty() && !rest.starts_with('\'') {
            return Err(not_dict());
        }
    }
    if !(descr && order && shape) {
        return Err(not_dict());
    }
    Ok(())
}

/// A shape tuple's inside: `2, 3` or `5,` or empty; the product must fit 64 bits.
fn tuple(dims: &str) -> std::result::Result<(), String> {
    let mut count = Some(1u64);
    for d in dims.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let v: u64 = d
            .parse()
            .map_err(|_| format!("its header's shape ({dims}) holds `{d}`, not a size"))?;
        count = count.and_then(|c| c.checked_mul(v));
    }
    if count.is_none() {
        return Err(format!(
            "its header claims the shape ({}), more values than any file holds; the file is corrupt",
            dims.trim()
        ));
    }
    Ok(())
}

/// A single-quoted word at the start of `s` and what follows it.
fn quoted(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('\'')?;
    let end = s.find('\'')?;
    Some((&s[..end], &s[end + 1..]))
}

fn preview(text: &str) -> String {
    let t: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        format!("{t}…")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b
    }

    #[test]
    fn accepts_numpy_headers_and_refuses_the_rest() {
        for ok in [
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }      \n",
            "{'shape': (5,), 'fortran_order': True, 'descr': '<f8'}\n",
            "{'descr': '|u1', 'fortran_order': False, 'shape': (), }\n",
        ] {
            assert_eq!(check_bytes(&npy(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "[1, 2, 3]",
            "{'descr': '<f4', 'fortran_order': False}",
            "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 4294967296, 4294967296), }",
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}",
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '<f4', 'fortran_order': False, 'shape': (((((((((2,)}",
        ] {
            let e = check_bytes(&npy(bad)).unwrap_err();
            assert!(!e.contains('\n'), "{bad}: {e}");
        }
        assert!(check_bytes(b"\x93NUMPY\x01").is_err());
        assert!(check_bytes(b"hello world").is_err());
    }
}
