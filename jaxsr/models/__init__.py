"""jaxsr model zoo: pure ``flax.linen`` super-resolution models.

Contract: every SR model maps LR ``[N, h, w, C]`` float32 in [0, 1] to SR
``[N, s*h, s*w, C]`` (``model.apply(variables, lr)``; ``train=True`` only
matters for models with batch normalisation). Build models by name with
:func:`get_model`; see :func:`list_models` and ``python -m jaxsr.models --list``.
Every leaf layer declares a :class:`SpatialRule` (see :func:`spatial_rule_of`),
which bucketed inference (``jaxsr.inference``) needs of a custom layer too.
"""

from jaxsr.models.common import depth_to_space
from jaxsr.models.common import pixel_shuffle_permutation
from jaxsr.models.common import space_to_depth
from jaxsr.models.common import spatial_rule_of
from jaxsr.models.common import SpatialRule
from jaxsr.models.discriminators import SRGANDiscriminator
from jaxsr.models.discriminators import UNetDiscriminatorSN
from jaxsr.models.discriminators import VGGStyleDiscriminator
from jaxsr.models.edsr import EDSR
from jaxsr.models.espcn import ESPCN
from jaxsr.models.fsrcnn import FSRCNN
from jaxsr.models.rcan import RCAN
from jaxsr.models.realcugan import RealCUGAN
from jaxsr.models.registry import count_params
from jaxsr.models.registry import describe
from jaxsr.models.registry import get_model
from jaxsr.models.registry import list_models
from jaxsr.models.registry import model_spec
from jaxsr.models.rrdbnet import RRDBNet
from jaxsr.models.srcnn import SRCNN
from jaxsr.models.srresnet import MSRResNet
from jaxsr.models.srresnet import SRResNet
from jaxsr.models.srvgg import SRVGGNetCompact
from jaxsr.models.swinir import SwinIR
from jaxsr.models.vdsr import VDSR
from jaxsr.models.vgg import VGG19
from jaxsr.models.waifu2x import CUNet
from jaxsr.models.waifu2x import UpConv7

__all__ = [
    'CUNet', 'EDSR', 'ESPCN', 'FSRCNN', 'MSRResNet', 'RCAN', 'RRDBNet', 'RealCUGAN', 'SRCNN',
    'SRGANDiscriminator', 'SRResNet', 'SRVGGNetCompact', 'SpatialRule', 'SwinIR', 'UNetDiscriminatorSN', 'UpConv7', 'VDSR', 'VGG19', 'VGGStyleDiscriminator',
    'count_params',
    'depth_to_space', 'describe', 'get_model', 'list_models', 'model_spec',
    'pixel_shuffle_permutation', 'space_to_depth', 'spatial_rule_of',
]
