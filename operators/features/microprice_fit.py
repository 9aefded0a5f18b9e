"""Fitting Stoikov's microprice (Stoikov 2018, "The micro-price") offline from a sample series.

State x = (spread in ticks, imbalance bucket). Between consecutive samples the mid either
stays (the state moves x -> y: matrix Q) or changes (by d, the state moves x -> y: matrix
T, and r(x) = E[d 1{mid changed} | x]). Then
    G1 = (1 - Q)^-1 r            the expected mid change at the next mid change
    B  = (1 - Q)^-1 T            the state after that change
    g  = G1 + B G1 + B^2 G1 + ... (`terms` terms)
and microprice = mid + g(x). Stoikov symmetrizes the data (each sample also mirrored:
imbalance 1 - I, change -d), which makes g odd in the imbalance; `symmetric=True` does so.
"""

from __future__ import annotations

import numpy as np

from operators.features.microstructure import MicropriceTable


def _states(imbalances: np.ndarray, spreads: np.ndarray, tick: float, buckets: int, spread_states: int) -> np.ndarray:
    spread_ticks = np.clip(np.rint(spreads / tick).astype(np.int64), 1, spread_states) - 1
    bucket = np.minimum((imbalances * buckets).astype(np.int64), buckets - 1)
    return spread_ticks * buckets + bucket


def fit_microprice(mids: np.ndarray, imbalances: np.ndarray, spreads: np.ndarray, *, tick: float, buckets: int = 10,
                   spread_states: int = 2, terms: int = 6, symmetric: bool = True) -> MicropriceTable:
    """A MicropriceTable from consecutive samples of mid, top imbalance and spread."""
    series = [(mids, imbalances)]
    if symmetric:
        series.append((-mids, 1.0 - imbalances))  # the mirrored market: mid changes negate
    n_states = spread_states * buckets
    stay = np.zeros((n_states, n_states))
    move = np.zeros((n_states, n_states))
    change = np.zeros(n_states)
    visits = np.zeros(n_states)
    for mid, imbalance in series:
        state = _states(imbalance, spreads, tick, buckets, spread_states)
        before, after = state[:-1], state[1:]
        d = np.diff(mid)
        moved = d != 0
        np.add.at(visits, before, 1)
        np.add.at(stay, (before[~moved], after[~moved]), 1)
        np.add.at(move, (before[moved], after[moved]), 1)
        np.add.at(change, before[moved], d[moved])
    seen = visits > 0
    scale = np.where(seen, visits, 1.0)
    q, t, r = stay / scale[:, None], move / scale[:, None], change / scale
    inverse = np.linalg.pinv(np.eye(n_states) - q)
    g1 = inverse @ r
    b = inverse @ t
    total, term = g1.copy(), g1
    for _ in range(terms - 1):
        term = b @ term
        total = total + term
    total[~seen] = 0.0
    adjustment = tuple(tuple(float(v) for v in total[s * buckets:(s + 1) * buckets]) for s in range(spread_states))
    return MicropriceTable(tick=tick, buckets=buckets, spreads=spread_states, adjustment=adjustment)
