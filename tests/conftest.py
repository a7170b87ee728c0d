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
