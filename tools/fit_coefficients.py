#!/usr/bin/env python3
"""Fits the polynomial coefficients used by kernels/src/gelu_formula.h.

Weighted least squares on Chebyshev nodes (relative error), evaluated with mpmath at 50 digits,
then rounded to float32. Prints the coefficients as C++ hex-float literals and the worst relative
error of the rounded polynomial, so the constants in the kernel can be reproduced:

    python3 tools/fit_coefficients.py
"""
import struct

import mpmath as mp

mp.mp.dps = 50


def to_f32(v):
    return struct.unpack("<f", struct.pack("<f", float(v)))[0]


def fit(func, lo, hi, degree, nodes=400):
    xs = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(0.5)) / nodes) for k in range(nodes)]
    rows = []
    rhs = []
    for x in xs:
        f = func(x)
        rows.append([x**j / f for j in range(degree + 1)])
        rhs.append(mp.mpf(1))
    a = mp.matrix(rows)
    b = mp.matrix(rhs)
    coef = mp.qr_solve(a, b)[0]
    return [coef[j] for j in range(degree + 1)]


def refit_rounded(func, lo, hi, degree):
    # Round the highest-order coefficients first, refitting the rest each time, so the rounding
    # error of one coefficient is absorbed by the lower ones.
    fixed = {}
    for j in range(degree, -1, -1):
        def residual(x, fixed=dict(fixed)):
            return func(x) - sum(c * x**k for k, c in fixed.items())
        free = [k for k in range(degree + 1) if k not in fixed]
        nodes = 400
        xs = [(lo + hi) / 2 + (hi - lo) / 2 * mp.cos(mp.pi * (k + mp.mpf(0.5)) / nodes) for k in range(nodes)]
        rows = [[x**k / func(x) for k in free] for x in xs]
        rhs = [residual(x) / func(x) for x in xs]
        sol = mp.qr_solve(mp.matrix(rows), mp.matrix(rhs))[0]
        fixed[j] = mp.mpf(to_f32(sol[free.index(j)]))
    coef = [fixed[k] for k in range(degree + 1)]
    worst = max(abs(sum(c * x**k for k, c in enumerate(coef)) / func(x) - 1)
                for x in mp.linspace(lo, hi, 3000))
    return [to_f32(c) for c in coef], worst


def phi_scaled(q):
    # H(q) = (1 + a/2) * Phi(-a) * exp(a^2/2) with a = 2(1+q)/(1-q), i.e. q = (a-2)/(a+2).
    a = 2 * (1 + q) / (1 - q)
    return (1 + a / 2) * mp.erfc(a / mp.sqrt(2)) / 2 * mp.exp(a * a / 2)


def expm1_over_r(r):
    return mp.expm1(r) / r if r != 0 else mp.mpf(1)


def show(name, coef, worst):
    print(f"// {name}: worst relative error {float(worst):.3e}")
    for j, c in enumerate(coef):
        print(f"  c{j} = {c.hex()}f  // {c!r}")


if __name__ == "__main__":
    a_max = mp.mpf(14.5)
    q_max = (a_max - 2) / (a_max + 2)
    coef, worst = refit_rounded(phi_scaled, mp.mpf(-1), q_max, 10)
    show(f"H(q), degree 10, q in [-1, {float(q_max):.6f}]", coef, worst)
    half_ln2 = mp.log(2) / 2 + mp.mpf(2) ** -12
    coef, worst = refit_rounded(expm1_over_r, -half_ln2, half_ln2, 5)
    show("(exp(r)-1)/r, degree 5", coef, worst)
