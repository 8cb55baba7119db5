//! The IDX reader and dataset loader: good files (raw and gzipped), and every error class with
//! a message that names the file and the fix.

mod synth;

use std::path::Path;
use stride::data::idx::{encode, parse, read};
use stride::data::{epoch_order, Dataset, Split};

fn err(bytes: &[u8]) -> String {
    parse(Path::new("f.idx"), bytes).unwrap_err().to_string()
}

#[test]
fn parses_and_rejects_headers() {
    let ok = encode(&[2, 3], &[1, 2, 3, 4, 5, 6]);
    let a = parse(Path::new("f"), &ok).unwrap();
    assert_eq!(a.dims, vec![2, 3]);
    assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    assert!(err(&[1, 0, 8, 1]).contains("not an IDX file"));
    assert!(err(&[0, 0]).contains("not an IDX file"));
    assert!(err(&[0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]).contains("f32"));
    assert!(err(&[0, 0, 8, 2, 0, 0]).contains("truncated inside its header"));
    assert!(err(&ok[..ok.len() - 1]).contains("is truncated"));
    let mut long = ok.clone();
    long.push(0);
    assert!(err(&long).contains("does not match its header"));
}

#[test]
fn loads_gzipped_and_raw_splits() {
    let dir = tempfile::tempdir().unwrap();
    synth::write_dataset(dir.path(), 30, 20);
    let tr = Dataset::load(dir.path(), Split::Train, 10).unwrap();
    let te = Dataset::load(dir.path(), Split::Test, 10).unwrap();
    assert_eq!((tr.n, tr.h, tr.w, te.n), (30, 28, 28, 20));
    let (x, y) = tr.batch(&[0, 5]);
    assert_eq!(x.shape(), &[2, 1, 28, 28]);
    assert_eq!(y, vec![tr.labels[0] as usize, tr.labels[5] as usize]);
    assert!(x.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
    assert_eq!(x.data()[0], tr.images[0] as f32 / 255.0);
    let raw = read(&dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    assert_eq!(raw.dims, vec![20]);
}

#[test]
fn dataset_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let e = Dataset::load(dir.path(), Split::Train, 10)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("apt-get install dataset-fashion-mnist") && e.contains("--data"),
        "{e}"
    );
    synth::write_dataset(dir.path(), 10, 10);
    // label out of range
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        encode(&[10], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 12]),
    )
    .unwrap();
    let e = Dataset::load(dir.path(), Split::Test, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("label 12 at position 9 is out of range"), "{e}");
    // count mismatch
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        encode(&[9], &[0; 9]),
    )
    .unwrap();
    let e = Dataset::load(dir.path(), Split::Test, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("has 9 labels but"), "{e}");
    // corrupt gzip
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte.gz"),
        [0x1f, 0x8b, 8, 0, 1, 2],
    )
    .unwrap();
    let e = Dataset::load(dir.path(), Split::Train, 10)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot be decompressed"), "{e}");
}

#[test]
fn epoch_order_is_a_seeded_permutation() {
    let a = epoch_order(100, 7, 1);
    let mut s = a.clone();
    s.sort();
    assert_eq!(s, (0..100).collect::<Vec<_>>());
    assert_eq!(a, epoch_order(100, 7, 1));
    assert_ne!(a, epoch_order(100, 7, 2));
    assert_ne!(a, epoch_order(100, 8, 1));
}
