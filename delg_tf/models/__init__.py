"""DELG model: backbones, heads and the DelgModel."""

from delg_tf.models.arcface import ArcFace
from delg_tf.models.attention import Attention
from delg_tf.models.autoencoder import Autoencoder
from delg_tf.models.backbones import BACKBONES, get_backbone
from delg_tf.models.delg_model import DelgModel
from delg_tf.models.gem_pooling import GeMPooling
from delg_tf.models.global_head import GlobalHead
from delg_tf.models.local_head import LocalHead
from delg_tf.models.receptive_field import ReceptiveField, compute_receptive_field

__all__ = [
    "BACKBONES",
    "ArcFace",
    "Attention",
    "Autoencoder",
    "DelgModel",
    "GeMPooling",
    "GlobalHead",
    "LocalHead",
    "ReceptiveField",
    "compute_receptive_field",
    "get_backbone",
]
