import numpy as np
import pytest
from pydantic import ValidationError

from barapi.config import MethodConfig
from barapi.method.bases import cosine_matrix, interpolation_matrix
from barapi.method.program import Program, decode_png, initial_parameters, program_sha256, quantize
from barapi.config import Geometry


def test_embedding_keeps_target_pixels_intact() -> None:
    g = Geometry(canvas_size=64, embed_size=16, program_resolution=8)
    program = Program(g)
    rng = np.random.default_rng(0)
    w = initial_parameters(g, 3.0, rng)
    target = rng.uniform(-1, 1, size=(16, 16, 3))
    canvas = decode_png(program.encode_batch(w, target[None])[0])
    inner = canvas[g.offset : g.offset + 16, g.offset : g.offset + 16]
    assert np.array_equal(quantize(inner), quantize(target))
    # ...and the program is really there outside it.
    assert np.abs(canvas[:4, :4]).max() > 0.1


def test_mask_is_zero_exactly_on_the_embedding() -> None:
    g = Geometry(canvas_size=32, embed_size=10)
    mask = Program(g).mask[..., 0]
    assert mask.sum() == 32 * 32 - 100
    assert (mask[g.offset : g.offset + 10, g.offset : g.offset + 10] == 0).all()


def test_program_is_tanh_of_masked_parameters_and_bounded() -> None:
    g = Geometry(canvas_size=16, embed_size=4)
    program = Program(g)
    w = np.random.default_rng(1).normal(0, 10, size=g.parameter_shape)
    p = program.perturbation(w)
    assert np.allclose(p, np.tanh(w * program.mask))
    assert np.abs(p).max() <= 1.0


def test_low_resolution_parameters_are_upsampled_smoothly() -> None:
    m = interpolation_matrix(8, 3)
    assert np.allclose(m.sum(axis=1), 1.0)  # convex weights: constants stay constant
    assert np.allclose(m @ np.array([0.0, 1.0, 2.0]), np.linspace(0, 2, 8))


def test_a_cosine_program_holds_the_lowest_frequencies_at_the_scale_of_a_grid() -> None:
    m = cosine_matrix(196, 8)
    assert np.allclose(m.T @ m, np.eye(8) * 196 / 8)  # orthogonal columns: no coefficient repeats another
    assert np.mean(np.sum(m**2, axis=1)) == pytest.approx(1.0)  # a unit move of every coefficient moves a pixel by about one unit
    assert np.allclose(m[:, 0], m[0, 0])  # the first coefficient is the program's mean, flat
    assert (np.diff(np.sign(m[:, 7])) != 0).sum() == 7  # the eighth crosses zero seven times: the lowest frequencies, in order


@pytest.mark.parametrize("basis", ["bilinear", "cosine"])
def test_a_placed_program_lives_only_where_the_model_looks(basis: str) -> None:
    """The local model resizes 224 → 256 and crops 224: it sees the centre 196 px. A placed
    program spans those, and every coordinate of W moves some of them."""
    g = Geometry(canvas_size=224, embed_size=112, program_resolution=8, basis=basis, visible_size=196)
    program = Program(g)
    w = initial_parameters(g, 1.0, np.random.default_rng(4))
    p = program.perturbation(w)
    outside = np.ones((224, 224), bool)
    outside[14:210, 14:210] = False
    assert not p[outside].any() and np.abs(p[~outside]).max() > 0.5
    for i in range(8):
        nudged = w.copy()
        nudged[i, 0, 0] += 1.0
        assert np.abs(program.perturbation(nudged) - p)[14:210, 14:210].max() > 0.01
    full = Geometry(canvas_size=224, embed_size=112, visible_size=196)
    assert full.parameter_shape == (196, 196, 3)
    with pytest.raises(ValidationError, match="leaves no room"):
        Geometry(canvas_size=224, embed_size=200, visible_size=196)


