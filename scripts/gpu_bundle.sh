#!/usr/bin/env bash
# Pack owbench's dependencies for a GPU machine that cannot download anything and already has Python 3.12
# with a CUDA torch (this workplace's lent machines): cp312 wheels of the versions installed in .venv,
# unpacked and trimmed to fit a 64 MB transfer, into .whl/site.tar.xz, and the glvnd EGL loaders into .gl/.
# Ray (77 MB) does not fit; its sweep section then records the missing-extra error. How the first GPU run
# used it: docs/performance.md, "First GPU run".
#
#   scripts/gpu_bundle.sh          # here, once; then on the GPU machine (carry .whl and .gl):
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig; mkdir -p /tmp/site
#   tar -xJf .whl/site.tar.xz -C /tmp/site && PYTHONPATH=/tmp/site PYTHON=python3 scripts/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
packages="zarr numcodecs donfig google-crc32c dm-control mujoco metaworld gymnasium farama-notifications faiss-cpu
          dm-env dm-tree pyopengl glfw numpy"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in $packages; do
  version=$("$py" -m pip show "$name" | sed -n 's/^Version: //p')
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$work/wheels" "$name==$version"
done
mkdir "$work/site"
for wheel in "$work"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$work/site"; done
# what no owbench task opens: dm_control's locomotion (and its labmaze) and dog assets, tests, caches
rm -rf "$work"/site/dm_control/{locomotion,blender,suite/dog_assets,suite/all_domains.png}
find "$work/site" -type d \( -name tests -o -name __pycache__ \) -prune -exec rm -rf {} +
# Meta-World's meshes: keep the files the smoke suite's tasks open (traced here), drop the rest (~35 MB)
if command -v strace >/dev/null; then
  MUJOCO_GL=egl strace -f -e trace=openat -o "$work/trace" "$py" -c "
from collectors.envs.registry import make
for env_id in ('mw_drawer-close', 'mw_button-press'):
    make(env_id, image_size=32).reset()" >/dev/null 2>&1
  "$py" - "$work" <<'EOF'
import os, re, sys
work = sys.argv[1]
opened = {os.path.normpath(m) for m in re.findall(r'site-packages/(metaworld/assets/[^"]+)', open(f"{work}/trace").read())}
root = f"{work}/site"
for folder, _, files in os.walk(f"{root}/metaworld/assets"):
    for f in files:
        path = os.path.join(folder, f)
        if os.path.relpath(path, root) not in opened:
            os.remove(path)
EOF
fi
mkdir -p .whl .gl
tar -I 'xz -9 -T2' -cf .whl/site.tar.xz -C "$work/site" .
o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
mkdir -p /tmp/amd64/partial && apt-get $o update >/dev/null
(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || printf '/.whl/\n/.gl/\n' >>.git/info/exclude
du -sh .whl/site.tar.xz .gl
