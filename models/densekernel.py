"""A fused CPU kernel for the Dense ensemble, giving the fused ONNX graph's exact bits.

The fused Dense graph (``models.onnxgraph.fuse_members`` of the tf2onnx member files)
spends most of its onnxruntime time in glue nodes (Slice, Add, Concat, Softplus)
rather than in its tiny matrix multiplies. This module computes the same figures
in one pass over blocks of rows (numba, vectorised across the rows of a block)
and reproduces onnxruntime's float32 arithmetic step by step:

- standardisation ``(x - mean) * (1 / std)``, two roundings, as the graph's Sub, Mul;
- each MatMul as MLAS computes it: a fused multiply-add chain over k = 0..K-1 from
  zero, then the bias added (one rounding), then ReLU;
- Softplus as onnxruntime's CPU kernel computes it: Eigen's SSE packet ``exp`` and
  ``log1p`` (``x > 0 ? x + log1p(exp(-x)) : log1p(exp(x))``, every multiply-add
  rounded twice), on all but the last ``n % 4`` elements of a member's column;
  those few (Eigen's scalar tail, the C library's ``expf``/``log1pf``) are taken
  from onnxruntime itself (a one-node Softplus session) on the same values;
- ReduceMean over the members as Eigen's unaligned-map sum: one 4-wide packet
  starting at the first 16-byte aligned member of the row (rows of m floats
  from a 64-byte aligned buffer), summed as (p0 + p2) + (p1 + p3), then the members
  before and after it in order; divided by m.

Every one of those is an implementation detail of onnxruntime, not a promise, so an
``Ensemble`` uses the kernel only after ``DenseKernel.verify`` found it bit-identical to
the fused session on probe rows (including a batch whose length is not a multiple
of 4), and only with one intra-op thread (the workers' setting; with more threads
onnxruntime splits the element-wise nodes at other points). Otherwise the fused
graph runs as before. ``tests/test_densekernel.py`` checks the kernel against the
fused graph on a trained ensemble, and the published-values test runs it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from models.errors import ModelError

try:  # numba is a declared dependency; the import is guarded so a broken install falls back.
    from llvmlite import ir as _llvm_ir
    from numba import njit, types
    from numba.core import cgutils
    from numba.extending import intrinsic

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False

N_IN = 9
BLOCK = 512
"""Rows per block: the block's hidden activations (9 + 6 rows of BLOCK floats) stay in L1."""
_DENSE_OPS = (
    "Sub", "Mul", "MatMul", "Add", "Relu", "MatMul", "Add", "Relu", "MatMul", "Add",
    "Slice", "Softplus", "Add", "Slice", "Concat", "Gather", "Gather",
)  # fmt: skip


def _f32(text: str) -> np.float32:
    """A C float literal: the float32 nearest the decimal (not via float64, no double rounding)."""
    exact = Fraction(text)
    a = np.float32(float(exact))
    cands = (a, np.nextafter(a, np.float32(np.inf)), np.nextafter(a, np.float32(-np.inf)))
    return min(
        cands,
        key=lambda v: (abs(Fraction(float(v)) - exact), int(np.float32(v).view(np.uint32)) & 1),
    )


# Eigen's float constants of pexp_float / plog_impl_float (GenericPacketMathFunctions.h).
_LOG2EF = _f32("1.44269504088896341")
_EXP_HI = _f32("88.723")
_EXP_LO = _f32("-104")
_C1 = _f32("-0.693359375")
_C2 = _f32("2.12194440e-4")
_P2 = _f32("0.49999988079071044921875")
_P3 = _f32("0.16666518151760101318359375")
_P4 = _f32("4.166965186595916748046875e-2")
_P5 = _f32("8.36894474923610687255859375e-3")
_P6 = _f32("1.37449637986719608306884765625e-3")
_SQRTHF = _f32("0.707106781186547524")
_LP1 = _f32("1.0000000190281136")
_LP2 = _f32("1.0000000190281063")
_LP3 = _f32("0.18256296349849254")
_LQ1 = _f32("1.4999999999999927")
_LQ2 = _f32("0.59923249590823520")
_LQ3 = _f32("0.049616247954120038")
_LN2 = np.float32(0.693147180559945309417232121458)  # static_cast<float>(EIGEN_LN2)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_ZERO = np.float32(0.0)


