"""The embedded-default run behind the README's main command: a few minutes on 2 CPU cores.

ESPCN x3 on the embedded default images (colour photographs that scikit-image ships; no
files needed), Y channel, MSE, Adam with cosine decay; evaluated on the embedded test split
with protocol y, ending with the table and workdir/comparison.png.
"""

from jaxsr.recipes import common


def get_config():
  config = common.base_config()
  config.model = "espcn"
  config.model_overrides = common.model_fields("espcn")
  config.scale = 3
  config.dataset = "embedded"
  config.hr_rescales = (1.0, 0.8, 0.6)
  config.eval_datasets = "embedded"
  config.eval_protocol = "y"
  config.lr_patch_size = 17
  config.batch_size = 16
  config.loss = "mse"
  config.learning_rate = 1e-3
  config.schedule = "cosine"
  config.lr_end = 1e-5
  config.num_train_steps = 15_000
  config.log_every_steps = 1000
  config.checkpoint_every_steps = 5000
  config.eval_every_steps = 5000
  # The published figures (README "Results") were trained with the per-host sample order of
  # earlier releases; keeping it makes this recipe reproduce them bit for bit (a run then resumes
  # only on the same number of processes: README "Data").
  config.data.order = "host"
  return config