def test_png_round_trip_is_exact_after_quantisation() -> None:
    g = Geometry(canvas_size=32, embed_size=8, program_resolution=4)
    program = Program(g)
    w = initial_parameters(g, 1.0, np.random.default_rng(2))
    target = np.random.default_rng(3).uniform(-1, 1, size=(8, 8, 3))
    sent = program.encode_batch(w, target[None])[0]
    assert sent[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(quantize(decode_png(sent)), quantize(program.compose(w, target)))
    assert program.encode_batch(w, target[None])[0] == sent  # deterministic bytes: cacheable


def test_geometry_rejects_an_embedding_that_fills_the_canvas() -> None:
    with pytest.raises(ValidationError, match="leaves no room"):
        Geometry(canvas_size=64, embed_size=64)


def test_program_hash_depends_on_every_bit() -> None:
    w = np.zeros((2, 2, 3))
    v = w.copy()
    v[0, 0, 0] = np.nextafter(0, 1)
    assert program_sha256(w) != program_sha256(v)


def test_quantisation_swallows_the_papers_beta_at_full_resolution() -> None:
    """With d ≈ 150k and β = 0.01 on a unit direction, no pixel moves a grey
    level, so the finite difference through an 8-bit API is exactly zero; a low-resolution W
    with β = 1 moves many pixels."""
    rng = np.random.default_rng(4)
    full = Geometry()
    w = initial_parameters(full, 0.5, rng)
    u = rng.standard_normal(full.parameter_shape)
    u /= np.linalg.norm(u)
    program = Program(full)
    moved = quantize(program.perturbation(w + 0.01 * u)) != quantize(program.perturbation(w))
    assert moved.mean() < 0.01
    low = Geometry(program_resolution=16)
    w_low = initial_parameters(low, 0.5, rng)
    u_low = rng.standard_normal(low.parameter_shape)
    u_low /= np.linalg.norm(u_low)
    low_program = Program(low)
    moved_low = quantize(low_program.perturbation(w_low + 1.0 * u_low)) != quantize(low_program.perturbation(w_low))
    assert moved_low.mean() > 0.5


@pytest.mark.parametrize(("resolution", "basis"), [(4, "bilinear"), (16, "bilinear"), (None, "bilinear"), (8, "cosine"), (16, "cosine")])
def test_the_default_perturbation_moves_the_program_by_a_grey_level_or_two_at_every_resolution(resolution: int | None, basis: str) -> None:
    """The scale at which an 8-bit API's finite differences follow the gradient
    (bench/results/zo_signal.md): most of the program's pixels move, none by many levels. The
    previous fixed β = 2 moved a 16×16 program's pixels by up to ~20 levels."""
    method = MethodConfig(geometry=Geometry(embed_size=112, program_resolution=resolution, basis=basis))
    program = Program(method.geometry)
    rng = np.random.default_rng(9)
    w = initial_parameters(method.geometry, method.init_scale, rng)
    u = rng.standard_normal(w.shape)
    u /= np.linalg.norm(u)
    band = program.mask[..., 0] > 0
    levels = np.abs(quantize(program.perturbation(w + method.perturbation_radius * u)).astype(int) - quantize(program.perturbation(w)))[band]
    assert (levels > 0).mean() > 0.3
    assert np.percentile(levels, 99) <= 5
    assert MethodConfig(beta=2.0, geometry=method.geometry).perturbation_radius == 2.0


def test_a_float_canvas_is_the_composed_program_unrounded_and_a_png_is_it_rounded() -> None:
    from barapi.method.program import float_canvas
    from barapi.config import GREY_LEVEL

    g = Geometry(program_resolution=8)
    w = initial_parameters(g, 1.0, np.random.default_rng(0))
    target = np.random.default_rng(1).uniform(-1, 1, (1, g.embed_size, g.embed_size, 3))
    exact = float_canvas(Program(g, "float32").encode_batch(w, target)[0])
    assert exact.dtype == np.float32 and np.allclose(exact, Program(g).compose(w, target[0]), atol=1e-6)
    rounded = decode_png(Program(g).encode_batch(w, target)[0])
    assert np.abs(rounded - exact).max() <= GREY_LEVEL / 2 + 1e-6
    # A move of a fifth of a grey level: the PNG carries it only where a pixel crosses a rounding
    # boundary (a whole level, at about a fifth of the pixels); the float canvas moves every pixel.
    nudged = w + 0.2 * GREY_LEVEL
    program = Program(g).mask[:, :, 0] > 0
    moved_png = np.abs(decode_png(Program(g).encode_batch(nudged, target)[0]) - rounded)[program]
    moved_float = np.abs(float_canvas(Program(g, "float32").encode_batch(nudged, target)[0]) - exact)[program]
    assert set(np.round(moved_png / GREY_LEVEL).astype(int).ravel()) <= {0, 1} and (moved_png > 0).mean() < 0.5
    assert (moved_float > 0).mean() > 0.95
    assert float_canvas(b"\x89PNG...") is None
