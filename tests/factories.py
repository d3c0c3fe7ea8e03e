"""Shared test fixtures: a small variant of every registered SR model, and small random weights
in published layouts for the tests that need a model file."""

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


# A small variant of every registered SR model (few blocks and features): name -> overrides.
TINY_MODELS = {
    'srcnn': dict(n1=8, n2=4),
    'srcnn_915': dict(n1=8, n2=4),
    'srcnn_935': dict(n1=8, n2=4),
    'srcnn_955': dict(n1=8, n2=4),
    'fsrcnn': dict(d=8, s=4, m=1),
    'fsrcnn_s': dict(d=8, s=4, m=1),
    'espcn': dict(n1=8, n2=4),
    'vdsr': dict(depth=3, num_feat=8),
    'edsr': dict(num_feat=8, num_block=1),
    'edsr_baseline': dict(num_feat=8, num_block=1),
    'rcan': dict(num_feat=8, num_group=1, num_block=1, reduction=4),
    'srresnet': dict(num_feat=8, num_block=1),
    'msrresnet': dict(num_feat=8, num_block=1),
    'rrdbnet': dict(num_feat=8, num_block=1, num_grow_ch=4),
    'realcugan': dict(num_feat=8),
    'waifu2x_cunet': dict(num_feat=8),
    'waifu2x_upconv7': dict(features=(4, 4)),
    'srvgg_compact': dict(num_feat=8, num_conv=2),
    'swinir': dict(embed_dim=12, depths=(1,), num_heads=(2,), window_size=4),
    'swinir_light': dict(embed_dim=12, depths=(1,), num_heads=(2,), window_size=4),
    'swinir_real': dict(embed_dim=12, depths=(1,), num_heads=(2,), window_size=4, num_feat=8),
}
