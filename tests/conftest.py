import os

# Tests never reach a model hub: hub ids resolve through the local cache only (a lookup that
# cannot connect would otherwise retry for about 46 s). Set before huggingface_hub is imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    no_gpu = pytest.mark.skip(reason="needs CUDA")
    no_mfa = pytest.mark.skip(reason="needs Montreal Forced Aligner (conda install)")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "mfa" in item.keywords and shutil.which("mfa") is None:
            item.add_marker(no_mfa)
