//! `stride shape` and `stride receptive-field` end to end, on the course's questions.

mod common;
use common::*;

#[test]
fn shape_answers_seed_000_question_a() {
    let out = ok(&words(
        "shape --input 200x200x3 --kernel 40x40 --filters 12323 --stride 2",
    ));
    assert!(
        out.contains("H: floor((200 + 0 + 0 - 1·(40-1) - 1) / 2) + 1 = 81"),
        "{out}"
    );
    assert!(out.contains("output: 81×81×12323"), "{out}");
    // PyTorch order gives the same answer
    let out2 = ok(&words(
        "shape --input 3,200,200 --kernel 40 --filters 12323 --stride 2",
    ));
    assert!(out2.contains("output: 81×81×12323"), "{out2}");
}

#[test]
fn shape_for_pooling_defaults_stride_to_kernel() {
    let out = ok(&words("shape --input 6,28,28 --kernel 2 --op pool"));
    assert!(out.contains("output: 14×14×6"), "{out}");
    assert!(out.contains("parameters: 0"), "{out}");
}

#[test]
fn receptive_field_grows_3_5_7() {
    let out = ok(&["receptive-field", "--kernels", "3,3,3"]);
    assert!(out.contains("sees 7×7 input pixels"), "{out}");
    assert!(
        out.contains("one 7×7 layer: 64·64·7² = 200,704 weights"),
        "{out}"
    );
}

#[test]
fn analysis_bad_input() {
    assert!(usage_error(&words("shape --input 200x200x3 --kernel 40")).contains("--filters"));
    assert!(
        usage_error(&words("shape --input 20x20x3 --kernel 40 --filters 2"))
            .contains("larger than the padded input")
    );
    assert!(usage_error(&words("shape --input 7 --kernel 3 --filters 2")).contains("input:"));
    assert!(
        usage_error(&words("receptive-field --kernels 3,3 --strides 1,1,1"))
            .contains("strides: 3 values")
    );
}

#[test]
fn shape_for_transposed_convolution() {
    // PyTorch: ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1) on 7×7 → 14×14
    let out = ok(&words("shape --input 16,7,7 --kernel 3 --stride 2 --padding 1 --output-padding 1 --filters 8 --op conv-transpose"));
    assert!(
        out.contains("H: (7 - 1)·2 - 1 - 1 + 1·(3-1) + 1 + 1 = 14"),
        "{out}"
    );
    assert!(out.contains("output: 14×14×8"), "{out}");
    // weight (Cin, Cout/g, k, k) + bias: 16·8·9 + 8
    assert!(out.contains("= 1,160"), "{out}");
    let err = usage_error(&words("shape --input 16,7,7 --kernel 3 --stride 2 --output-padding 2 --filters 8 --op conv-transpose"));
    assert!(err.contains("output-padding"), "{err}");
}
