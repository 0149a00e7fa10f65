"""Export a trained model as a bioimage.io model package (a zip that deepImageJ, ilastik and QuPath run).

:func:`export_bioimageio` writes ``rdf.yaml`` (model description format 0.5), TorchScript weights
(:class:`~.bioimageio_module.PackagedModel`: our preprocessing in torch, the network, a sigmoid),
a test input and the test output that our own numpy preprocessing and network compute for it, a cover
image and a README. The package is built and checked with ``bioimageio.spec`` (optional extra
``[bioimageio]``). ``bioimageio.core`` is not used (its release pins a spec that fails under the
pydantic napari brings); tests/test_export_bioimageio.py reruns the TorchScript from the zip instead.

What the package does not reproduce (also written in the package's README):

- iGTT's per-image calibration (the threshold candidate chosen again on each image): the package gives
  the network's uncalibrated sigmoid probability;
- tiled prediction: it is one pass over the whole image, so a consumer that tiles large images
  normalises every tile alone;
- volumes: every 2D plane is normalised and filtered alone, where our Predict pools statistics over
  a z-stack.
"""
from __future__ import annotations

import getpass
import json
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import __version__
from . import jsonsafe
from .atomic import atomic_write
from .validate import InputError

EXTRA_HINT = 'pip install "napari-metastructures[bioimageio]"'
#: The paper the models implement (arXiv's DOI: the spec resolves no URL offline).
PAPER = ("Luo Y, Liu G, Guo Y, Yang G. Deep Neural Networks Learn Meta-Structures from Noisy Labels in Semantic "
         "Segmentation. AAAI 2022.", "10.48550/arXiv.2103.11594")
#: Largest side of the test image (a square, a multiple of 32).
TEST_SIDE = 256


def require_bioimageio():
    """``bioimageio.spec``'s model description module, or an InputError that names the extra to install."""
    try:
        from bioimageio.spec.model import v0_5
    except ImportError:
        raise InputError(f"the bioimage.io export needs the optional extra: {EXTRA_HINT}") from None
    return v0_5


def export_bioimageio(model, out, *, name: str | None = None, description: str | None = None,
                      authors: Sequence[str] | None = None, license: str = "CC-BY-4.0",
                      sample: np.ndarray | None = None) -> Path:
    """Write ``model`` as a bioimage.io model package zip at ``out``, atomically (complete or absent).

    Parameters
    ----------
    model : TrainedModel or path
        A one-class model, or a ``.pt`` file saved by this plugin.
    out : path
        The zip to write (``.zip`` is appended when missing).
    name, description : str, optional
        Shown by bioimage.io consumers (default: from the model's config).
    authors : sequence of str, optional
        Names of the model's authors (default: the login name).
    license : str
        SPDX identifier of the weights' license (default CC-BY-4.0).
    sample : ndarray, optional
        A 2D raw image like the model's inputs; its centre (at most 256 x 256, a multiple of 32) becomes
        the test input. Default: a synthetic ER image.

    Returns
    -------
    Path
        The written zip.
    """
    v = require_bioimageio()
    from bioimageio.spec import save_bioimageio_package

    model = _as_model(model)
    out = Path(out)
    if out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    image = _test_image(sample)
    spec = dict(model.config.get("preprocess") or {})
    with tempfile.TemporaryDirectory(prefix="bioimageio-") as tmp:
        root = Path(tmp)
        _write_files(model, spec, image, root)
        try:
            descr = _describe(v, model, root, name, description, authors, license)
        except ValueError as err:  # pydantic's ValidationError: a name, author or license the spec refuses
            raise InputError(f"bioimage.io description: {_first_problem(err)}") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the spec warns about optional (FAIR) fields
            built = save_bioimageio_package(descr, output_path=root / "package.zip")
        atomic_write(out, lambda part: shutil.copyfile(built, part))
    return out


def _as_model(model):
    from . import load_model

    if isinstance(model, (str, Path)):
        model = load_model(model)
    if getattr(model, "net", None) is None or not isinstance(getattr(model, "config", None), dict):
        raise InputError(f"{type(model).__name__}: not a napari-metastructures model")
    if model.classes != 1:
        raise InputError(f"a {model.classes}-class model: the bioimage.io export supports one-class models")
    return model


