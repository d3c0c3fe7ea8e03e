"""Every field of a training config and its default; the recipes change some of them.

This module is the only home of the defaults: ``jaxsr.optim``, ``jaxsr.tasks`` and
``jaxsr.train_lib`` read the fields as attributes and fail on a missing one. Optional fields
whose value is None until set are typed placeholders, so that ``--config.FIELD=VALUE`` works on
the command line (config_flags refuses to override a plain None).
"""

import dataclasses

import ml_collections
from ml_collections import config_dict

from jaxsr import realworld
from jaxsr.models import registry


def model_fields(name: str, **changes) -> ml_collections.ConfigDict:
  """The registry's reference fields of model ``name`` (so --config.model_overrides.X works)."""
  spec = registry.model_spec(name)
  fields = {f.name: f.default for f in dataclasses.fields(spec.cls)
            if f.name not in ("scale", "parent", "name") and f.default is not dataclasses.MISSING
            and isinstance(f.default, (int, float, str, bool, tuple))}
  fields.update(spec.config)
  fields.update(changes)
  return ml_collections.ConfigDict(fields)


def base_config() -> ml_collections.ConfigDict:
  """The fields of every task, with their defaults (a PSNR-oriented ESPCN x3 run)."""
  config = ml_collections.ConfigDict()
  config.task = "psnr"  # a jaxsr.tasks.TASKS name: 'psnr' (pixel loss) or 'gan' (add_gan_fields)
  # ('realesrnet' / 'realesrgan': add_degradation_fields)
  # Model: a jaxsr.models registry name, its scale, and overrides of its reference config.
  config.model = "espcn"
  config.scale = 3
  config.model_overrides = ml_collections.ConfigDict()
  # Data: a jaxsr.data.builders name ('embedded', 't91', 'div2k', ...) and where its files are.
  config.dataset = "embedded"
  config.data_dir = config_dict.placeholder(str)  # tfds data dir ($JAXSR_TFDS_DIR or tfds' default)
  config.manual_dir = config_dict.placeholder(str)  # raw image folders ($JAXSR_DATA_DIR)
  config.hr_rescales = (1.0,)
  config.lr_patch_size = 17
  config.train_scales = ()  # e.g. (2, 3, 4): VDSR multi-scale training on HR-size patches
  config.hr_patch_size = 41  # the patch side in multi-scale mode
  config.batch_size = 16  # global, over all devices of all hosts
  # Input pipeline (jaxsr.data.pipeline): 'memory' caches this host's decoded images (small
  # sets); 'stream' reads the prepared records (or folders) from disk in bounded memory. The
  # batch of a step is a function of (seed, step) only, so a run resumes on any topology;
  # shards (0: min(batch_size, images)) must stay the same across a resumption.
  config.data = ml_collections.ConfigDict()
  config.data.mode = "memory"  # or 'stream'
  config.data.shards = 0
  # 'global': the topology-free order above. 'host': the per-host order of earlier releases,
  # with which the published recipe figures were trained (reproduces them bit for bit; memory
  # mode only; resumes on the same number of processes only).
  config.data.order = "global"
  config.data.memory_limit_mb = 4096.0  # stream mode: decoded images held per host
  config.data.shuffle_buffer = 4  # stream mode: images per shard shuffled together
  config.data.crops_per_image = 32  # stream mode: patches cut from each decoded image
  config.data.hr_folder = config_dict.placeholder(str)  # the user's own HR images (not `dataset`)
  config.data.lr_folder = config_dict.placeholder(str)  # their LR partners, matched by file stem
  # Evaluation: comma-separated set names or folders (eval.py's --datasets) and protocol.
  config.eval_datasets = "embedded"
  config.eval_data_dir = config_dict.placeholder(str)  # default $JAXSR_DATA_DIR
  config.eval_protocol = config_dict.placeholder(str)  # default: y for 1-channel, rgb for RGB models
  # Optimisation (jaxsr.optim).
  config.loss = "l1"
  config.optimizer = "adam"  # or 'sgd'
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.adam_eps = 1e-8
  config.momentum = 0.9  # SGD's
  config.learning_rate = 1e-4
  config.schedule = "constant"  # 'multistep', 'step', 'cosine', 'cosine_restarts'
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
  # Where checkpoints go; empty: <workdir>/checkpoints. Any path Orbax/tensorstore writes
  # (local or gs://), e.g. to keep checkpoints apart from a workdir on another file system.
  config.checkpoint_dir = ""
  config.eval_every_steps = 0  # 0: only at the end
  # Divergence guard (jaxsr.train_lib): at each log or checkpoint step, a mean loss above
  # divergence_factor x the median of the last divergence_window logged means (before the
  # first one: the run's first step's loss) stops the run before anything is saved. 0: off.
  config.divergence_factor = 100.0
  config.divergence_window = 10
  config.init_from = config_dict.placeholder(str)  # checkpoint dir or zoo:NAME to start from
  return config


def add_degradation_fields(config: ml_collections.ConfigDict, *,
                           enabled: bool = True) -> ml_collections.ConfigDict:
  """Adds ``config.degradation`` for the Real-ESRGAN tasks (in place; returns ``config``).

  ``degradation.enabled`` (False: paired LR/HR data, the pipeline's LR is used as is) and every
  field of ``jaxsr.realworld.RealESRGANOptions`` with its default (Real-ESRGAN x4plus's
  recipe); see ``jaxsr.tasks.realesrgan``.
  """
  config.degradation = ml_collections.ConfigDict(
      {"enabled": enabled, **dataclasses.asdict(realworld.RealESRGANOptions()),
       # Which losses see the USM-sharpened HR (with sharpen_target on): BasicSR's l1_gt_usm,
       # percep_gt_usm, gan_gt_usm and their Real-ESRGAN defaults.
       "sharpen_pixel_target": True, "sharpen_perceptual_target": True,
       "sharpen_gan_target": False})
  return config


def add_gan_fields(config: ml_collections.ConfigDict, *,
                   discriminator: str = "esrgan_discriminator") -> ml_collections.ConfigDict:
  """Turns ``config`` into a GAN run: ``task = 'gan'`` and the GAN-only fields (in place).

  The defaults are ESRGAN's (``1e-2 * L1 + 1 * L1(VGG19 conv5_4) + 5e-3 * RaGAN``); see
  ``jaxsr.tasks.gan`` for what each field does. Returns ``config``.
  """
  config.task = "gan"
  # Discriminator: a registry name and its reference fields.
  config.d_model = discriminator
  config.d_model_overrides = model_fields(discriminator)
  # Losses (the pixel criterion is config.loss).
  config.gan_type = "ragan"  # 'vanilla', 'lsgan', 'hinge', 'ragan'
  config.pixel_weight = 1e-2
  config.perceptual_weight = 1.0
  config.perceptual_layers = {"conv5_4": 1.0}  # VGG19 layer: weight ('relu5_4' after ReLU)
  config.perceptual_criterion = "l1"  # or 'l2'
  config.style_weight = 0.0
  config.style_layers = {}
  config.adversarial_weight = 5e-3
  config.vgg_weights = config_dict.placeholder(str)  # a .npz from jaxsr.convert.vgg; None: $JAXSR_VGG19
  # The discriminator's optimizer: the generator's fields (optimizer, learning_rate, schedule,
  # ...) with the ones set here overriding them, e.g. config.d_optimizer.learning_rate.
  config.d_optimizer = ml_collections.ConfigDict()
  return config
