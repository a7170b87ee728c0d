"""Importing the scorers and the eval command loads no model framework (fast --help, no fetch)."""
import subprocess
import sys


def test_scorer_and_eval_modules_import_without_torch_transformers_or_onnxruntime():
    code = ("import sys\n"
            "import kani_adapt.scorers.asr, kani_adapt.scorers.similarity, kani_adapt.scorers.quality\n"
            "import kani_adapt.scorers.langid, kani_adapt.scorers.text, kani_adapt.scorers.failures\n"
            "import kani_adapt.eval.stats, kani_adapt.eval.evalset, kani_adapt.cli.eval_command\n"
            "print(sorted(m for m in ('torch', 'transformers', 'onnxruntime', 'speechmos', 'jiwer')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
