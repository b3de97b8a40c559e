"""Named architectures built by one factory, `create_model`, like timm's: a registry of names, each parsed once into
an `ArchSpec` (`registry`), the network they all become (`net`), the backbones and WearNet they start from
(`backbones`, `wearnet`), pretrained-weight handling in one place (`pretrained`), and BatchNorm folding for
inference (`folding`).
"""

from ..errors import PretrainedWeightsError
from .backbones import BACKBONES, EFFICIENTNET_LITE, TIMM_PREFIX
from .factory import check_arch, create_model, has_pretrained_backbone
from .folding import fold_batchnorm
from .net import MeanProbabilityEnsemble, PhoneGradeNet, TrainableTop, count_parameters
from .pretrained import describe_weights, imagenet_hub_id, load_pip_weights
from .registry import ARCHS, ArchSpec, default_preprocessing, parse_arch

__all__ = ["ARCHS", "BACKBONES", "EFFICIENTNET_LITE", "TIMM_PREFIX", "ArchSpec", "MeanProbabilityEnsemble",
           "PhoneGradeNet", "PretrainedWeightsError", "TrainableTop", "check_arch", "count_parameters",
           "create_model", "default_preprocessing", "describe_weights", "fold_batchnorm", "has_pretrained_backbone",
           "imagenet_hub_id", "load_pip_weights", "parse_arch"]
