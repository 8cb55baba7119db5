//! Model specs: the presets' shapes and parameter counts, the parser's canonical form, and
//! errors that name the token, its position and the known layers.

use stride::nn::models::{resolve, INPUT, PRESETS};
use stride::nn::spec::ModelSpec;

fn parse(s: &str) -> ModelSpec {
    ModelSpec::parse(s, &INPUT).unwrap()
}

fn err(s: &str) -> String {
    match ModelSpec::parse(s, &INPUT).and_then(|m| m.shapes().map(|_| ())) {
        Ok(()) => panic!("`{s}` should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn lenet5_has_d2l_shapes_and_61706_parameters() {
    let (spec, name, d) = resolve("lenet5").unwrap();
    assert_eq!(name, "lenet5");
    assert_eq!((d.optimizer.as_str(), d.lr), ("sgd", 0.9));
    let shapes = spec.shapes().unwrap();
    let outs: Vec<Vec<usize>> = shapes.iter().map(|s| s.out_shape.clone()).collect();
    // d2l 7.6: Conv 6×28×28, Sigmoid, AvgPool 6×14×14, Conv 16×10×10, Sigmoid, AvgPool 16×5×5,
    // Flatten 400, Linear 120, Sigmoid, Linear 84, Sigmoid, Linear 10
    assert_eq!(
        outs,
        vec![
            vec![6, 28, 28],
            vec![6, 28, 28],
            vec![6, 14, 14],
            vec![16, 10, 10],
            vec![16, 10, 10],
            vec![16, 5, 5],
            vec![400],
            vec![120],
            vec![120],
            vec![84],
            vec![84],
            vec![10]
        ]
    );
    let params: Vec<usize> = shapes.iter().map(|s| s.params).filter(|&p| p > 0).collect();
    assert_eq!(params, vec![156, 2416, 48120, 10164, 850]);
    assert_eq!(spec.param_count().unwrap(), 61_706);
}

#[test]
fn every_preset_parses_and_ends_in_ten_classes() {
    for p in PRESETS {
        let (spec, _, _) = resolve(p.name).unwrap();
        assert_eq!(spec.out_shape().unwrap(), vec![10], "{}", p.name);
        assert!(spec.param_count().unwrap() <= 500_000, "{}", p.name);
    }
}

#[test]
fn canonical_text_round_trips() {
    let text = "input(3,32,32) conv(16,k=3x5,s=2,p=1x2,g=1,bias=false) bn relu \
                maxpool(3,s=2,p=1) conv2d(8,k=1) tanh avgpool(2,ceil=true) dropout(0.3) \
                flatten fc(20) sigmoid linear(4,bias=false)";
    let spec = parse(text);
    assert_eq!(spec.input, vec![3, 32, 32]);
    let again = parse(&spec.to_string());
    assert_eq!(spec, again, "{}", spec);
    assert!(spec.shapes().is_ok());
    // 1-D and 3-D inputs pick the matching convolution
    assert_eq!(
        parse("input(2,50) conv(4,k=5,s=5) flatten linear(3)")
            .out_shape()
            .unwrap(),
        vec![3]
    );
    let s3 = parse("input(1,8,8,8) conv(2,k=3) batchnorm maxpool(2) flatten linear(2)");
    assert_eq!(s3.shapes().unwrap()[0].out_shape, vec![2, 6, 6, 6]);
}

#[test]
fn comments_and_newlines_are_allowed() {
    let spec = parse("# a tiny net\nconv(4, k=3)   # features\n relu\nflatten\nlinear(10)\n");
    assert_eq!(spec.layers.len(), 4);
}

#[test]
fn malformed_specs_name_token_position_and_known_layers() {
    let e = err("conv(6,k=5) relu maxpol(2) flatten linear(10)");
    assert!(
        e.contains("layer 3 `maxpol(2)` (column 18)") && e.contains("unknown layer `maxpol`"),
        "{e}"
    );
    assert!(e.contains("known layers:") && e.contains("linear"), "{e}");
    let e = err("conv(6,k=5");
    assert!(e.contains("missing `)`"), "{e}");
    let e = err("conv(6) relu");
    assert!(e.contains("missing the kernel size"), "{e}");
    let e = err("conv(6,k=5,q=1)");
    assert!(e.contains("unknown argument `q`"), "{e}");
    let e = err("conv(six,k=5)");
    assert!(e.contains("must be a whole number, not `six`"), "{e}");
    let e = err("dropout(1.5)");
    assert!(e.contains("[0, 1)"), "{e}");
    let e = err("relu(3)");
    assert!(e.contains("unexpected value `3`"), "{e}");
    let e = err("input(1,28,28) relu input(1,28,28)");
    assert!(e.contains("may only come first"), "{e}");
    let e = err("   ");
    assert!(e.contains("no layers"), "{e}");
    let e = err("conv(6,k=5) ! relu");
    assert!(e.contains("unexpected `!`"), "{e}");
}

#[test]
fn shapes_that_do_not_fit_name_the_layer() {
    let e = err("conv(6,k=5) relu linear(10)");
    assert!(
        e.contains("layer 3 `linear(10)`") && e.contains("put `flatten` before it"),
        "{e}"
    );
    let e = err("conv(6,k=30) flatten linear(10)");
    assert!(
        e.contains("layer 1") && e.contains("larger than the padded input 28"),
        "{e}"
    );
    let e = err("conv(6,k=3,g=4) flatten linear(10)");
    assert!(e.contains("layer 1"), "{e}");
    // 24 → 12 → 6 → 3 → 1, then a 2×2 window no longer fits
    let e = err(
        "conv(6,k=5) maxpool(2) maxpool(2) maxpool(2) maxpool(2) maxpool(2) flatten linear(10)",
    );
    assert!(e.contains("layer 6"), "{e}");
    let e = err("input(1,28,28) flatten conv(3,k=3)");
    assert!(e.contains("layer 2"), "{e}");
}

#[test]
fn unknown_model_names_are_reported_as_such() {
    let e = resolve("lenet6").err().unwrap().to_string();
    assert!(
        e.contains("unknown model 'lenet6'") && e.contains("lenet5-relu"),
        "{e}"
    );
    let e = resolve("@/nonexistent/spec.txt").err().unwrap().to_string();
    assert!(e.contains("/nonexistent/spec.txt"), "{e}");
}

#[test]
fn pooling_family_in_specs() {
    let spec = parse(
        "conv(8,k=3,p=1) maxpool(2) avgpool(3,s=1,p=1,count_include_pad=false) minpool(2) \
         lppool(2,norm=3) softpool(1) adaptiveavgpool(2) adaptivemaxpool(1) globalavgpool flatten linear(10)",
    );
    let outs: Vec<Vec<usize>> = spec
        .shapes()
        .unwrap()
        .iter()
        .map(|s| s.out_shape.clone())
        .collect();
    assert_eq!(outs[1], vec![8, 14, 14]);
    assert_eq!(outs[2], vec![8, 14, 14]);
    assert_eq!(outs[3], vec![8, 7, 7]);
    assert_eq!(outs[4], vec![8, 3, 3]);
    assert_eq!(outs[6], vec![8, 2, 2]);
    assert_eq!(outs[8], vec![8, 1, 1]);
    assert_eq!(parse(&spec.to_string()), spec);
    let e = err("maxpool(2,p=2) flatten linear(10)");
    assert!(e.contains("layer 1"), "{e}");
    let e = err("adaptiveavgpool flatten linear(10)");
    assert!(e.contains("missing the output size"), "{e}");
}
