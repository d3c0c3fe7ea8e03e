"""Fields every training config has, with their defaults (the recipes override them)."""

import ml_collections
from ml_collections import config_dict


def model_fields(name: str, **changes) -> ml_collections.ConfigDict:
  """The registry's reference fields of model ``name`` (so --config.model_overrides.X works)."""
  from jaxsr.models import registry  # pylint: disable=g-import-not-at-top

  import dataclasses  # pylint: disable=g-import-not-at-top

  spec = registry.model_spec(name)
  fields = {f.name: f.default for f in dataclasses.fields(spec.cls)
            if f.name not in ("scale", "parent", "name") and f.default is not dataclasses.MISSING
            and isinstance(f.default, (int, float, str, bool, tuple))}
  fields.update(spec.config)
  fields.update(changes)
  return ml_collections.ConfigDict(fields)


def base_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "psnr"  # 'psnr' (pixel loss) or 'gan' (jaxsr.gan_lib)
  # Model: a jaxsr.models registry name, its scale, and overrides of its reference config.
  config.model = "espcn"
  config.scale = 3
  config.model_overrides = ml_collections.ConfigDict()
  # Data: a jaxsr.data.builders name ('embedded', 't91', 'div2k', ...) and where its files are.
  config.dataset = "embedded"
  # Optional paths are placeholders (None until set) so that --config.FIELD=VALUE works.
  config.data_dir = config_dict.placeholder(str)  # tfds data dir ($JAXSR_TFDS_DIR or tfds' default)
  config.manual_dir = config_dict.placeholder(str)  # raw image folders ($JAXSR_DATA_DIR)
  config.hr_rescales = (1.0,)
  config.lr_patch_size = 17
  config.train_scales = ()  # e.g. (2, 3, 4): VDSR multi-scale training on HR-size patches
  config.hr_patch_size = 41  # the patch side in multi-scale mode
  config.batch_size = 16  # global, over all devices of all hosts
  # Evaluation: comma-separated set names or folders (eval.py's --datasets) and protocol.
  config.eval_datasets = "embedded"
  config.eval_data_dir = config_dict.placeholder(str)  # default $JAXSR_DATA_DIR
  config.eval_protocol = config_dict.placeholder(str)  # default: y for 1-channel, rgb for RGB models
  # Optimisation.
  config.loss = "l1"
  config.optimizer = "adam"
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.learning_rate = 1e-4
  config.schedule = "constant"
  config.lr_boundaries = ()
  config.lr_decay_factor = 0.5
  config.lr_decay_every = 0
  config.lr_periods = ()
  config.lr_end = 0.0
  config.warmup_steps = 0
  config.grad_clip_norm = 0.0
  config.grad_clip_theta = 0.0  # VDSR's adjustable clipping
  config.weight_decay = 0.0
  config.ema_decay = 0.0
  config.compute_dtype = "float32"  # 'bfloat16' on GPU/TPU
  config.num_train_steps = 1000
  config.seed = 0
  # Bookkeeping.
  config.batches_per_transfer = 8  # host->device transfers carry this many steps' batches
  config.log_every_steps = 100
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.eval_every_steps = 0  # 0: only at the end
  config.init_from = config_dict.placeholder(str)  # a checkpoint dir to start the parameters from
  return config
