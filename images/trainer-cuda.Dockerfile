# The CUDA trainer image (the default when a job asks for GPUs): the same trainer on the PyTorch
# CUDA runtime image, whose torch is the pinned version.
# Build from the repository root:
#   docker build -f images/trainer-cuda.Dockerfile -t REGISTRY/trainer:VERSION-cuda .
FROM pytorch/pytorch:2.13.0-cuda13.0-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/kubetune
COPY pyproject.toml README.md constraints.txt ./
COPY kubetune ./kubetune
# constraints.txt pins torch==2.13.0, which the base image already has: pip keeps its CUDA build.
RUN pip install -c constraints.txt torch==2.13.0 . \
 && python -c "import kubetune.runtime.run, kubetune.trainer.__main__, torch.distributed.run"

WORKDIR /workspace
CMD ["torchrun", "-m", "kubetune.runtime", "--help"]
