"""PixTools: a self-hosted asynchronous image-processing service."""

__version__ = "0.1.0"
