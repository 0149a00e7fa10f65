"""The unsure band: what the candidate judged on the image's square root adds stays out of the loss."""
import numpy as np
import pytest

from napari_metastructures.core.igtt.candidates import judge_image, select
from napari_metastructures.core.igtt.engine import IgttConfig


def _bright_zone_and_dim_lines(n=200, seed=0):
    """Background 0, a bright block on 5 % of the pixels (1.0) and dim lines on 30 % (0.15)."""
    img = np.zeros((n, n), np.float32)
    for x in range(0, n, 10):  # 3-px lines every 10 px: 30 % of the columns
        img[:, x:x + 3] = 0.15
    img[: int(0.05 * n), :] = 1.0  # 5 % of the rows
    rng = np.random.default_rng(seed)
    return img + rng.normal(0, 0.005, img.shape).astype(np.float32)


def test_square_root_judge_takes_the_dim_lines_the_linear_one_leaves_out():
    img = _bright_zone_and_dim_lines()
    bright = np.zeros(img.shape, bool)
    bright[:10] = True
    dim = (np.abs(img - 0.15) < 0.05) & ~bright
    linear = select(img, img, 30, "image-otsu", "linear").mask(img).astype(bool)
    sqrt = select(img, img, 30, "image-otsu", "sqrt").mask(img).astype(bool)
    # linear: Otsu between 0.15 and 1.0 (the bright block alone); sqrt: the dim lines too
    assert linear[bright].all() and linear[dim].mean() < 0.01
    assert sqrt[bright].all() and sqrt[dim].mean() > 0.99
    assert not sqrt[~bright & ~dim].any()
    # by hand: on the sqrt scale the split below the lines wins, 0.35 q(1-q)(mu1-mu0)^2
    q, mu1 = 0.05 + 0.285, (0.05 * 1.0 + 0.285 * np.sqrt(0.15)) / 0.335
    assert sqrt.mean() == pytest.approx(q, abs=0.02) and mu1 > np.sqrt(0.15)


def test_judge_image_and_bad_names():
    x = np.array([-1.0, 0.0, 0.25, 4.0])
    np.testing.assert_allclose(judge_image(x, "sqrt"), [0.0, 0.0, 0.5, 2.0])
    np.testing.assert_array_equal(judge_image(x, "linear"), x)
    with pytest.raises(ValueError, match="judge"):
        judge_image(x, "log")


def _tiny(**over):
    return IgttConfig.preset("fast", epochs=2, encoder_depth=3, decoder_channels=(16, 8, 8), crop=64,
                             batch_size=2, steps_per_epoch=2, tile=64, early_stop=False, **over)


def test_leave_out_unsure_marks_only_the_added_band():
    from napari_metastructures.core.igtt.engine import leave_out_unsure

    chosen = np.zeros((6, 6), bool)
    chosen[2, :] = True
    wide = chosen.copy()
    wide[3, :] = True  # the sqrt candidate adds one row
    wide[0, 0] = True
    target = np.zeros((6, 6), np.float32)
    target[2, ::2] = 1.0  # EMS keeps some of the chosen row
    target[0, 0] = 1.0  # an EMS shift can land outside the chosen candidate: it stays a positive
    out = leave_out_unsure([target], [chosen], [wide])[0]
    assert (out[3] == -1).all() and out[0, 0] == 1.0
    np.testing.assert_array_equal(out[2], target[2])  # the chosen row keeps its 0s and 1s
    assert (out[[1, 4, 5]] == 0).all() and out[0, 1:].sum() == 0
    assert (target >= 0).all()  # the input is not modified


def test_left_out_pixels_do_not_move_the_loss():
    import torch

    from napari_metastructures.core.igtt.engine import pseudo_label_loss

    cfg = IgttConfig.preset("fast")
    rng = np.random.default_rng(0)
    y = torch.from_numpy((rng.random((2, 1, 16, 16)) > 0.7).astype(np.float32))
    y[:, :, :4] = -1.0
    p = torch.from_numpy(rng.random((2, 1, 16, 16)).astype(np.float32)).requires_grad_(True)
    loss = pseudo_label_loss(p, y, cfg)
    loss.backward()
    assert torch.isfinite(loss) and (p.grad[:, :, :4] == 0).all() and (p.grad[:, :, 4:] != 0).any()
    # the same as the loss of the kept pixels alone
    keep = y >= 0
    from napari_metastructures.core.training.losses import dmi_loss, soft_iou_loss

    alone = dmi_loss(p[keep], y[keep], signed=cfg.signed_dmi) + soft_iou_loss(p[keep], y[keep])
    assert loss.item() == pytest.approx(alone.item(), rel=1e-5)
    changed = p.detach().clone()
    changed[:, :, :4] = 1.0 - changed[:, :, :4]
    assert pseudo_label_loss(changed, y, cfg).item() == pytest.approx(loss.item(), rel=1e-6)


@pytest.mark.parametrize("structure, leave_out, expected", [
    ("network", True, True), ("network", False, False),
    ("auto", True, False),  # epoch 1 of auto: the structure is not known yet
    ("objects", True, False)])
def test_an_epoch_leaves_out_what_the_sqrt_candidate_adds(structure, leave_out, expected):
    from napari_metastructures.core.igtt.engine import IgttModel, IgttTask, _choose

    cfg = _tiny(leave_out_unsure=leave_out, structure=structure).in_pixels()
    pres = scores = [_bright_zone_and_dim_lines(64)]  # as if preprocessed: P0 and the judge
    groups = [1]
    task = IgttTask(None, pres, [(64, 64)], cfg, np.random.default_rng(0), "cpu",
                    IgttModel(None, {}, "0", []), groups, scores)
    task.start_epoch(1)
    target = task.sampler.targets[0][:64, :64]
    chosen = task.masks[0]
    wide = _choose(task.probs, scores, cfg, groups, "sqrt")[0].mask(task.probs[0]).astype(bool)
    added = wide & ~chosen
    assert added.sum() > 20  # the dim lines: in the sqrt candidate, not in the chosen one
    if expected:
        assert (target[added & (target != 1)] == -1).all()
        assert not (target[~added] == -1).any()
    else:
        assert (target >= 0).all()


@pytest.mark.parametrize("decided, expected", [("network", True), ("objects", False)])
def test_auto_leaves_out_unsure_pixels_once_it_has_decided_for_a_network(decided, expected):
    from napari_metastructures.core.igtt.engine import IgttModel, IgttTask
    from napari_metastructures.core.igtt.structure import StructureChoice

    cfg = _tiny().in_pixels()
    pres = [_bright_zone_and_dim_lines(64)]
    task = IgttTask(None, pres, [(64, 64)], cfg, np.random.default_rng(0), "cpu", IgttModel(None, {}, "0", []),
                    [1], pres)
    task.decided = StructureChoice(decided, "auto", 0.3, "test")
    task.start_epoch(2)
    assert bool((task.sampler.targets[0] == -1).any()) == expected
