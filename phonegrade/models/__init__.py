"""Named architectures built by one factory, `create_model`, like timm's: a registry of names (`factory`), the
network they all become (`net`), the backbones and WearNet they start from (`backbones`, `wearnet`), pretrained-weight
handling in one place (`pretrained`), and BatchNorm folding for inference (`folding`).
"""

from ..errors import PretrainedWeightsError
from .backbones import BACKBONES, EFFICIENTNET_LITE, TIMM_PREFIX, default_preprocessing
from .factory import ARCHS, check_arch, create_model, has_pretrained_backbone
from .folding import fold_batchnorm
from .net import MeanProbabilityEnsemble, PhoneGradeNet, TrainableTop, count_parameters
from .pretrained import describe_weights, imagenet_hub_id, load_pip_weights

__all__ = ["ARCHS", "BACKBONES", "EFFICIENTNET_LITE", "TIMM_PREFIX", "MeanProbabilityEnsemble", "PhoneGradeNet",
           "PretrainedWeightsError", "TrainableTop", "check_arch", "count_parameters", "create_model",
           "default_preprocessing", "describe_weights", "fold_batchnorm", "has_pretrained_backbone",
           "imagenet_hub_id", "load_pip_weights"]