@dataclass(frozen=True, slots=True)
class DenseWeights:
    """The float32 constants of m Dense members (shared standardisation, three layers)."""

    mean: np.ndarray  # (9,)
    recip: np.ndarray  # (9,) 1 / std as stored in the graph
    w1: np.ndarray  # (m, 9, 9)
    b1: np.ndarray  # (m, 9)
    w2: np.ndarray  # (m, 9, 6)
    b2: np.ndarray  # (m, 6)
    w3: np.ndarray  # (m, 6, 2)
    b3: np.ndarray  # (m, 2)
    floor: np.float32  # scale = softplus(raw) + floor

    @property
    def n_members(self) -> int:
        return int(self.w1.shape[0])


def _member_constants(model: onnx.ModelProto, name: str) -> tuple[np.ndarray, ...]:
    ops = tuple(n.op_type for n in model.graph.node)
    if ops != _DENSE_OPS:
        raise ModelError(f"{name}: not the Dense member graph the kernel knows (nodes {ops})")
    init = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    nodes = list(model.graph.node)

    def const(node: onnx.NodeProto, idx: int = 1) -> np.ndarray:
        value = init.get(node.input[idx])
        if value is None:
            raise ModelError(f"{name}: {node.op_type} input {node.input[idx]!r} is not a constant")
        return np.asarray(value, dtype=np.float32)

    if nodes[0].input[0] != "x" or nodes[1].input[0] != nodes[0].output[0]:
        raise ModelError(f"{name}: the standardisation does not read x")
    mean, recip = const(nodes[0]).reshape(-1), const(nodes[1]).reshape(-1)
    w1, b1, w2, b2, w3, b3 = (const(nodes[i]) for i in (2, 3, 5, 6, 8, 9))
    floor = const(nodes[12])
    if floor.size != 1 or nodes[12].input[0] != nodes[11].output[0]:
        raise ModelError(f"{name}: the scale head is not softplus(raw) + constant")
    # Which column the Softplus slice takes: the head must be [loc, softplus(raw) + floor].
    sp_slice, loc_slice = nodes[10], nodes[13]
    starts = [init[sp_slice.input[1]].tolist(), init[loc_slice.input[1]].tolist()]
    concat = nodes[14]
    if (
        list(concat.input) != [loc_slice.output[0], nodes[12].output[0]]
        or starts[0][-1] != 1
        or starts[1][-1] != 0
    ):
        raise ModelError(f"{name}: the Normal head is not [raw[:, 0], softplus(raw[:, 1]) + c]")
    shapes = ((w1.shape, (N_IN, 9)), (w2.shape, (9, 6)), (w3.shape, (6, 2)))
    if any(a != b for a, b in shapes) or mean.shape != (N_IN,) or recip.shape != (N_IN,):
        raise ModelError(f"{name}: unexpected layer shapes {[s for s, _ in shapes]}")
    return mean, recip, w1, b1.reshape(-1), w2, b2.reshape(-1), w3, b3.reshape(-1), floor


def dense_weights(members: Sequence[tuple[str, onnx.ModelProto]]) -> DenseWeights:
    """The kernel's constants from the member files (name, model), in manifest order."""
    if not members:
        raise ModelError("no Dense members")
    parts = [_member_constants(m, name) for name, m in members]
    mean, recip, floor = parts[0][0], parts[0][1], parts[0][8]
    for (name, _), p in zip(members, parts, strict=True):
        if not (np.array_equal(p[0], mean) and np.array_equal(p[1], recip)):
            raise ModelError(f"{name}: members standardise differently; the kernel shares one")
        if not np.array_equal(p[8], floor):
            raise ModelError(f"{name}: members use different scale floors")

    def stack(i: int) -> np.ndarray:
        return np.ascontiguousarray(np.stack([p[i] for p in parts]), dtype=np.float32)

    return DenseWeights(
        mean=mean, recip=recip, w1=stack(2), b1=stack(3), w2=stack(4), b2=stack(5),
        w3=stack(6), b3=stack(7), floor=np.float32(floor.reshape(())),
    )  # fmt: skip