def _test_image(sample) -> np.ndarray:
    if sample is None:
        from .synthetic import er_network

        return er_network((TEST_SIDE, TEST_SIDE), seed=0)[0].astype(np.float32)
    arr = np.asarray(sample)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InputError(f"sample image of shape {arr.shape} and type {arr.dtype}: give one 2D greyscale plane")
    side = min(TEST_SIDE, min(arr.shape) // 32 * 32)
    if side < 32:
        raise InputError(f"sample image of shape {arr.shape}: needs at least 32 x 32 pixels")
    y0, x0 = (arr.shape[0] - side) // 2, (arr.shape[1] - side) // 2
    return np.ascontiguousarray(arr[y0:y0 + side, x0:x0 + side], dtype=np.float32)


def _write_files(model, spec: dict, image: np.ndarray, root: Path) -> np.ndarray:
    """Weights, test tensors, cover and README in ``root``; returns the test output."""
    import torch

    from .bioimageio_module import script_model
    from .training.data import preprocess
    from .training.tiling import predict_tiled

    net = model.net.eval().to("cpu")
    x = preprocess(image, spec)  # what TrainedModel.predict feeds the network
    expected = predict_tiled(net, x, tile=image.shape[0], overlap=0, batch_size=1, device="cpu")[None, None]
    with warnings.catch_warnings():
        # torch.jit.script and .save warn that TorchScript is deprecated; it is still the format that deepImageJ,
        # ilastik and QuPath run (bioimage.io's "torchscript" weights), so we keep it on purpose.
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = script_model(net, spec, torch.from_numpy(x)[None, None])
        torch.jit.save(scripted, str(root / "weights.torchscript.pt"))
    raw = image[None, None].astype(np.float32)
    with torch.no_grad():
        got = scripted(torch.from_numpy(raw)).numpy()
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-3, atol=1e-4):
        worst = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("nan")
        raise RuntimeError(f"the TorchScript module differs from our prediction (max {worst:.2g}); not exported")
    np.save(root / "test_input.npy", raw)
    np.save(root / "test_output.npy", expected.astype(np.float32))
    import tifffile

    tifffile.imwrite(root / "sample_input.tif", raw[0, 0])
    tifffile.imwrite(root / "sample_output.tif", expected[0, 0].astype(np.float32))
    _write_cover(root / "cover.png", image, expected[0, 0])
    (root / "README.md").write_text(_readme(model, spec), encoding="utf-8")
    return expected


def _write_cover(path: Path, image: np.ndarray, prob: np.ndarray) -> None:
    """A 2:1 PNG: the test input (percentile-scaled) beside the package's output probability."""
    from matplotlib import colormaps
    from matplotlib.image import imsave

    from .training.data import normalize

    left = np.repeat(normalize(image, 1.0, 99.8, clip=True)[..., None], 3, axis=2)
    right = colormaps["magma"](np.clip(prob, 0, 1))[..., :3]
    imsave(path, np.concatenate([left, right], axis=1))


def _describe(v, model, root: Path, name, description, authors, license):
    """The ModelDescr of the files in ``root``."""
    import torch

    m = model.config.get("model", {})
    kind = model.config.get("kind") or ("igtt" if model.calibration_rule else "supervised")
    name = name or f"napari-metastructures {kind} {m.get('arch', 'unet')} {m.get('encoder', '')}".strip()
    description = description or (f"2D binary segmentation of fluorescence images (foreground probability), "
                                  f"a {kind} model trained with napari-metastructures {model.version}.")
    who = list(authors or []) or [_login_name()]
    y, x = v.AxisId("y"), v.AxisId("x")
    space = v.ParameterizedSize(min=32, step=32)
    inputs = [v.InputTensorDescr(
        id=v.TensorId("raw"),
        description="raw intensities of one 2D plane (any range: the model normalises each image itself)",
        axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier("raw")]),
              v.SpaceInputAxis(id=y, size=space), v.SpaceInputAxis(id=x, size=space)],
        test_tensor=v.FileDescr(source=root / "test_input.npy"),
        sample_tensor=v.FileDescr(source=root / "sample_input.tif"),
        data=v.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[v.EnsureDtypeDescr(kwargs=v.EnsureDtypeKwargs(dtype="float32"))])]
    outputs = [v.OutputTensorDescr(
        id=v.TensorId("probability"),
        description="foreground probability (the network's sigmoid; not iGTT-calibrated: see README)",
        axes=[v.BatchAxis(), v.ChannelAxis(channel_names=[v.Identifier("foreground")]),
              v.SpaceOutputAxis(id=y, size=v.SizeReference(tensor_id=v.TensorId("raw"), axis_id=y)),
              v.SpaceOutputAxis(id=x, size=v.SizeReference(tensor_id=v.TensorId("raw"), axis_id=x))],
        test_tensor=v.FileDescr(source=root / "test_output.npy"),
        sample_tensor=v.FileDescr(source=root / "sample_output.tif"),
        data=v.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)))]
    weights = v.WeightsDescr(torchscript=v.TorchscriptWeightsDescr(
        source=root / "weights.torchscript.pt", pytorch_version=v.Version(torch.__version__.split("+")[0])))
    ours = json.loads(jsonsafe.dumps({"version": model.version, "exported_by": __version__,
                                      "model_config": model.config}))
    return v.ModelDescr(
        name=name, description=description, authors=[v.Author(name=a) for a in who],
        cite=[v.CiteEntry(text=PAPER[0], doi=v.Doi(PAPER[1]))], license=license,
        documentation=v.FileDescr(source=root / "README.md"), covers=[v.FileDescr(source=root / "cover.png")],
        tags=["segmentation", "binary-segmentation", "2d", "fluorescence-light-microscopy", "pytorch",
              "torchscript", "napari-metastructures", kind],
        inputs=inputs, outputs=outputs, weights=weights,
        config=v.Config(**{"napari-metastructures": ours}))


