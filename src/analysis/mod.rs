//! The analysis a CNN course teaches: output shapes with the formula filled in, parameter
//! counts, multiply-accumulates and FLOPs, memory, and receptive fields. Reports are returned
//! as [`Explanation`](crate::explain::Explanation)s (text + small tables) for the CLI to render.

pub mod layer;
pub mod receptive;
pub mod summary;

/// `1234567` → `"1,234,567"`.
pub fn thousands(v: impl Into<u128>) -> String {
    let s = v.into().to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count with its noun, singular for 1 and thousands separated: `1 filter`, `12,323 filters`.
pub fn count(n: impl Into<u128>, noun: &str) -> String {
    let n = n.into();
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", thousands(n))
    }
}

/// A byte count in the largest fitting binary unit (`12.5 MiB`).
pub fn bytes(b: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::thousands(61706u64), "61,706");
        assert_eq!(super::thousands(999u64), "999");
        assert_eq!(super::count(1u64, "filter"), "1 filter");
        assert_eq!(super::count(12323u64, "channel"), "12,323 channels");
        assert_eq!(super::bytes(3 << 20), "3.0 MiB");
    }
}
