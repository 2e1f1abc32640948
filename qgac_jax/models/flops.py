"""FLOPs of a JAX function counted from its jaxpr: convolutions and matrix products, on any backend.

Why not XLA's cost analysis: on GPU (jaxlib 0.11) `lower(...).cost_analysis()`
returns None, and compiled GPU programs hand convolutions to cuDNN custom
calls that the analysis does not count. The jaxpr is the same on every
backend, so utilisation figures compare across CPU, GPU and TPU. Elementwise
work is not counted (it is bandwidth, not FLOPs, that bounds it): these are
the "model FLOPs" utilisation is usually quoted against.
"""

from __future__ import annotations

import math
from typing import Any

import jax


def _conv_flops(eqn) -> float:
    out = eqn.outvars[0].aval
    rhs = eqn.invars[1].aval  # kernel
    dn = eqn.params["dimension_numbers"]
    kernel_spatial = math.prod(rhs.shape[d] for d in dn.rhs_spec[2:])
    in_per_group = rhs.shape[dn.rhs_spec[1]]  # input features per group, as stored in the kernel
    return 2.0 * math.prod(out.shape) * kernel_spatial * in_per_group


def _dot_flops(eqn) -> float:
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    lhs = eqn.invars[0].aval
    contracted = math.prod(lhs.shape[d] for d in lhs_contract)
    return 2.0 * math.prod(eqn.outvars[0].aval.shape) * contracted


def _sub_jaxprs(eqn):
    """The jaxprs nested in an equation's parameters (jit, custom_vjp, remat, scan, cond branches)."""
    for value in eqn.params.values():
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(v, "eqns"):  # a Jaxpr
                yield v
            elif hasattr(getattr(v, "jaxpr", None), "eqns"):  # a ClosedJaxpr
                yield v.jaxpr


def jaxpr_flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif name == "dot_general":
            total += _dot_flops(eqn)
        else:
            repeat = int(eqn.params.get("length", 1)) if name == "scan" else 1
            for sub in _sub_jaxprs(eqn):
                total += repeat * jaxpr_flops(sub)
    return total


def count_flops(fn, *args: Any, **kwargs: Any) -> float:
    """Convolution + matmul FLOPs of one call of `fn(*args, **kwargs)` (traced with shapes only, nothing runs)."""
    closed = jax.make_jaxpr(fn)(*args, **kwargs)
    return jaxpr_flops(closed.jaxpr)
