"""The network architectures: sizes, Normal head, NLL, variational layer, WDL shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("keras")

import keras
from _models_shared import small_table

from models import nets
from models import table as tbl


@pytest.fixture(scope="module")
def x_train() -> np.ndarray:
    return tbl.features(small_table())


def test_dense_has_164_trainable_parameters(x_train: np.ndarray) -> None:
    model = nets.build_dense(x_train)
    assert nets.trainable_params(model) == 164  # paper: about 164
    # the standardisation constants exist but are not trainable
    norm = model.get_layer("standardise")
    assert not norm.trainable_weights


def test_prob_has_150_trainable_parameters_with_a_variational_layer(x_train: np.ndarray) -> None:
    model = nets.build_prob(x_train, n_train=1000, seed=0)
    assert nets.trainable_params(model) == 150  # paper: about 150
    layer = model.get_layer("variational")
    assert isinstance(layer, nets.DenseVariational)
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == 2 * (4 * 2 + 2)


def test_outputs_are_loc_and_positive_scale(x_train: np.ndarray) -> None:
    keras.utils.set_random_seed(0)
    model = nets.build_dense(x_train)
    extreme = np.vstack([x_train[:50], x_train[:50] * 1e4, -x_train[:50] * 1e4])
    out = np.asarray(model.predict(extreme, verbose=0))
    assert out.shape == (150, 2)
    assert (out[:, 1] >= nets.SCALE_FLOOR).all()
    head = nets.NormalHead()
    raw = np.array([[0.2, -80.0], [0.3, 0.0], [0.1, 30.0]], np.float32)
    got = np.asarray(head(raw))
    np.testing.assert_allclose(got[:, 0], raw[:, 0])
    ref = np.log1p(np.exp(raw[:, 1].astype(float))) + 1e-3
    np.testing.assert_allclose(got[:, 1], ref, rtol=1e-6)


def test_gaussian_nll_matches_the_normal_density() -> None:
    rng = np.random.default_rng(0)
    y = rng.uniform(0.05, 0.5, 64).astype(np.float32)
    loc = rng.uniform(0.05, 0.5, 64).astype(np.float32)
    scale = rng.uniform(0.01, 0.2, 64).astype(np.float32)
    got = np.asarray(nets.gaussian_nll(y, np.stack([loc, scale], axis=1)))
    ref = -np.log(
        np.exp(-0.5 * ((y - loc) / scale).astype(float) ** 2) / (scale * math.sqrt(2 * math.pi))
    )
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)
    # minimised at the true mean: moving loc away raises the loss
    worse = np.asarray(nets.gaussian_nll(y, np.stack([y + 0.05, scale], axis=1)))
    best = np.asarray(nets.gaussian_nll(y, np.stack([y, scale], axis=1)))
    assert (worse > best).all()


def test_variational_layer_samples_weights_and_adds_kl(x_train: np.ndarray) -> None:
    keras.utils.set_random_seed(1)
    layer = nets.DenseVariational(2, kl_weight=0.5, seed=1, rho_init=-1.0)
    h = np.ones((4, 4), np.float32)
    a = np.asarray(layer(h))
    b = np.asarray(layer(h))
    assert a.shape == (4, 2)
    assert not np.allclose(a, b)  # a fresh weight sample per call
    kl = float(layer.kl())
    assert kl > 0
    assert layer.losses and math.isclose(float(layer.losses[-1]), 0.5 * kl, rel_tol=1e-5)
    # closed form of KL(N(mu, s^2) || N(0, 1)) summed over the 10 weights
    mu = np.concatenate([np.ravel(layer.kernel_mu.numpy()), np.ravel(layer.bias_mu.numpy())])
    s = np.log1p(np.exp(-1.0))
    ref = np.sum(0.5 * (s**2 + mu**2 - 1.0) - np.log(s))
    assert math.isclose(kl, ref, rel_tol=1e-5)
    k1, b1 = layer.posterior_samples(16, seed=5)
    k2, _ = layer.posterior_samples(16, seed=5)
    assert k1.shape == (16, 4, 2) and b1.shape == (16, 2)
    np.testing.assert_array_equal(k1, k2)  # a seeded, reproducible draw


def test_baked_mixture_equals_the_numpy_reference(x_train: np.ndarray) -> None:
    rng = np.random.default_rng(2)
    kernels = rng.normal(0, 0.5, (8, 4, 2)).astype(np.float32)
    biases = rng.normal(0, 0.1, (8, 2)).astype(np.float32)
    hidden = rng.uniform(0, 2, (20, 4)).astype(np.float32)
    got = np.asarray(nets.BakedMixture(kernels, biases)(hidden))
    mean, sd = nets.mixture_numpy(hidden, kernels, biases)
    np.testing.assert_allclose(got[:, 0], mean, atol=1e-6)
    np.testing.assert_allclose(got[:, 1], sd, atol=1e-6)


def test_wdl_shapes_vocabularies_and_unknown_codes(x_train: np.ndarray) -> None:
    keras.utils.set_random_seed(0)
    model = nets.build_wdl(x_train)
    assert [tuple(i.shape) for i in model.inputs] == [(None, 9), (None, 3)]
    assert nets.VOCAB_SIZES == (13, 18, 31)  # codes 1..12, 1..17, 1..30 plus "unknown" 0
    for name, vocab in zip(("texture", "landcover", "koppen"), nets.VOCAB_SIZES, strict=True):
        assert model.get_layer(f"embed_{name}").embeddings.shape == (vocab, nets.WDL_EMBED_DIM)
        assert model.get_layer(f"wide_{name}").embeddings.shape == (vocab, 2)
    assert model.get_layer("deep1").units == 128 and model.get_layer("deep2").units == 64
    cats = np.array([[1, 10, 14], [12, 17, 30], [99, -3, 0], [0, 0, 0]], np.int64)
    out = np.asarray(model.predict([x_train[:4], cats], verbose=0))
    assert out.shape == (4, 2) and np.isfinite(out).all() and (out[:, 1] > 0).all()
    # out-of-table codes behave exactly as the unknown code 0
    # (a batch of one may sum in another order than a batch of four: 1 ulp apart)
    unknown = np.asarray(model.predict([x_train[2:3], cats[3:]], verbose=0))
    np.testing.assert_allclose(out[2], unknown[0], rtol=1e-6)
    # ... and a wrong code changes nothing but its own embedding row
    other = np.asarray(model.predict([x_train[2:3], cats[:1]], verbose=0))
    assert not np.allclose(other[0], unknown[0], rtol=1e-4)
