//! Unit tests of the window geometry.
use super::*;

/// The sizes of one axis: input, kernel, stride, dilation, padding.
fn sizes(i: usize, k: usize, s: usize, d: usize, p: (usize, usize)) -> AxisSizes {
    AxisSizes {
        input: i,
        kernel: k,
        stride: s,
        dilation: d,
        pad: p,
    }
}

fn axis(i: usize, k: usize, s: usize, d: usize, p: (usize, usize), ceil: bool) -> AxisWindow {
    AxisWindow::new(0, sizes(i, k, s, d, p), ceil).unwrap()
}

#[test]
fn output_size_formula() {
    assert_eq!(axis(5, 3, 1, 1, (0, 0), false).output, 3); // DS-GA 1008 homework 2, (a)
    assert_eq!(axis(5, 3, 2, 1, (0, 0), false).output, 2); // pen-and-paper exercise (b)
    assert_eq!(axis(200, 40, 2, 1, (0, 0), false).output, 81); // pen-and-paper exercise (a)
    assert_eq!(axis(7, 3, 2, 2, (1, 1), false).output, 3);
    // ceil mode: PyTorch maxpool k2 s2 on 5 -> 3, but the last window may not start in end padding
    assert_eq!(axis(5, 2, 2, 1, (0, 0), true).output, 3);
    assert_eq!(axis(4, 2, 2, 1, (1, 1), true).output, 3);
    assert_eq!(axis(4, 3, 2, 1, (1, 1), true).output, 3);
    assert_eq!(axis(4, 2, 3, 1, (1, 1), true).output, 2); // last window would start in end padding
}

#[test]
fn same_padding_resolution() {
    for (i, k, s) in [(5, 3, 1), (6, 4, 1), (7, 3, 2), (8, 3, 2), (5, 1, 3)] {
        let (pb, pe) = AxisWindow::resolve_padding(&PaddingSpec::Same, 0, 1, i, k, s, 1).unwrap();
        let a = axis(i, k, s, 1, (pb, pe), false);
        assert_eq!(a.output, i.div_ceil(s), "i={i} k={k} s={s}");
        assert!(pe >= pb && pe - pb <= 1);
    }
}

#[test]
fn padding_modes_map_coordinates() {
    let a = axis(4, 3, 1, 1, (2, 2), false);
    let coords: Vec<_> = (-2..6)
        .map(|c| a.map_coord(c, PaddingMode::Reflect).unwrap())
        .collect();
    assert_eq!(coords, vec![2, 1, 0, 1, 2, 3, 2, 1]);
    let coords: Vec<_> = (-2..6)
        .map(|c| a.map_coord(c, PaddingMode::Circular).unwrap())
        .collect();
    assert_eq!(coords, vec![2, 3, 0, 1, 2, 3, 0, 1]);
    let coords: Vec<_> = (-2..6)
        .map(|c| a.map_coord(c, PaddingMode::Replicate).unwrap())
        .collect();
    assert_eq!(coords, vec![0, 0, 0, 1, 2, 3, 3, 3]);
    assert_eq!(a.map_coord(-1, PaddingMode::Zeros), None);
}

#[test]
fn valid_outputs_matches_source() {
    for (i, k, s, d, p) in [
        (7, 3, 2, 2, (1, 2)),
        (5, 5, 1, 1, (2, 2)),
        (9, 2, 3, 1, (0, 1)),
    ] {
        let a = axis(i, k, s, d, p, false);
        for t in 0..k {
            let r = a.valid_outputs(t);
            for o in 0..a.output {
                assert_eq!(a.source(o, t).is_some(), r.contains(&o));
            }
        }
    }
}

#[test]
fn readers_are_the_windows_that_read_each_pixel() {
    for (i, k, s, d, p, ceil) in [
        (7, 3, 2, 2, (1, 2), false),
        (224, 7, 2, 1, (3, 3), false),
        (9, 2, 3, 1, (0, 1), true),
        (10, 4, 3, 1, (0, 0), false), // floor mode drops the last input
    ] {
        let a = axis(i, k, s, d, p, ceil);
        for x in 0..i {
            let want: Vec<(usize, usize)> = (0..k)
                .flat_map(|t| (0..a.output).map(move |o| (t, o)))
                .filter(|&(t, o)| a.source(o, t) == Some(x))
                .collect();
            assert_eq!(a.readers(x).collect::<Vec<_>>(), want, "pixel {x}");
        }
    }
}

