"""jaxsr.optim: the schedules, VDSR's adjustable clipping and the optimizer chain."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxsr import optim
from jaxsr.errors import InputError
from jaxsr.recipes import test as test_recipe


def _config(**overrides):
  config = test_recipe.get_config()
  config.update(overrides)
  return config


def test_schedules():
  schedule = optim.make_schedule(_config(schedule="multistep", lr_boundaries=(10, 20),
                                         learning_rate=1.0, lr_decay_factor=0.5))
  assert [float(schedule(s)) for s in (0, 10, 25)] == [1.0, 0.5, 0.25]
  schedule = optim.make_schedule(_config(schedule="cosine_restarts", lr_periods=(10, 10),
                                         learning_rate=1.0, num_train_steps=20))
  assert float(schedule(0)) == 1.0 and float(schedule(10)) == 1.0 and float(schedule(5)) < 0.6
  schedule = optim.make_schedule(_config(schedule="step", lr_decay_every=5, lr_decay_factor=0.1,
                                         learning_rate=1.0))
  assert [float(schedule(s)) for s in (4, 5, 10)] == pytest.approx([1.0, 0.1, 0.01])
  schedule = optim.make_schedule(_config(schedule="cosine", learning_rate=1.0, lr_end=0.1,
                                         num_train_steps=10, warmup_steps=4))
  assert [float(schedule(s)) for s in (0, 2, 4)] == pytest.approx([0.0, 0.5, 1.0])
  assert float(schedule(14)) == pytest.approx(0.1)
  with pytest.raises(InputError, match="config.schedule: unknown value 'bogus'"):
    optim.make_schedule(_config(schedule="bogus"))


def test_adjustable_clipping_bounds_each_gradient_by_theta_over_lr():
  clip = optim.adjustable_gradient_clipping(0.01, lambda step: 0.1)
  g, _ = clip.update({"w": np.array([5.0, -5.0, 0.05])}, clip.init(None))
  np.testing.assert_allclose(np.asarray(g["w"]), [0.1, -0.1, 0.05])


def test_optimizer_chain():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([4.0, 0.0])}
  # SGD without momentum, weight decay before it, global-norm clipping first.
  tx, schedule = optim.make_optimizer(_config(optimizer="sgd", momentum=0.0, learning_rate=0.5,
                                              weight_decay=0.25, grad_clip_norm=2.0))
  updates, _ = tx.update(grads, tx.init(params), params)
  expected = -0.5 * (np.array([2.0, 0.0]) + 0.25 * np.array([1.0, -2.0]))
  np.testing.assert_allclose(np.asarray(updates["w"]), expected, rtol=1e-6)
  assert float(schedule(0)) == 0.5
  # Adam with the config's betas and epsilon equals optax.adam with them.
  tx, _ = optim.make_optimizer(_config(adam_b1=0.5, adam_b2=0.9, adam_eps=1e-3))
  ref = optax.adam(1e-3, b1=0.5, b2=0.9, eps=1e-3)
  got, _ = tx.update(grads, tx.init(params), params)
  want, _ = ref.update(grads, ref.init(params), params)
  np.testing.assert_allclose(np.asarray(got["w"]), np.asarray(want["w"]), rtol=1e-6)
  with pytest.raises(InputError, match="config.optimizer: unknown value 'lamb'"):
    optim.make_optimizer(_config(optimizer="lamb"))
