"""Notebook outputs do not depend on the Numba thread count or cache state."""