#[test]
fn rejects_bad_geometry() {
    assert!(AxisWindow::new(0, sizes(4, 5, 1, 1, (0, 0)), false).is_err());
    assert!(AxisWindow::new(0, sizes(4, 3, 0, 1, (0, 0)), false).is_err());
    assert!(AxisWindow::new(0, sizes(4, 3, 1, 0, (0, 0)), false).is_err());
    let msg = AxisWindow::new(0, sizes(4, 5, 1, 1, (0, 0)), false)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("larger than the padded input 4"), "{msg}");
    // sizes that overflow are errors, not panics or wrapped arithmetic
    assert!(AxisWindow::new(0, sizes(4, 3, 1, usize::MAX, (0, 0)), false).is_err());
    assert!(AxisWindow::new(0, sizes(4, 3, 1, 1, (usize::MAX, 1)), false).is_err());
    assert!(AxisWindow::transposed(0, sizes(3, 3, usize::MAX / 2, 1, (0, 0)), 0).is_err());
    assert!(AxisWindow::transposed(0, sizes(3, 3, 1, 1, (usize::MAX, usize::MAX)), 0).is_err());
}

#[test]
fn transposed_output_size() {
    // PyTorch: (i-1)*s - 2p + d*(k-1) + op + 1
    let t = |i, k, s, d, p, op| AxisWindow::transposed(0, sizes(i, k, s, d, (p, p)), op);
    assert_eq!(t(3, 3, 2, 1, 1, 1).unwrap().input, 6);
    assert_eq!(t(4, 2, 1, 3, 0, 2).unwrap().input, 9);
    assert_eq!(t(5, 3, 1, 1, 0, 0).unwrap().input, 7);
    let w = t(3, 3, 2, 1, 1, 1).unwrap();
    assert_eq!(w.output, 3);
    assert!(t(3, 3, 2, 1, 1, 2)
        .unwrap_err()
        .to_string()
        .contains("smaller than the stride 2 or the dilation 1"));
    assert!(t(1, 1, 1, 1, 1, 0).is_err()); // padding crops everything
}

#[test]
fn padding_spec_parsing() {
    assert_eq!("same".parse::<PaddingSpec>().unwrap(), PaddingSpec::Same);
    assert_eq!(
        "0:1,1:0".parse::<PaddingSpec>().unwrap(),
        PaddingSpec::Explicit(vec![(0, 1), (1, 0)])
    );
    assert_eq!(
        "2".parse::<PaddingSpec>().unwrap(),
        PaddingSpec::Explicit(vec![(2, 2)])
    );
    assert!("x".parse::<PaddingSpec>().is_err());
}

#[test]
fn transposed_window_gives_back_its_output_padding_and_floor_ceil_sizes() {
    for (i, k, s, d, p, op) in [(3, 3, 2, 1, 1, 1), (4, 2, 3, 2, 0, 2), (5, 3, 1, 1, 0, 0)] {
        let w = AxisWindow::transposed(0, sizes(i, k, s, d, (p, p)), op).unwrap();
        assert_eq!(w.output_padding(), op, "i={i} k={k} s={s} d={d} p={p}");
        assert_eq!(w.extent(), d * (k - 1) + 1);
    }
    // 7 inputs, kernel 2, stride 2: 5/2 + 1 is 3 rounded down, 4 up; one more padded: 6/2 + 1 = 4
    let w = AxisWindow::new(0, sizes(7, 2, 2, 1, (0, 0)), false).unwrap();
    assert_eq!(w.floor_ceil_outputs(), (3, 4));
    let w = AxisWindow::new(0, sizes(7, 2, 2, 1, (1, 0)), false).unwrap();
    assert_eq!(w.floor_ceil_outputs(), (4, 4));
}
