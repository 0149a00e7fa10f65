"""Segmentation networks and trained models that can be saved, loaded and run on new images.

:func:`build_model` makes a segmentation-models-pytorch U-Net (or DeepLabV3+) with random weights;
pretrained encoder weights are only used on an explicit opt-in, because they download.
:class:`TrainedModel` bundles the network with its JSON config (architecture, preprocessing and
training parameters), the package version and the training history, and predicts tiled
probabilities on images of any size and dimensionality (2D slices over the last two axes, or
z-stacks seen from their xy, xz and yz planes: ``volume_mode="ortho"``, see :mod:`.ortho`).
"""
from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ... import __version__
from .. import jsonsafe
from ..atomic import atomic_write_bytes
from .data import as_slices, preprocess, volume_scope
from .settings import ARCHS

FORMAT = "napari-metastructures-model"
DEFAULT_DECODER = (256, 128, 64, 32, 16)
#: How :meth:`TrainedModel.predict` treats a z-stack: its xy planes one by one (``"slices"``), or
#: the xy, xz and yz planes of each volume, resampled to isotropy and averaged (``"ortho"``).
VOLUME_MODES = ("slices", "ortho")


def build_model(arch: str = "unet", encoder: str = "resnet18", encoder_depth: int = 5,
                in_channels: int = 1, classes: int = 1, encoder_weights: str | None = None,
                decoder_channels: Sequence[int] | None = None):
    """Build a segmentation network that outputs logits ``(B, classes, H, W)``.

    Parameters
    ----------
    arch : {"unet", "deeplabv3plus"}
    encoder : str
        A segmentation-models-pytorch encoder name, e.g. ``"resnet18"``.
    encoder_depth : int
        Number of encoder stages (3 to 5); inputs must be multiples of ``2**encoder_depth``.
    in_channels, classes : int
    encoder_weights : str or None
        None (default) = random init. A name such as ``"imagenet"`` DOWNLOADS weights from the
        internet; it is only used when asked for explicitly.
    decoder_channels : sequence of int or None
        U-Net decoder widths, one per stage (default: smp's, cut to ``encoder_depth``).
    """
    import segmentation_models_pytorch as smp

    arch = arch.lower()
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHS)}")
    if not 3 <= int(encoder_depth) <= 5:
        raise ValueError(f"encoder_depth must be 3, 4 or 5, got {encoder_depth}")
    if encoder_weights is not None:
        warnings.warn(f"encoder_weights={encoder_weights!r}: pretrained weights are downloaded "
                      "from the internet on first use.", stacklevel=2)
    if arch == "unet":
        dec = tuple(decoder_channels) if decoder_channels else DEFAULT_DECODER[:int(encoder_depth)]
        if len(dec) != int(encoder_depth):
            raise ValueError(f"decoder_channels needs {encoder_depth} values, got {dec}")
        net = smp.Unet(encoder_name=encoder, encoder_depth=int(encoder_depth),
                       encoder_weights=encoder_weights, in_channels=in_channels, classes=classes,
                       decoder_channels=dec)
    else:
        net = smp.DeepLabV3Plus(encoder_name=encoder, encoder_depth=int(encoder_depth),
                                encoder_weights=encoder_weights, in_channels=in_channels, classes=classes)
    import torch

    # channels-last weights: on a 2-core CPU an iGTT epoch on 1024^2 took 10.1 s instead of 12.4 s
    # (A/B medians, docs/igtt.md); single-channel inputs need no conversion
    return net.to(memory_format=torch.channels_last)


def model_kwargs(config: dict) -> dict:
    """The :func:`build_model` arguments stored in ``config["model"]``."""
    m = dict(config.get("model", {}))
    keys = ("arch", "encoder", "encoder_depth", "in_channels", "classes", "decoder_channels")
    return {k: m[k] for k in keys if k in m}


