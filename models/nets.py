"""The three network architectures in Keras 3 (training side only; imports TensorFlow/Keras).

Every network maps the nine inputs (plus categoricals for WDL) to an
independent Normal for soil moisture (m3 m-3): its output is a (n, 2) block
[loc, scale] with scale = softplus(raw) + 1e-3 > 0, trained by the Gaussian
negative log-likelihood. Input standardisation is the first layer of each
graph (a Keras ``Normalization`` adapted on the training rows; its 2 x 9
constants are *not* counted as parameters below, being non-trainable).

Parameter counts (trainable, checked in tests/test_models_arch.py):
- Dense: 9 -> Dense(9, relu) -> Dense(6, relu) -> Dense(2) -> Normal head:
  90 + 60 + 14 = 164 (paper: about 164).
- Prob: 9 -> Dense(9, relu) -> Dense(4, relu) -> DenseVariational(2) -> Normal head:
  90 + 40 + 2 x (4 x 2 + 2) = 150 (paper: about 150). The variational layer
  holds a mean and a rho (sigma = softplus(rho)) per weight: a mean-field
  Gaussian posterior, sampled with the reparameterisation trick; the KL to a
  N(0, 1) prior is added with ``add_loss`` scaled by 1 / n_train (the ELBO).
- WDL (Xu et al. 2022): wide = a linear model on the standardised inputs plus
  one-hot texture, land cover and Koeppen (written as width-2 embeddings,
  which is the same linear map as one-hot times a matrix); deep = 4-wide
  embeddings of the three categoricals concatenated with the standardised
  inputs -> Dense(128, relu) -> Dense(64, relu) -> Dense(2); wide + deep ->
  Normal head. Vocabularies are fixed by the code tables of models/features.py
  (code 0 and any code outside the table map to a shared "unknown" row, so
  unseen classes never break the graph).
"""

from __future__ import annotations

import math
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from keras import ops

from models.features import CATEGORICALS, CATEGORY_TABLES

SCALE_FLOOR = 1e-3  # m3 m-3, smallest predicted sd
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
VOCAB_SIZES: tuple[int, ...] = tuple(max(CATEGORY_TABLES[c]) + 1 for c in CATEGORICALS)
DENSE_UNITS: tuple[int, int] = (9, 6)
PROB_UNITS: tuple[int, int] = (9, 4)
WDL_UNITS: tuple[int, int] = (128, 64)
WDL_EMBED_DIM = 4


_THREADS_SET = False


def configure_threads(threads: int = 2) -> None:
    """Bound TensorFlow's thread pools (must run before TF executes its first op)."""
    global _THREADS_SET
    if _THREADS_SET:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialised: keep what is there
        pass
    _THREADS_SET = True


@keras.saving.register_keras_serializable(package="smdown")
class NormalHead(keras.layers.Layer):
    """[loc, raw] -> [loc, softplus(raw) + 1e-3]: an independent Normal with positive scale."""

    def call(self, inputs: Any) -> Any:
        loc = inputs[:, 0:1]
        scale = ops.softplus(inputs[:, 1:2]) + SCALE_FLOOR
        return ops.concatenate([loc, scale], axis=1)


def gaussian_nll(y_true: Any, y_pred: Any) -> Any:
    """Negative log-likelihood of y_true (m3 m-3) under Normal(loc, scale) per row."""
    y = ops.reshape(ops.cast(y_true, y_pred.dtype), (-1,))
    loc = y_pred[:, 0]
    scale = y_pred[:, 1]
    z = (y - loc) / scale
    return HALF_LOG_2PI + ops.log(scale) + 0.5 * z * z


