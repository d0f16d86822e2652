"""Audio embedders for genre retrieval and FAD: ``get_embedder(name, ...)``, ``embed_files``."""
from .base import EMBEDDERS, embed_files, get_embedder

__all__ = ["EMBEDDERS", "embed_files", "get_embedder"]
