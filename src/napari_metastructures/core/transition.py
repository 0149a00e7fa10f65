"""Old home of the noise transition matrices; they live in :mod:`.noise.transition` now."""
from .noise.transition import empirical_transition_matrix, matrix_rank, noise_summary, transition_matrix

__all__ = ["empirical_transition_matrix", "matrix_rank", "noise_summary", "transition_matrix"]