def _softplus_session(m: int) -> ort.InferenceSession:
    """m one-node Softplus graphs in one session (inputs r0.., outputs s0..), 1 thread."""
    nodes = [helper.make_node("Softplus", [f"r{i}"], [f"s{i}"]) for i in range(m)]
    vin = [helper.make_tensor_value_info(f"r{i}", TensorProto.FLOAT, ["N"]) for i in range(m)]
    vout = [helper.make_tensor_value_info(f"s{i}", TensorProto.FLOAT, ["N"]) for i in range(m)]
    model = helper.make_model(
        helper.make_graph(nodes, "softplus", vin, vout),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(
        model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"]
    )


if HAVE_NUMBA:

    @intrinsic
    def _fma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
        """a * b + c with one rounding (llvm.fma.f32), as MLAS's FMA kernels compute."""
        sig = types.float32(types.float32, types.float32, types.float32)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f32 = _llvm_ir.FloatType()
            fnty = _llvm_ir.FunctionType(f32, [f32, f32, f32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f32")
            return builder.call(fn, args)

        return sig, codegen

    @intrinsic
    def _floorf(typingctx: Any, a: Any) -> Any:
        """floor of a float32 (llvm.floor.f32: exact, vectorisable)."""
        sig = types.float32(types.float32)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            f32 = _llvm_ir.FloatType()
            fnty = _llvm_ir.FunctionType(f32, [f32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.floor.f32")
            return builder.call(fn, args)

        return sig, codegen

    @intrinsic
    def _f32_from_bits(typingctx: Any, bits: Any) -> Any:
        """The float32 whose bit pattern is the int32 ``bits``."""
        sig = types.float32(types.int32)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            return builder.bitcast(args[0], _llvm_ir.FloatType())

        return sig, codegen

    @njit(nogil=True, cache=True, error_model="numpy", inline="always")
    def _pexp(x0: Any) -> Any:
        """Eigen pexp_float without FMA (SSE build): every pmadd is a multiply then an add."""
        x = min(x0, _EXP_HI)
        fm: Any = _floorf(x * _LOG2EF + _HALF)  # type: ignore[call-arg]
        r = fm * _C1 + x
        r = fm * _C2 + r
        r2 = r * r
        p_even = r2 * _P6 + _P4
        p_odd = r2 * _P5 + _P3
        p_even = r2 * p_even + _P2
        p_low = r + _ONE
        y = r * p_odd + p_even
        y = r2 * y + p_low
        # pldexp: y * 2**b * 2**b * 2**b * 2**(e - 3b), b = floor(e / 4), e clamped to +-278.
        e = np.int32(min(max(fm, np.float32(-278.0)), np.float32(278.0)))
        b = e >> np.int32(2)
        c = _f32_from_bits((b + np.int32(127)) << np.int32(23))
        d = _f32_from_bits((e - np.int32(3) * b + np.int32(127)) << np.int32(23))
        out = max(((y * c) * c) * c * d, x0)
        return _ZERO if x0 < _EXP_LO else out

    @njit(nogil=True, cache=True, error_model="numpy", inline="always")
    def _plog1p_unit(u: Any) -> Any:
        """Eigen generic_plog1p(u) for u in [0, 1] (its plog sees 1 + u in [1, 2])."""
        xp1 = u + _ONE
        # pfrexp of xp1 in [1, 2]: mantissa in [0.5, 1), exponent 1 (2 for xp1 == 2).
        big = xp1 >= np.float32(2.0)
        mant = xp1 * (np.float32(0.25) if big else _HALF)
        e = np.float32(2.0) if big else _ONE
        low = mant < _SQRTHF
        x = mant - _ONE
        e = e - (_ONE if low else _ZERO)
        x = x + (mant if low else _ZERO)
        p = x * _LP3 + _LP2
        p = x * p + _LP1
        p = x * p
        q = x * _LQ3 + _LQ2
        q = x * q + _LQ1
        q = x * q + _ONE
        log1 = e * _LN2 + p / q
        return u if xp1 == _ONE else u * (log1 / (xp1 - _ONE))

    @njit(nogil=True, cache=True, error_model="numpy", inline="always")
    def _softplus(v: Any) -> Any:
        """onnxruntime's Softplus (Eigen packet path) of one float32, branch-free:
        v > 0 gives v + log1p(exp(-v)), else log1p(exp(v)) = 0 + log1p(exp(-|v|))."""
        return max(v, _ZERO) + _plog1p_unit(_pexp(-abs(v)))

    @njit(nogil=True, cache=True, error_model="numpy")
    def _softplus_loop(v: np.ndarray, out: np.ndarray) -> None:
        for i in range(v.size):
            out[i] = _softplus(v[i])

    @njit(nogil=True, cache=True, error_model="numpy", inline="always")
    def _eigen_sum(v: np.ndarray, m: int, start: int) -> Any:
        """Eigen's sum of v[:m] when v[start] is the row's first 16-byte aligned member."""
        if start + 4 > m:
            res = v[0]
            for i in range(1, m):
                res = res + v[i]
            return res
        p0 = v[start]
        p1 = v[start + 1]
        p2 = v[start + 2]
        p3 = v[start + 3]
        end = start + ((m - start) // 4) * 4
        if end - start > 4:
            q0 = v[start + 4]
            q1 = v[start + 5]
            q2 = v[start + 6]
            q3 = v[start + 7]
            end2 = start + ((m - start) // 8) * 8
            for i in range(start + 8, end2, 8):
                p0 = p0 + v[i]
                p1 = p1 + v[i + 1]
                p2 = p2 + v[i + 2]
                p3 = p3 + v[i + 3]
                q0 = q0 + v[i + 4]
                q1 = q1 + v[i + 5]
                q2 = q2 + v[i + 6]
                q3 = q3 + v[i + 7]
            p0 = p0 + q0
            p1 = p1 + q1
            p2 = p2 + q2
            p3 = p3 + q3
            if end > end2:
                p0 = p0 + v[end2]
                p1 = p1 + v[end2 + 1]
                p2 = p2 + v[end2 + 2]
                p3 = p3 + v[end2 + 3]
        res = (p0 + p2) + (p1 + p3)
        for i in range(start):
            res = res + v[i]
        for i in range(end, m):
            res = res + v[i]
        return res

    @njit(nogil=True, cache=True, error_model="numpy")
    def _members_kernel(
        x: np.ndarray,
        mean: np.ndarray,
        recip: np.ndarray,
        w1: np.ndarray,
        b1: np.ndarray,
        w2: np.ndarray,
        b2: np.ndarray,
        w3: np.ndarray,
        b3: np.ndarray,
        floor: Any,
        n_vec: int,
        loc: np.ndarray,
        scale: np.ndarray,
        tail: np.ndarray,
    ) -> None:
        """Member loc and scale (n, m) of rows x (n, 9); ``tail`` gets the raw scale of rows
        >= n_vec, whose softplus onnxruntime computes in Eigen's scalar path."""
        n = x.shape[0]
        m_count = w1.shape[0]
        h1n = w1.shape[2]
        h2n = w2.shape[2]
        xs = np.empty((N_IN, BLOCK), np.float32)
        h1 = np.empty((h1n, BLOCK), np.float32)
        h2 = np.empty((h2n, BLOCK), np.float32)
        acc = np.empty(BLOCK, np.float32)
        for s in range(0, n, BLOCK):
            nb = min(BLOCK, n - s)
            for r in range(nb):
                for k in range(N_IN):
                    xs[k, r] = (x[s + r, k] - mean[k]) * recip[k]
            for m in range(m_count):
                for j in range(h1n):
                    w = w1[m, 0, j]
                    for r in range(nb):
                        h1[j, r] = xs[0, r] * w
                    for k in range(1, N_IN):
                        w = w1[m, k, j]
                        for r in range(nb):
                            h1[j, r] = _fma(xs[k, r], w, h1[j, r])  # type: ignore[call-arg]
                    bias = b1[m, j]
                    for r in range(nb):
                        v = h1[j, r] + bias
                        h1[j, r] = max(v, _ZERO)
                for j in range(h2n):
                    w = w2[m, 0, j]
                    for r in range(nb):
                        h2[j, r] = h1[0, r] * w
                    for k in range(1, h1n):
                        w = w2[m, k, j]
                        for r in range(nb):
                            h2[j, r] = _fma(h1[k, r], w, h2[j, r])  # type: ignore[call-arg]
                    bias = b2[m, j]
                    for r in range(nb):
                        v = h2[j, r] + bias
                        h2[j, r] = max(v, _ZERO)
                for j in range(2):
                    w = w3[m, 0, j]
                    for r in range(nb):
                        acc[r] = h2[0, r] * w
                    for k in range(1, h2n):
                        w = w3[m, k, j]
                        for r in range(nb):
                            acc[r] = _fma(h2[k, r], w, acc[r])  # type: ignore[call-arg]
                    bias = b3[m, j]
                    if j == 0:
                        for r in range(nb):
                            loc[s + r, m] = acc[r] + bias
                    else:
                        for r in range(nb):
                            acc[r] = acc[r] + bias
                        for r in range(max(0, n_vec - s), nb):
                            tail[s + r - n_vec, m] = acc[r]
                        for r in range(nb):
                            acc[r] = _softplus(acc[r]) + floor
                        for r in range(nb):
                            scale[s + r, m] = acc[r]

    @njit(nogil=True, cache=True, error_model="numpy")
    def _combine_kernel(
        loc: np.ndarray,
        scale: np.ndarray,
        row0: int,
        mean: np.ndarray,
        sd: np.ndarray,
        spread: np.ndarray,
    ) -> None:
        """mean, mixture sd and spread of rows row0.. of (n, m) member arrays, as in the graph."""
        n, m = loc.shape
        tmp = np.empty(m, np.float32)
        fm = np.float32(m)
        for r in range(row0, n):
            start = (4 - (r * m) % 4) % 4
            for i in range(m):
                tmp[i] = loc[r, i]
            mu = _eigen_sum(tmp, m, start) / fm
            for i in range(m):
                d = loc[r, i] - mu
                tmp[i] = d * d
            between = _eigen_sum(tmp, m, start) / fm
            for i in range(m):
                s = scale[r, i]
                tmp[i] = s * s
            within = _eigen_sum(tmp, m, start) / fm
            mean[r] = mu
            sd[r] = np.sqrt(within + between)
            spread[r] = np.sqrt(between)


def softplus_array(v: np.ndarray) -> np.ndarray:
    """onnxruntime's Softplus of a float32 array as its packet path computes every element
    (in onnxruntime the last ``len % 4`` elements take the scalar path instead)."""
    if not HAVE_NUMBA:
        raise ModelError("numba is not installed: the Dense kernel is unavailable")
    a = np.ascontiguousarray(v, dtype=np.float32).reshape(-1)
    out = np.empty_like(a)
    _softplus_loop(a, out)
    return out.reshape(np.shape(v))


class DenseKernel:
    """The Dense ensemble's fused graph as one numba pass (see the module docstring)."""

    def __init__(self, weights: DenseWeights) -> None:
        if not HAVE_NUMBA:
            raise ModelError("numba is not installed: the Dense kernel is unavailable")
        self.weights = weights
        self._tail = _softplus_session(weights.n_members)

    def members(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Member loc and scale, float32 (n, m), of one batch of finite rows x (n, 9)."""
        w = self.weights
        xa = np.ascontiguousarray(x, dtype=np.float32)
        n = xa.shape[0]
        loc = np.empty((n, w.n_members), np.float32)
        scale = np.empty((n, w.n_members), np.float32)
        n_vec = n - n % 4
        tail = np.empty((n - n_vec, w.n_members), np.float32)
        _members_kernel(
            xa, w.mean, w.recip, w.w1, w.b1, w.w2, w.b2, w.w3, w.b3, w.floor, n_vec,
            loc, scale, tail,
        )  # fmt: skip
        if n_vec < n:  # Eigen's scalar tail: onnxruntime's own Softplus on those few values
            feed = {f"r{i}": np.ascontiguousarray(tail[:, i]) for i in range(w.n_members)}
            outs = self._tail.run(None, feed)
            for i, sp in enumerate(outs):
                scale[n_vec:, i] = np.asarray(sp, np.float32) + w.floor
        return loc, scale

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """The fused graph's outputs (mean, sd, spread (n,); member_loc, member_scale (n, m))."""
        loc, scale = self.members(x)
        n = loc.shape[0]
        mean = np.empty(n, np.float32)
        sd = np.empty(n, np.float32)
        spread = np.empty(n, np.float32)
        _combine_kernel(loc, scale, 0, mean, sd, spread)
        return {"mean": mean, "sd": sd, "spread": spread, "member_loc": loc, "member_scale": scale}

    def verify(self, fused: ort.InferenceSession, rows: int = 4099, seed: int = 0) -> int:
        """How many output values differ from the fused session on probe rows (0 = identical).

        Probe rows are standard normal in the standardised space (mapped back through the
        graph's own mean and 1/std), in two batches: ``rows`` (not a multiple of 4 by default,
        so Eigen's scalar tail is exercised) and 8 rows.
        """
        w = self.weights
        rng = np.random.default_rng(seed)
        bad = 0
        for n in (rows, 8):
            z = rng.standard_normal((n, N_IN)).astype(np.float32) * np.float32(1.5)
            x = (z / w.recip + w.mean).astype(np.float32)
            names = ["mean", "sd", "spread", "member_loc", "member_scale"]
            ref = dict(zip(names, fused.run(names, {"x": x}), strict=True))
            got = self.run(x)
            bad += sum(int(np.count_nonzero(got[k] != np.asarray(ref[k]))) for k in names)
        return bad
