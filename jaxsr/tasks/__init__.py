"""Training tasks: what ``jaxsr.train_lib``'s loop trains, chosen by ``config.task``.

  * ``psnr``: one model and a pixel loss (``jaxsr.tasks.psnr.PSNRTask``).
  * ``gan``: a generator against a discriminator with feature and adversarial losses
    (``jaxsr.tasks.gan.GANTask``).
  * ``realesrnet`` / ``realesrgan``: ``psnr`` / ``gan`` on LR inputs drawn on device by the
    Real-ESRGAN degradation (``jaxsr.tasks.realesrgan``).

``make_task(config)`` builds the one named by ``config.task``; every task follows the
``jaxsr.tasks.base.Task`` interface.
"""

from __future__ import annotations

from typing import TYPE_CHECKING


from jaxsr.errors import InputError
from jaxsr.tasks.base import Task
from jaxsr.tasks.base import TrainState
from jaxsr.tasks.base import config_fields_required
from jaxsr.tasks.gan import GANState
from jaxsr.tasks.gan import GANTask
from jaxsr.tasks.psnr import PSNRTask
from jaxsr.tasks.realesrgan import RealESRGANTask
from jaxsr.tasks.realesrgan import RealESRNetTask

if TYPE_CHECKING:  # annotations only: importing the package needs no ml_collections
  import ml_collections

__all__ = ["GANState", "GANTask", "PSNRTask", "RealESRGANTask", "RealESRNetTask", "TASKS", "Task",
           "TrainState", "make_task"]

TASKS: dict[str, type[Task]] = {"psnr": PSNRTask, "gan": GANTask,
                                 "realesrnet": RealESRNetTask, "realesrgan": RealESRGANTask}


def make_task(config: ml_collections.ConfigDict) -> Task:
  """The task ``TASKS[config.task]`` built from ``config``.

  Raises:
    InputError: an unknown ``config.task``, a field missing from the config, or any invalid
      setting the task checks.
  """
  with config_fields_required():
    name = config.task
    if name not in TASKS:
      raise InputError(f"config.task: unknown value {name!r}; expected one of "
                       f"{', '.join(sorted(TASKS))}")
    return TASKS[name](config)
