"""The separation network."""
from .config import ResUNetConfig
from .resunet import ResUNet

__all__ = ["ResUNet", "ResUNetConfig"]
