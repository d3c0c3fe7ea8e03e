"""Training as a script: ``python train.py`` is ``jaxsr train`` (``jaxsr.commands.train``).

  python train.py --config configs/edsr_x2.py --workdir DIR [--config.FIELD=VALUE ...]

``python train.py --help`` lists the flags.
"""

from jaxsr.commands import train

if __name__ == "__main__":
  train.start(prog="train.py")
