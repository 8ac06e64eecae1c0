# The CPU trainer image: `torchrun -m kubetune.runtime --spec ... --workspace ...` on CPU nodes.
# Build from the repository root:
#   docker build -f images/trainer.Dockerfile -t REGISTRY/trainer:VERSION .
FROM python:3.11.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_DISABLE_TELEMETRY=1

WORKDIR /opt/kubetune
COPY pyproject.toml README.md constraints.txt ./
COPY kubetune ./kubetune
# torch pinned to the version the package is tested with, as a CPU build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install -c constraints.txt . \
 && python -c "import kubetune.runtime.run, kubetune.trainer.__main__, torch.distributed.run"

WORKDIR /workspace
CMD ["torchrun", "-m", "kubetune.runtime", "--help"]
