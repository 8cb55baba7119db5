//! Inline tensor literals such as `[[1,2,0],[0,1,3],[2,2,1]]`: nested brackets, numbers
//! separated by commas or spaces. The shape is the nesting; rows must be rectangular.

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Deepest nesting accepted (tensors have a few axes; this bounds the parser's recursion).
pub const MAX_DEPTH: usize = 32;

/// Parses a literal; `arg` names the argument in error messages.
pub fn parse(arg: &str, s: &str) -> Result<Tensor> {
    let mut p = Parser {
        arg,
        src: s,
        chars: s.char_indices().peekable(),
    };
    p.skip_ws();
    let node = p.value(0)?;
    p.skip_ws();
    if let Some((i, c)) = p.chars.next() {
        return Err(p.err(format!(
            "unexpected '{c}' at position {i} after the literal"
        )));
    }
    let mut shape = Vec::new();
    let mut data = Vec::new();
    node.flatten(&mut shape, 0, &mut data)
        .map_err(|m| p.err(m))?;
    Tensor::new(shape, data)
}

enum Node {
    Num(f32),
    List(Vec<Node>),
}

impl Node {
    /// Appends values to `data` and checks that every list at depth `depth` has the same length.
    fn flatten(
        &self,
        shape: &mut Vec<usize>,
        depth: usize,
        data: &mut Vec<f32>,
    ) -> std::result::Result<(), String> {
        match self {
            Node::Num(v) => {
                if depth < shape.len() {
                    return Err("rows are not all nested to the same depth".into());
                }
                data.push(*v);
            }
            Node::List(items) => {
                if items.is_empty() {
                    return Err("empty list; every row needs at least one number".into());
                }
                if depth == shape.len() {
                    if !data.is_empty() {
                        return Err("rows are not all nested to the same depth".into());
                    }
                    shape.push(items.len());
                } else if shape[depth] != items.len() {
                    return Err(format!(
                        "ragged rows: a row has {} entries where an earlier one has {}",
                        items.len(),
                        shape[depth]
                    ));
                }
                for it in items {
                    it.flatten(shape, depth + 1, data)?;
                }
            }
        }
        Ok(())
    }
}

struct Parser<'a> {
    arg: &'a str,
    src: &'a str,
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
}

impl Parser<'_> {
    fn err(&self, m: impl std::fmt::Display) -> Error {
        Error::arg(
            self.arg,
            format!(
                "malformed literal '{}': {m}; write a matrix like '[[1,2],[3,4]]' or give a .npy file",
                self.src
            ),
        )
    }

    fn skip_ws(&mut self) {
        while matches!(self.chars.peek(), Some((_, c)) if c.is_whitespace()) {
            self.chars.next();
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node> {
        self.skip_ws();
        match self.chars.peek().copied() {
            Some((i, '[')) => {
                if depth >= MAX_DEPTH {
                    return Err(self.err(format!(
                        "nested too deep at position {i} (at most {MAX_DEPTH} levels of brackets)"
                    )));
                }
                self.chars.next();
                let mut items = Vec::new();
                loop {
                    self.skip_ws();
                    if let Some((_, ']')) = self.chars.peek() {
                        self.chars.next();
                        return Ok(Node::List(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.skip_ws();
                    match self.chars.peek().copied() {
                        Some((_, ',')) => {
                            self.chars.next();
                        }
                        Some((_, ']')) => {}
                        Some((_, c))
                            if c == '-'
                                || c == '+'
                                || c == '.'
                                || c.is_ascii_digit()
                                || c == '[' => {}
                        Some((i, c)) => {
                            return Err(self.err(format!("unexpected '{c}' at position {i}")))
                        }
                        None => return Err(self.err("missing ']'")),
                    }
                }
            }
            Some((start, _)) => {
                let mut end = start;
                while let Some(&(i, c)) = self.chars.peek() {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+') {
                        end = i + c.len_utf8();
                        self.chars.next();
                    } else {
                        break;
                    }
                }
                let tok = &self.src[start..end];
                let word = tok.trim_start_matches(['+', '-']).to_ascii_lowercase();
                let special = matches!(word.as_str(), "nan" | "inf" | "infinity");
                match tok.parse::<f64>() {
                    // nan, NaN, inf, -Infinity: as written
                    Ok(v) if special => Ok(Node::Num(v as f32)),
                    Ok(v) if v.abs() <= f32::MAX as f64 => Ok(Node::Num(v as f32)),
                    Ok(_) => {
                        Err(self.err(format!("'{tok}' is outside the float32 range (±3.4e38)")))
                    }
                    _ if tok.is_empty() => {
                        let c = self.src[start..].chars().next().unwrap_or(' ');
                        Err(self.err(format!("unexpected '{c}' at position {start}")))
                    }
                    _ => Err(self.err(format!("'{tok}' is not a number"))),
                }
            }
            None => Err(self.err("it ends too early")),
        }
    }
}

/// A constant tensor written as a word: `ones`, or a finite number such as `0.5`, in every cell
/// of `shape` (`--grad-output ones` in the CLI and the page); `None` when `s` is a tensor
/// argument instead.
pub fn constant(s: &str, shape: &[usize]) -> Option<Tensor> {
    let v = match s.trim() {
        "ones" => 1.0,
        t => t.parse::<f32>().ok().filter(|v| v.is_finite())?,
    };
    let n = shape.iter().product();
    Some(Tensor::new(shape.to_vec(), vec![v; n]).expect("sizes agree"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn constants_are_ones_or_finite_numbers() {
        let t = super::constant("ones", &[1, 2]).unwrap();
        assert_eq!((t.shape(), t.data()), (&[1, 2][..], &[1.0, 1.0][..]));
        assert_eq!(super::constant(" 0.5", &[3]).unwrap().data(), &[0.5; 3]);
        for s in ["inf", "nan", "[1,2]", "x.npy"] {
            assert!(super::constant(s, &[2]).is_none(), "{s}");
        }
    }

    use super::*;

    #[test]
    fn parses_matrix() {
        let t = parse("x", "[[1,1,-2],[1,0,0],[0,1,0]]").unwrap();
        assert_eq!(t.shape(), &[3, 3]);
        assert_eq!(t.data()[2], -2.0);
        let t = parse("x", "[[1 2.5] [3 4e1]]").unwrap();
        assert_eq!(t.data(), &[1.0, 2.5, 3.0, 40.0]);
        let t = parse("x", "7").unwrap();
        assert_eq!(t.shape(), &[] as &[usize]);
        let t = parse("x", "[nan, NaN, -inf, Infinity, 3.4e38]").unwrap();
        assert!(t.data()[0].is_nan() && t.data()[1].is_nan());
        assert_eq!(t.data()[2], f32::NEG_INFINITY);
        assert_eq!(t.data()[3], f32::INFINITY);
        let deep = format!("{}1{}", "[".repeat(30000), "]".repeat(30000));
        assert!(parse("x", &deep)
            .unwrap_err()
            .to_string()
            .contains("too deep"));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "[[1,2],[3]]",
            "[[1,2],[3,x]]",
            "[[1,2]",
            "[]",
            "[[1,2]]]",
            "[1,[2]]",
            "[[1e39]]",
            "[-1e400]",
        ] {
            let e = parse("input", bad).unwrap_err().to_string();
            assert!(e.starts_with("input: malformed literal"), "{bad}: {e}");
        }
    }
}
