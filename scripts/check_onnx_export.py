#!/usr/bin/env python3
"""Check `stride export` files in ONNX Runtime against stride's own logits, like crosscheck.py.

  cargo build --release --examples
  /work/venv/bin/python scripts/check_onnx_export.py target/release/stride \
      [--run RUN_DIR] [--data /usr/share/datasets/fashion-mnist] [--keep DIR]

1. Layers: for every spec in SPECS (each exportable layer kind: 1-D/2-D/3-D conv with groups,
   dilation, strides, asymmetric and same padding, reflect/replicate/circular padding modes; max/avg/lp pooling with ceil mode, dilation,
   count_include_pad; global and adaptive pooling; batchnorm; linear; relu/sigmoid/tanh;
   dropout), the example `onnx_predict` builds the network with seeded random weights, writes
   its logits on a random batch and exports it; the file must pass onnx.checker and ONNX
   Runtime must give the same logits within 1e-5 * max(1, max|logit|). The file also goes
   through the CLI: `stride import` it, `stride export` the run folder again, same logits.
2. A trained run (--run): `stride export RUN`, then ONNX Runtime's test accuracy on the whole
   Fashion-MNIST test set must equal `stride eval RUN`'s, and the logits of the first 500 test
   images must agree as above.
Exit status 0 when everything agrees.
"""
import argparse
import gzip
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

SPECS = [
    "lenet5",
    "lenet5-relu",
    "convnet",
    "input(2,12) conv1d(4,k=3,p=1:2) relu maxpool(2,ceil=true) flatten linear(5)",
    "input(3,10,9) conv(6,k=3x2,s=2x1,p=same,d=1x2,g=3) batchnorm tanh "
    "avgpool(3,s=2,p=1,ceil=true,count_include_pad=false) flatten dropout(0.3) linear(7) sigmoid linear(4)",
    "input(1,6,7,8) conv3d(2,k=3,p=1,bias=false) relu maxpool3d(2) globalavgpool flatten batchnorm linear(3)",
    "input(2,16,16) conv(4,k=3) lppool(2,norm=2) adaptiveavgpool(7) conv(4,k=3,p=full) globalmaxpool flatten linear(3)",
    "input(1,15,15) conv(3,k=3,p=1:0x2:1) maxpool(3,s=2,p=1,d=2,ceil=true) adaptivemaxpool(1) flatten linear(2)",
    "input(1,9,9) avgpool(2,ceil=true) conv(2,k=2,s=2,p=valid) adaptivemaxpool(2) flatten linear(3)",
    "input(1,11,11) avgpool(3,s=2,p=1,ceil=true) maxpool(2,s=1) conv(2,k=3,s=2,p=same) flatten linear(3)",
    "input(4,9,9) conv(8,k=3,g=4,p=1) batchnorm relu lppool(3,s=2,norm=4) flatten linear(3)",
    "input(2,9,8) conv(3,k=3,p=1:2x2:0,mode=reflect) relu conv(2,k=3,p=2,mode=replicate) flatten linear(3)",
    "input(1,10) conv1d(2,k=3,p=same,mode=circular) tanh conv1d(2,k=2,p=1,d=2,mode=reflect) flatten linear(2)",
]


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


def ort_logits(path, x):
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]


def close(a, b):
    err = float(np.abs(a - b).max())
    return err, err <= 1e-5 * max(1.0, float(np.abs(b).max()))


def input_shape(spec):
    m = re.match(r"\s*input\(([\d,]+)\)", spec)
    return [int(v) for v in m.group(1).split(",")] if m else [1, 28, 28]


def idx(path):
    with gzip.open(path) if str(path).endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    nd = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def find(d, stem):
    for name in (f"{stem}.gz", stem):
        if (Path(d) / name).exists():
            return Path(d) / name
    raise FileNotFoundError(f"{stem} in {d}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("stride")
    ap.add_argument("--example", help="the onnx_predict example (default: next to the binary)")
    ap.add_argument("--run", help="a trained run folder to check on the test set")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--keep", help="keep the files here")
    a = ap.parse_args()
    stride = Path(a.stride).resolve()
    example = Path(a.example) if a.example else stride.parent / "examples" / "onnx_predict"
    tmp = Path(a.keep or tempfile.mkdtemp(prefix="stride-onnx-"))
    tmp.mkdir(parents=True, exist_ok=True)
    failures = 0
    rng = np.random.default_rng(0)
    for k, spec in enumerate(SPECS):
        d = tmp / f"spec{k}"
        d.mkdir(exist_ok=True)
        x = rng.random((3, *input_shape(spec)), dtype=np.float32)
        np.save(d / "x.npy", x)
        for p in (d / "m.onnx", d / "again.onnx"):
            p.unlink(missing_ok=True)
        run([example, spec, d / "x.npy", "--seed", k, "--export", d / "m.onnx", "--logits", d / "y.npy"])
        y = np.load(d / "y.npy")
        got = ort_logits(d / "m.onnx", x)
        err, ok = close(got, y)
        # through the CLI: import the file as a run folder, export it again
        subprocess.run(["rm", "-rf", str(d / "run")])
        run([stride, "import", d / "m.onnx", "--out", d / "run"])
        run([stride, "export", d / "run", d / "again.onnx"])
        err2, ok2 = close(ort_logits(d / "again.onnx", x), y)
        failures += not (ok and ok2)
        print(f"{'ok  ' if ok and ok2 else 'FAIL'} max|diff| {err:.2e} / {err2:.2e}  {spec}")
    if a.run:
        out = tmp / "run.onnx"
        out.unlink(missing_ok=True)
        run([stride, "export", a.run, out])
        images = idx(find(a.data, "t10k-images-idx3-ubyte")).astype(np.float32)[:, None] / 255.0
        labels = idx(find(a.data, "t10k-labels-idx1-ubyte")).astype(np.int64)
        logits = ort_logits(out, images)
        acc_ort = float((logits.argmax(1) == labels).mean())
        text = run([stride, "eval", a.run, "--data", a.data])
        acc_stride = float(re.search(r"test accuracy ([\d.]+)", text).group(1))
        np.save(tmp / "first.npy", images[:500])
        run([example, a.run, tmp / "first.npy", "--logits", tmp / "first_y.npy"])
        err, ok = close(logits[:500], np.load(tmp / "first_y.npy"))
        same = abs(acc_ort - acc_stride) < 1e-4
        failures += not (ok and same)
        print(f"{'ok  ' if ok and same else 'FAIL'} {a.run}: test accuracy stride {acc_stride:.4f}, "
              f"ONNX Runtime {acc_ort:.4f} ({len(labels)} images); logits max|diff| {err:.2e} on 500")
    print(f"{failures} failure(s); files in {tmp}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
