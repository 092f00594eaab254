"""Tests that re-derive the reference implementations' computations and compare ours with them."""
