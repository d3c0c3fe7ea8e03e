"""FSRCNN (56, 12, 4) x2 on T91 (Dong et al., ECCV 2016): the x3 recipe at scale 2.

  python train.py --config configs/fsrcnn_x2.py --workdir DIR --config.manual_dir=DATA
"""

from jaxsr.recipes import fsrcnn_x3


def get_config():
  config = fsrcnn_x3.get_config()
  config.scale = 2
  return config