class TrainedModel:
    """A trained network with its config, version and history.

    Parameters
    ----------
    net : torch.nn.Module
    config : dict
        JSON-friendly. ``config["model"]`` holds the :func:`build_model` arguments and
        ``config["preprocess"]`` the spec for :func:`~.training_data.preprocess` applied before the
        network (normalisation percentiles, optional background subtraction). Other keys record
        training parameters; ``config["threshold"]`` (default 0.5) turns probabilities into masks.
    version : str
    history : list of dict
        One record per epoch (see ``EpochResult.as_dict``).
    """

    #: The ``config["calibration"]["rule"]`` this class applies in :meth:`_postprocess` (None: none).
    calibration_rule: str | None = None

    def __init__(self, net, config: dict, version: str = __version__,
                 history: list | None = None) -> None:
        self.net = net
        self.config = dict(config)
        self.version = version
        self.history = list(history or [])

    @property
    def classes(self) -> int:
        return int(self.config.get("model", {}).get("classes", 1))

    @property
    def threshold(self) -> float:
        return float(self.config.get("threshold", 0.5))

    def predict(self, image, device="auto", tile: int = 256, overlap: int = 32,
                batch_size: int = 4, stop=None, axes: str | None = None, volume_mode: str = "slices",
                anisotropy: float | None = None, out=None):
        """Probability of foreground for every pixel.

        Parameters
        ----------
        image : array-like
            2D image, or nD (3D stack, time-lapse...) predicted slice by slice over the last two axes.
            Raw intensities: the model's preprocessing is applied here. numpy, dask, zarr or any
            array with ``shape``, ``dtype`` and slicing: one block (a 2D slice, or a ZYX volume for
            volume preprocessing and ``"ortho"``) is read at a time (:func:`..lazy.read_block`).
        device : str
            ``auto``, ``cuda``, ``cuda:i``, ``mps`` or ``cpu``.
        tile, overlap, batch_size : int
            Tiled prediction settings (see :func:`~.tiling.predict_tiled`).
        stop : callable, optional
            Polled between batches of tiles; :class:`~.progress.StopRequested` is raised when it
            returns True.
        axes : str, optional
            The image's axes (``"TZYX"``...), when known: a model trained with volumes treats the
            last three axes as one volume unless the third-last is known not to be Z.
        volume_mode : {"slices", "ortho"}
            ``"slices"`` (default): every 2D slice over the last two axes is predicted alone.
            ``"ortho"``: the last three axes are a ZYX volume (leading axes such as T are looped
            over), preprocessed as one and predicted from its xy, xz and yz planes, averaged
            (:func:`~.ortho.predict_planes`); calibrated models then calibrate each combined
            volume. Needs 3D data or more, a single-class model, and a third-last axis that
            ``axes`` (when given, one letter per axis) calls Z.
        anisotropy : float, optional
            For ``"ortho"``: z step / xy pixel size (e.g. 0.25 / 0.0655 = 3.8). None means 1.0
            (isotropic voxels). Ignored by ``"slices"``.
        out : array, optional
            Where to write the result, block by block: a float32 numpy or zarr array of the
            image's shape (e.g. from :func:`..lazy.output_array`); it is returned. One-class
            models only. None: a new numpy array.

        Returns
        -------
        ndarray (or ``out``)
            float32 in [0, 1], the input's shape; multi-class models add a leading class axis.
            iGTT models (:class:`~..igtt.model.IgttModel`) return the calibrated map: the chosen
            threshold candidate of each 2D slice, or each volume, is exactly ``> 0.5``.
        """
        from ..device import resolve_device
        from ..lazy import block_indices, read_block
        from ..progress import oom_advice
        from .tiling import predict_tiled

        arr = image if hasattr(image, "shape") and hasattr(image, "__getitem__") else np.asarray(image)
        shape = tuple(int(n) for n in arr.shape)
        if len(shape) < 2:
            raise ValueError(f"predict needs at least 2D data, got shape {shape}")
        if volume_mode not in VOLUME_MODES:
            raise ValueError(f"unknown volume_mode {volume_mode!r}; use one of {', '.join(VOLUME_MODES)}")
        if out is not None:
            _check_out(out, shape, self.classes)
        if volume_mode == "ortho":
            return self._predict_ortho(arr, device, tile, overlap, batch_size, stop, axes, anisotropy, out)
        dev = resolve_device(device).device if isinstance(device, str) else device
        self.net.to(dev)
        spec = self.config.get("preprocess", {})
        volume = self.classes == 1 and volume_scope(spec.get("scope"), len(shape), axes)
        if out is None:
            out = np.empty(shape if self.classes == 1 else (self.classes,) + shape, np.float32)
        lead = () if self.classes == 1 else (slice(None),)  # multi-class: the class axis comes first
        with oom_advice(str(dev), batch_size=batch_size, tile=tile):
            for idx in block_indices(shape, 3 if volume else 2):  # 2D slices, or volumes preprocessed as one
                x, score = preprocess(read_block(arr, idx), spec, "both")  # network input, image judging candidates
                probs = [predict_tiled(self.net, sl, tile, overlap, batch_size, dev, stop) for sl in as_slices(x)]
                prob = self._postprocess(np.stack(probs) if x.ndim > 2 else probs[0], score)
                out[lead + idx] = prob
        return out

    def _predict_ortho(self, arr, device, tile: int, overlap: int, batch_size: int, stop,
                       axes: str | None, anisotropy: float | None, out=None):
        """:meth:`predict` with ``volume_mode="ortho"`` (arguments checked there, except these)."""
        from ..device import resolve_device
        from ..lazy import block_indices, read_block
        from ..progress import oom_advice
        from .ortho import check_anisotropy, predict_planes
        from .tiling import predict_tiled

        shape = tuple(int(n) for n in arr.shape)
        if len(shape) < 3:
            raise ValueError(f"volume_mode='ortho' needs a z-stack (ZYX or more axes), got 2D shape {shape}")
        if axes and len(axes) == len(shape) and axes[-3].upper() != "Z":
            raise ValueError(f"volume_mode='ortho' needs Z as the third-last axis; the image's axes are {axes!r}")
        if self.classes != 1:
            raise ValueError(f"volume_mode='ortho' supports single-class models; this one has {self.classes} classes")
        aniso = 1.0 if anisotropy is None else check_anisotropy(anisotropy)
        dev = resolve_device(device).device if isinstance(device, str) else device
        self.net.to(dev)
        spec = self.config.get("preprocess", {})

        def plane(p: np.ndarray) -> np.ndarray:
            return predict_tiled(self.net, p, tile, overlap, batch_size, dev, stop)

        if out is None:
            out = np.empty(shape, np.float32)
        with oom_advice(str(dev), batch_size=batch_size, tile=tile):
            for idx in block_indices(shape, 3):  # ZYX volumes, each preprocessed as one
                x, score = preprocess(read_block(arr, idx), spec, "both")
                out[idx] = self._postprocess(predict_planes(plane, x, aniso, stop), score)
        return out

    def _postprocess(self, prob: np.ndarray, image: np.ndarray) -> np.ndarray:
        """Map one slice's, or volume's, probability before it is returned (identity; iGTT models calibrate)."""
        return prob

    def save(self, path) -> Path:
        """Write weights, JSON config, version and history to one file, atomically."""
        import torch

        path = Path(path)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        payload = {
            "format": FORMAT,
            "version": self.version,
            "config": jsonsafe.dumps(self.config),
            "history": jsonsafe.dumps(self.history),
            "state_dict": state,
        }
        buf = io.BytesIO()
        torch.save(payload, buf)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path, device: str = "cpu") -> TrainedModel:
        """Load a model written by :meth:`save` (weights only; no code is unpickled).

        Models that calibrate their output (iGTT) must be opened with their own class, or with
        :func:`napari_metastructures.core.load_model`, which picks the class from the file.
        """
        return cls.from_payload(read_payload(path), path, device)

    @classmethod
    def from_payload(cls, payload: dict, path, device: str = "cpu") -> TrainedModel:
        """Build the model from :func:`read_payload`'s dict (``path`` names it in errors)."""
        from ..validate import InputError

        config = json.loads(payload["config"])
        rule = (config.get("calibration") or {}).get("rule")
        if rule != cls.calibration_rule:
            kind = config.get("kind", "?")
            raise InputError(f"{path}: a {kind!r} model; open it with napari_metastructures.core.load_model")
        net = build_model(**model_kwargs(config))
        net.load_state_dict(payload["state_dict"])
        net.to(device)
        net.eval()
        return cls(net, config, payload.get("version", "?"), json.loads(payload.get("history", "[]")))


def _check_out(out, shape: tuple, classes: int) -> None:
    """``predict(out=...)`` must be a float32 array of the image's shape, for a one-class model."""
    if classes != 1:
        raise ValueError(f"predict(out=...) needs a one-class model; this one has {classes} classes "
                         "(leave out= out to get a numpy array with a class axis)")
    if tuple(out.shape) != shape or np.dtype(out.dtype) != np.float32:
        raise ValueError(f"predict(out=...) needs a float32 array of shape {shape}, "
                         f"got {np.dtype(out.dtype)} {tuple(out.shape)}")


def read_payload(path) -> dict:
    """The checked contents of a model file (raises InputError naming the file)."""
    import torch

    from ..validate import InputError

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt or foreign file; torch's own advice (weights_only=False) is wrong here
        why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a napari-metastructures model ({why[:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{path}: not a napari-metastructures model file")
    return payload