def _first_problem(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if not callable(errors) or not errors():
        return str(err).splitlines()[0]
    first = errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "value"
    return f"{where} {first.get('input')!r}: {first.get('msg')}"


def _login_name() -> str:
    try:
        return getpass.getuser() or "unknown"
    except Exception:  # no login name (some containers)
        return "unknown"


def _readme(model, spec: dict) -> str:
    calibrated = bool(model.calibration_rule)
    steps = [f"percentile normalisation ({spec.get('low', 1.0)}-{spec.get('high', 99.8)} %)"]
    if spec.get("background_sigma"):
        steps.append(f"haze removal (Gaussian background of {spec['background_sigma']} px"
                     + (", foreground excluded by Otsu's threshold)" if spec.get("background_exclude", True) else ")"))
    if spec.get("local_sigma"):
        steps.append(f"local contrast normalisation ({spec['local_sigma']} px window)")
    if spec.get("gate") and spec.get("gate_input", True) and spec.get("local_sigma"):
        steps.append("a noise-significance gate")
    steps.append("percentile normalisation again" if len(steps) > 1 else "")
    pre = "; ".join(s for s in steps if s)
    calib = ("- **Calibration is not reproduced.** In napari-metastructures an iGTT model chooses a threshold "
             "candidate on every image again and maps the probability so that it is exactly `> 0.5`. This "
             "package outputs the network's plain sigmoid probability; thresholding it at 0.5 can give a "
             "thinner or thicker mask than the plugin.\n" if calibrated else "")
    return f"""# napari-metastructures model

A 2D binary segmentation network (foreground probability) trained with napari-metastructures
{model.version}, an implementation of Luo et al., *Deep Neural Networks Learn Meta-Structures from Noisy
Labels in Semantic Segmentation* (AAAI 2022).

## Inputs and outputs

- input `raw`: one 2D plane of raw intensities, `(batch, 1, y, x)`, float32, y and x multiples of 32 (at
  least 32). Give the whole image: the model normalises each image itself.
- output `probability`: `(batch, 1, y, x)`, float32 in [0, 1].

The TorchScript module does the plugin's preprocessing itself, in torch: {pre}. It then runs the network
and a sigmoid. Nothing else needs to be set in the consumer.

## What is not reproduced

{calib}- **Tiling.** The plugin predicts large images in overlapping 256-px tiles with blending; this model
  is one pass over the input. A consumer that tiles large images normalises every tile alone, which can
  change the result near dim or empty tiles: prefer whole images.
- **Volumes.** The plugin pools normalisation statistics over a z-stack; here every 2D plane is alone.

## Validation

`test_input.npy` is a {TEST_SIDE}-px (or smaller) crop of the export's sample image; `test_output.npy` is
what napari-metastructures' own numpy preprocessing and network compute for it, and the TorchScript module
reproduces it (checked at export, and by `bioimageio test`). The model's quality depends on your images;
compare its masks to a few hand-checked ones (napari-metastructures' `metastructures evaluate` computes
Dice, IoU and clDice).
"""
