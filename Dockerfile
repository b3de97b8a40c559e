# The demo as a container: `docker build -t phonegrade . && docker run -p 7860:7860 phonegrade`, or a Hugging Face
# Space with `sdk: docker` (docs/deploy.md). It serves the embedded default models unless PHONEGRADE_SIDE_MODEL /
# PHONEGRADE_SCRATCH_MODEL name others; corrections go to /data/corrections (a Space's persistent storage).
FROM python:3.11-slim

# torch and torchvision as pinned in .ci/constraints.txt, from PyTorch's CPU index: the default PyPI build bundles
# CUDA libraries (gigabytes) that a CPU machine never uses. For a GPU machine: --build-arg TORCH_INDEX=<a CUDA index>.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY .ci/constraints.txt /tmp/constraints.txt
RUN pip install --index-url "$TORCH_INDEX" -c /tmp/constraints.txt torch torchvision

# Spaces run the container as user 1000; /data is where a Space mounts its persistent storage (without it, the
# folder is the container's own and lost on restart).
RUN useradd --create-home --uid 1000 user && mkdir -p /data && chown user /data

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY phonegrade phonegrade
COPY hub_cards hub_cards
COPY recipes recipes
COPY data/__init__.py data/__init__.py
COPY data/models data/models
COPY data/examples data/examples
RUN pip install -c /tmp/constraints.txt . && rm -rf /src /tmp/constraints.txt

USER user
WORKDIR /home/user
ENV PHONEGRADE_CORRECTIONS_DIR=/data/corrections GRADIO_TEMP_DIR=/tmp/phonegrade-uploads
EXPOSE 7860
CMD ["phonegrade", "demo", "--host", "0.0.0.0", "--port", "7860"]