@keras.saving.register_keras_serializable(package="smdown")
class DenseVariational(keras.layers.Layer):
    """A dense layer with a mean-field Gaussian posterior over its weights and bias.

    sigma = softplus(rho); each call draws one weight sample (reparameterisation
    trick) and adds kl_weight * KL(q || N(0, 1)) to the layer losses.
    """

    def __init__(
        self, units: int, kl_weight: float = 1.0, seed: int = 0, rho_init: float = -5.0, **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.units = units
        self.kl_weight = float(kl_weight)
        self.seed = seed
        self.rho_init = rho_init
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: Any) -> None:
        n_in = int(input_shape[-1])
        self.kernel_mu = self.add_weight(
            name="kernel_mu", shape=(n_in, self.units), initializer="glorot_uniform"
        )
        self.kernel_rho = self.add_weight(
            name="kernel_rho",
            shape=(n_in, self.units),
            initializer=keras.initializers.Constant(self.rho_init),
        )
        self.bias_mu = self.add_weight(name="bias_mu", shape=(self.units,), initializer="zeros")
        self.bias_rho = self.add_weight(
            name="bias_rho",
            shape=(self.units,),
            initializer=keras.initializers.Constant(self.rho_init),
        )

    def kl(self) -> Any:
        """KL(q || N(0, 1)) summed over all weights (closed form)."""
        total = 0.0
        for mu, rho in ((self.kernel_mu, self.kernel_rho), (self.bias_mu, self.bias_rho)):
            sigma = ops.softplus(rho)
            total = total + ops.sum(0.5 * (sigma**2 + mu**2 - 1.0) - ops.log(sigma))
        return total

    def call(self, inputs: Any) -> Any:
        k_sigma = ops.softplus(self.kernel_rho)
        b_sigma = ops.softplus(self.bias_rho)
        k_eps = keras.random.normal(ops.shape(self.kernel_mu), seed=self.seed_generator)
        b_eps = keras.random.normal(ops.shape(self.bias_mu), seed=self.seed_generator)
        kernel = self.kernel_mu + k_sigma * k_eps
        bias = self.bias_mu + b_sigma * b_eps
        self.add_loss(self.kl_weight * self.kl())
        return ops.matmul(inputs, kernel) + bias

    def posterior_samples(self, n_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A deterministic seeded draw of weights (S, in, out) and biases (S, out), float32."""
        rng = np.random.default_rng(seed)
        k_mu = np.asarray(self.kernel_mu.numpy(), np.float64)
        k_sd = np.log1p(np.exp(np.asarray(self.kernel_rho.numpy(), np.float64)))
        b_mu = np.asarray(self.bias_mu.numpy(), np.float64)
        b_sd = np.log1p(np.exp(np.asarray(self.bias_rho.numpy(), np.float64)))
        k = k_mu + k_sd * rng.standard_normal((n_samples, *k_mu.shape))
        b = b_mu + b_sd * rng.standard_normal((n_samples, *b_mu.shape))
        return k.astype(np.float32), b.astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {
            "units": self.units,
            "kl_weight": self.kl_weight,
            "seed": self.seed,
            "rho_init": self.rho_init,
        }


@keras.saving.register_keras_serializable(package="smdown")
class BakedMixture(keras.layers.Layer):
    """Export head of Prob: S fixed posterior samples of the last layer, mixed in the graph.

    hidden (n, k) -> per sample Normal(loc_s, scale_s) -> [mixture mean, mixture sd].
    """

    def __init__(self, kernels: np.ndarray, biases: np.ndarray, **kw: Any) -> None:
        super().__init__(**kw)
        s, k, u = kernels.shape
        if u != 2:
            raise ValueError("BakedMixture needs a 2-unit (loc, raw scale) layer")
        self.n_samples = s
        # (k, S*2) so one MatMul gives every sample's (loc, raw) pair.
        self._kernel = np.ascontiguousarray(kernels.transpose(1, 0, 2).reshape(k, s * 2))
        self._bias = np.ascontiguousarray(biases.reshape(s * 2))

    def call(self, inputs: Any) -> Any:
        z = ops.matmul(inputs, ops.convert_to_tensor(self._kernel)) + ops.convert_to_tensor(
            self._bias
        )
        z = ops.reshape(z, (-1, self.n_samples, 2))
        loc = z[:, :, 0]
        scale = ops.softplus(z[:, :, 1]) + SCALE_FLOOR
        mean = ops.mean(loc, axis=1, keepdims=True)
        var = ops.mean(scale * scale, axis=1, keepdims=True) + ops.mean(
            (loc - mean) ** 2, axis=1, keepdims=True
        )
        return ops.concatenate([mean, ops.sqrt(var)], axis=1)


def _normalizer(x_train: np.ndarray) -> keras.layers.Normalization:
    norm = keras.layers.Normalization(axis=-1, name="standardise")
    norm.adapt(np.asarray(x_train, np.float32))
    return norm


def build_dense(x_train: np.ndarray) -> keras.Model:
    """Dense: standardise -> 9 relu -> 6 relu -> (loc, scale); 164 trainable parameters."""
    x = keras.Input((int(np.shape(x_train)[1]),), name="x", dtype="float32")
    h = _normalizer(x_train)(x)
    h = keras.layers.Dense(DENSE_UNITS[0], activation="relu", name="hidden1")(h)
    h = keras.layers.Dense(DENSE_UNITS[1], activation="relu", name="hidden2")(h)
    out = NormalHead(name="normal")(keras.layers.Dense(2, name="raw")(h))
    return keras.Model(x, out, name="dense")


def build_prob(x_train: np.ndarray, *, n_train: int, seed: int) -> keras.Model:
    """Prob: standardise -> 9 relu -> 4 relu -> DenseVariational(2) -> (loc, scale); 150."""
    x = keras.Input((int(np.shape(x_train)[1]),), name="x", dtype="float32")
    h = _normalizer(x_train)(x)
    h = keras.layers.Dense(PROB_UNITS[0], activation="relu", name="hidden1")(h)
    h = keras.layers.Dense(PROB_UNITS[1], activation="relu", name="hidden2")(h)
    v = DenseVariational(2, kl_weight=1.0 / max(1, n_train), seed=seed, name="variational")(h)
    out = NormalHead(name="normal")(v)
    return keras.Model(x, out, name="prob")


def prob_export_model(model: keras.Model, n_samples: int, seed: int) -> keras.Model:
    """A deterministic graph of a trained Prob model: S baked samples -> (mean, sd)."""
    layer = model.get_layer("variational")
    if not isinstance(layer, DenseVariational):
        raise TypeError("not a Prob model")
    kernels, biases = layer.posterior_samples(n_samples, seed)
    hidden = model.get_layer("hidden2").output
    out = BakedMixture(kernels, biases, name="mixture")(hidden)
    return keras.Model(model.inputs, out, name="prob_export")


def prob_hidden_model(model: keras.Model) -> keras.Model:
    """The deterministic trunk of a Prob model (inputs -> last hidden layer)."""
    return keras.Model(model.inputs, model.get_layer("hidden2").output)


def mixture_numpy(
    hidden: np.ndarray, kernels: np.ndarray, biases: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Reference (float64) mixture mean and sd over weight samples (S, k, 2), (S, 2)."""
    h = hidden.astype(np.float64)
    z = np.einsum("nk,sku->snu", h, kernels.astype(np.float64)) + biases[:, None, :]
    loc = z[..., 0]
    scale = np.logaddexp(0.0, z[..., 1]) + SCALE_FLOOR
    mean = loc.mean(axis=0)
    var = (scale**2).mean(axis=0) + ((loc - mean) ** 2).mean(axis=0)
    return mean, np.sqrt(var)


class CleanCodes(keras.layers.Layer):
    """Map codes outside [1, vocab) of each categorical column to 0 ("unknown")."""

    def __init__(self, vocab_sizes: tuple[int, ...], **kw: Any) -> None:
        super().__init__(**kw)
        self.vocab_sizes = tuple(int(v) for v in vocab_sizes)

    def call(self, cats: Any) -> Any:
        limits = ops.convert_to_tensor(np.array(self.vocab_sizes, np.int64))
        bad = ops.logical_or(cats < 0, cats >= limits)
        return ops.where(bad, ops.zeros_like(cats), cats)

    def get_config(self) -> dict[str, Any]:
        return super().get_config() | {"vocab_sizes": self.vocab_sizes}


def build_wdl(x_train: np.ndarray) -> keras.Model:
    """WDL: wide GLM (inputs + one-hot categoricals) + deep (embeddings + 128 + 64), summed."""
    x = keras.Input((int(np.shape(x_train)[1]),), name="x", dtype="float32")
    cats = keras.Input((len(CATEGORICALS),), name="cats", dtype="int64")
    xs = _normalizer(x_train)(x)
    codes = CleanCodes(VOCAB_SIZES, name="clean_codes")(cats)
    wide_terms = [keras.layers.Dense(2, name="wide_inputs")(xs)]
    deep_terms = [xs]
    for j, (name, vocab) in enumerate(zip(CATEGORICALS, VOCAB_SIZES, strict=True)):
        code = codes[:, j]
        wide_terms.append(
            keras.layers.Embedding(vocab, 2, embeddings_initializer="zeros", name=f"wide_{name}")(
                code
            )
        )
        deep_terms.append(keras.layers.Embedding(vocab, WDL_EMBED_DIM, name=f"embed_{name}")(code))
    wide = keras.layers.Add(name="wide")(wide_terms)
    h = keras.layers.Concatenate(name="deep_in")(deep_terms)
    h = keras.layers.Dense(WDL_UNITS[0], activation="relu", name="deep1")(h)
    h = keras.layers.Dense(WDL_UNITS[1], activation="relu", name="deep2")(h)
    deep = keras.layers.Dense(2, name="deep_out")(h)
    out = NormalHead(name="normal")(keras.layers.Add(name="wide_plus_deep")([wide, deep]))
    return keras.Model([x, cats], out, name="wdl")


def trainable_params(model: keras.Model) -> int:
    """Number of trainable parameters (normalisation constants excluded)."""
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
