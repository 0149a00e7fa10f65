"""structure="auto": thin networks or thick objects, decided from the first candidate."""
import numpy as np
import pytest

from napari_metastructures.core.igtt.engine import IgttConfig, first_targets, pseudo_labels, train
from napari_metastructures.core.igtt.engine import run as run_igtt
from napari_metastructures.core.igtt.structure import OBJECTS_ABOVE, choose_structure, uncovered_share
from napari_metastructures.core.validate import InputError


def _tubules(n=64):
    m = np.zeros((n, n), bool)
    m[10:13, 4:60] = True  # 3-px tubules: the skeleton band covers them
    m[4:60, 30:33] = True
    return m


def _blobs(n=64):
    yy, xx = np.mgrid[0:n, 0:n]
    return ((yy - 20) ** 2 + (xx - 20) ** 2 < 100) | ((yy - 44) ** 2 + (xx - 44) ** 2 < 144)


def test_uncovered_share_by_hand():
    bar = np.zeros((20, 40), bool)
    bar[5:12, 5:35] = True  # 7 x 30 = 210 px; its skeleton is a horizontal line
    n_skel = 30 - 2 * 3  # skeletonize shortens a 7-px-wide bar by about its half-width at each end
    share = uncovered_share([bar])
    assert share == pytest.approx((210 - 3 * n_skel) / 210, abs=0.03)
    assert uncovered_share([_tubules()]) < 0.15
    assert np.isnan(uncovered_share([np.zeros((8, 8), bool)]))


def test_auto_picks_network_for_tubules_and_objects_for_blobs():
    thin = choose_structure("auto", [_tubules()])
    thick = choose_structure("auto", [_blobs()])
    assert thin.structure == "network" and thin.uncovered <= OBJECTS_ABOVE
    assert thick.structure == "objects" and thick.uncovered > OBJECTS_ABOVE
    assert "skeleton band" in thick.reason and "%" in thick.reason
    # pooled over images: one big blob image outweighs a small tubule image
    mixed = choose_structure("auto", [_tubules(), _blobs(), _blobs()])
    assert mixed.structure == "objects"
    assert choose_structure("network", [_blobs()]).structure == "network"
    assert choose_structure("objects", [_tubules()]).reason == "set by the user"
    with pytest.raises(ValueError, match="structure"):
        choose_structure("blobs", [_tubules()])
    with pytest.raises(ValueError, match="structure"):
        IgttConfig.preset("fast", structure="blobs")


def test_resolved_structure_changes_the_pseudo_labels():
    cfg = IgttConfig.preset("fast")
    blob = _blobs()
    network = pseudo_labels([blob], cfg, np.random.default_rng(0), "network")[0]
    objects = pseudo_labels([blob], cfg, np.random.default_rng(0), "objects")[0]
    assert objects.sum() > 2 * network.sum()
    assert not objects[~blob].any()


def _blob_image(seed=0):
    rng = np.random.default_rng(seed)
    img = rng.normal(100, 5, (64, 64)) + 400 * _blobs()
    return img.astype(np.float32)


def _tiny(**over):
    return IgttConfig.preset("fast", epochs=2, encoder_depth=3, decoder_channels=(16, 8, 8), crop=64,
                             batch_size=2, steps_per_epoch=2, tile=64, early_stop=False, **over)


@pytest.mark.slow
def test_train_decides_after_epoch_one_from_its_candidate_and_records_it():
    gen = train([_blob_image()], _tiny(), seed=0, device="cpu")
    first = next(gen)
    expected = choose_structure("auto", [p > 0.5 for p in first.preview])  # the epoch-1 candidate
    assert first.extra["structure"] == expected.structure
    assert first.extra["uncovered"] == pytest.approx(expected.uncovered, abs=1e-4)
    assert first.message.startswith(f"structure: {expected.structure} (")
    second = next(gen)
    assert second.extra["structure"] == expected.structure and "structure" not in second.message
    with pytest.raises(StopIteration) as done:
        next(gen)
    decided = done.value.value.model.config["structure"]
    assert decided["requested"] == "auto" and decided["structure"] == expected.structure


@pytest.mark.slow
def test_local_window_follows_the_width_of_the_structures():
    from napari_metastructures.core.igtt.engine import local_window
    from napari_metastructures.core.training.data import preprocess

    cfg = _tiny()
    rng = np.random.default_rng(1)
    tubes = (rng.normal(100, 5, (64, 64)) + 400 * _tubules()).astype(np.float32)
    for image, wider in ((_blob_image(), True), (tubes, False)):
        spec = cfg.preprocess_dict()
        pres = [preprocess(image, spec)]
        new_spec, new_pres = local_window([image], pres, spec, cfg)
        assert (new_spec["local_sigma"] > cfg.local_sigma) is wider
        # the haze sigma follows the window, never below the smallest window
        assert new_spec["background_sigma"] == round(max(cfg.local_sigma, 0.7 * new_spec["local_sigma"]), 1)
        fixed = _tiny(background_per_window=None)
        fixed_spec, fixed_pres = local_window([image], pres, spec, fixed)
        assert fixed_spec["background_sigma"] == spec["background_sigma"]
        assert (fixed_pres[0] is pres[0]) is not wider
    model = run_igtt([_blob_image()], cfg, seed=0, device="cpu").model
    assert model.config["preprocess"]["local_sigma"] > cfg.local_sigma  # what predict() repeats


