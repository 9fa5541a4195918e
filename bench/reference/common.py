"""What the PyTorch references share: the BLAS torch really loaded, ferry's char vocabulary, ferry's AdamW."""
import ctypes
import glob
import os
import re

import torch

FERRY_SPECIALS = 1  # <|endoftext|> is id 0; characters follow in code point order
FERRY_BYTE_TOKENS = 256


def blas_in_use():
    """Which BLAS library this process mapped (Debian's torch links libblas.so.3, picked by update-alternatives)."""
    torch.ones(64, 64) @ torch.ones(64, 64)  # make sure the BLAS is loaded
    with open('/proc/self/maps') as maps:
        paths = sorted({line.split()[-1] for line in maps if re.search(r'blas|mkl|blis|atlas', line.split()[-1], re.I)})
    joined = ' '.join(paths).lower()
    if 'openblas' in joined:
        kind = 'openblas'
    elif 'mkl' in joined:
        kind = 'mkl'
    elif 'blis' in joined:
        kind = 'blis'
    elif 'atlas' in joined:
        kind = 'atlas'
    elif '/blas/' in joined:
        kind = 'reference'  # Debian's netlib BLAS: several times slower, not a fair comparison
    else:
        kind = 'unknown'
    alternatives = glob.glob('/etc/alternatives/libblas.so.3-*')
    return {
        'kind': kind,
        'loaded': paths,
        'alternative': os.path.realpath(alternatives[0]) if alternatives else None,
        'threads': openblas_threads(paths),
        'fair': kind in ('openblas', 'mkl', 'blis'),
    }


def openblas_threads(paths):
    """OpenBLAS's own thread pool size (separate from torch's intra-op threads), or None for another BLAS."""
    for path in paths:
        if 'libopenblas' in path:
            try:
                return ctypes.CDLL(path).openblas_get_num_threads()
            except (OSError, AttributeError):
                return None
    return None


def ferry_char_vocabulary(text):
    """ferry's char tokenizer ids: 0 is <|endoftext|>, then the corpus's characters by code point, then 256 byte tokens."""
    chars = sorted(set(text))
    ids = {char: FERRY_SPECIALS + index for index, char in enumerate(chars)}
    return ids, FERRY_SPECIALS + len(chars) + FERRY_BYTE_TOKENS


def ferry_adamw(model, lr, weight_decay=0.1, betas=(0.9, 0.99), eps=1e-8):
    """torch's AdamW with ferry's decay rule (src/train/optimizer.ts): matrices decay, biases, norms and embeddings do not."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        is_embedding = isinstance(dict(model.named_modules()).get(name.rsplit('.', 1)[0]), torch.nn.Embedding)
        (decay if parameter.dim() >= 2 and not is_embedding else no_decay).append(parameter)
    groups = [{'params': decay, 'weight_decay': weight_decay}, {'params': no_decay, 'weight_decay': 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
