"""The data-preparation packages stay cheap to import."""
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / 'mmseg_repmlp'
# The parent package registers models (torch, mmseg); stand in for it so
# that only the data packages themselves are imported.
SCRIPT = f'''
import sys, types
parent = types.ModuleType('mmseg_repmlp')
parent.__path__ = [{str(PACKAGE)!r}]
sys.modules['mmseg_repmlp'] = parent
import mmseg_repmlp.synthetic, mmseg_repmlp.dataset_converters
print(sorted(m for m in ('torch', 'mmseg', 'mmcv', 'mmengine')
             if m in sys.modules))
'''


def test_no_torch_or_mmseg_at_import():
    out = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == '[]'