def _halo_image():
    """A saturated disc whose haze falls off over ~20 px onto dim 3-px lines beside it."""
    yy, xx = np.mgrid[:192, :192].astype(np.float32)
    r = np.hypot(yy - 96, xx - 60)
    lines = np.zeros((192, 192), bool)
    for x0 in range(95, 190, 12):
        lines[10:182, x0:x0 + 3] = True
    signal = 100 + 3000 * (r < 25) + 800 * np.exp(-np.maximum(r - 25, 0) ** 2 / (2 * 20.0**2)) + 60 * lines
    return np.random.default_rng(0).poisson(signal).astype(np.float32), lines, r


def test_haze_removal_at_the_window_scale_keeps_dim_lines_beside_a_bright_zone():
    from napari_metastructures.core.training.data import preprocess

    image, lines, r = _halo_image()
    near = (r > 40) & (r < 70)  # in the bright zone's haze

    def contrast(background_sigma):
        spec = dict(IgttConfig.preset("fast").preprocess_dict(), background_sigma=background_sigma, local_sigma=8.0)
        x = preprocess(image, spec, "score")
        return x[near & lines].mean() / x[near & ~lines].mean()

    # a 30-px background cannot follow the haze's fall-off: the gaps between lines stay bright
    assert contrast(8.0) > 2 * contrast(30.0)


def test_config_refuses_a_bad_background_per_window():
    with pytest.raises(InputError, match="background per window"):
        IgttConfig.preset("fast", background_per_window=0)
    assert IgttConfig.preset("fast", background_per_window=None).background_per_window is None


def test_epoch_one_uses_the_papers_ems_until_auto_has_decided():
    image = _blob_image() / 500.0
    auto = first_targets([image], IgttConfig.preset("fast"), np.random.default_rng(0))[0]
    network = first_targets([image], IgttConfig.preset("fast", structure="network"), np.random.default_rng(0))[0]
    objects = first_targets([image], IgttConfig.preset("fast", structure="objects"), np.random.default_rng(0))[0]
    np.testing.assert_array_equal(auto, network)
    assert objects.sum() > 2 * network.sum()


def _tubes_3d(shape=(16, 64, 64)):
    """Three tubes 3 px wide in xy and 5 planes thick (an axial PSF), one rising across z."""
    zz, yy, xx = np.indices(shape).astype(float)
    m = ((yy - 20) / 1.5) ** 2 + ((zz - 5) / 2.5) ** 2 <= 1  # along x
    m |= ((xx - 40) / 1.5) ** 2 + ((zz - 10) / 2.5) ** 2 <= 1  # along y
    m |= ((yy - 48) / 1.5) ** 2 + ((zz - 3 - xx / 6.0) / 2.5) ** 2 <= 1  # rises 10 planes along x
    return m


def _blobs_3d(shape=(16, 64, 64)):
    zz, yy, xx = np.indices(shape).astype(float)
    m = np.zeros(shape, bool)
    for z, y, x in ((5, 18, 18), (10, 44, 40), (8, 16, 48)):
        m |= ((zz - z) / 3.0) ** 2 + ((yy - y) / 9.0) ** 2 + ((xx - x) / 9.0) ** 2 <= 1
    return m


@pytest.mark.parametrize("anisotropy", [3.8, 1.0, None])
def test_auto_on_volumes_uses_the_3d_skeleton_band(anisotropy):
    from napari_metastructures.core.igtt.ems import outside_band, skeleton
    from napari_metastructures.core.igtt.structure import band_radii

    tubes, blobs = _tubes_3d(), _blobs_3d()
    thin = choose_structure("auto", [tubes], 1, anisotropy)
    thick = choose_structure("auto", [blobs], 1, anisotropy)
    assert thin.structure == "network" and thick.structure == "objects"
    assert "3D skeleton band" in thin.reason and "3D skeleton band" in thick.reason
    assert band_radii(1, anisotropy)[0] == 1  # at least one plane above and below
    # the EMS band alone (no z shift at this anisotropy) would call the z-blurred tubes thick
    share_flat = outside_band(tubes, skeleton(tubes), (0, 1, 1)) / tubes.sum()
    assert share_flat > OBJECTS_ABOVE > thin.uncovered
    # 2D masks keep the 2D rule
    assert uncovered_share(list(tubes)) == pytest.approx(
        sum(max(0, int(p.sum()) - 3 * int(skeleton(p).sum())) for p in tubes) / tubes.sum())
