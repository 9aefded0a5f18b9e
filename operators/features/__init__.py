"""Deep-learning features of a synced book, its deltas and its trades: pure, float64, deterministic.

Floats live only here; the exact decimal text stays the identity everywhere else. The
engine (`engine.FeatureEngine`) consumes the normalized events book_sync emits, so the
live collect flow and the offline dataset builder compute the very same rows.
"""
