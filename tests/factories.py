"""Small random weights in published layouts, shared by the tests that need a model file."""

from __future__ import annotations

import numpy as np


def fsrcnn_pytorch_state_dict(rng: np.random.Generator) -> dict[str, np.ndarray]:
  """A random FSRCNN(16, 4, 1) state dict in the FSRCNN-pytorch key layout (any scale)."""
  r = lambda *shape: rng.normal(0, 0.1, shape).astype(np.float32)  # noqa: E731
  d, s = 16, 4
  return {"first_part.0.weight": r(d, 1, 5, 5), "first_part.0.bias": r(d),
          "first_part.1.weight": r(d) + 0.25, "mid_part.0.weight": r(s, d, 1, 1),
          "mid_part.0.bias": r(s), "mid_part.1.weight": r(s) + 0.25,
          "mid_part.2.weight": r(s, s, 3, 3), "mid_part.2.bias": r(s), "mid_part.3.weight": r(s),
          "mid_part.4.weight": r(d, s, 1, 1), "mid_part.4.bias": r(d), "mid_part.5.weight": r(d),
          "last_part.weight": r(d, 1, 9, 9) * 0.3, "last_part.bias": np.full(1, 0.4, np.float32)}
