# textcall receiver: the talking-head generator behind WebRTC signaling, on an NVIDIA GPU.
#
#   docker build -f deploy/receiver.Dockerfile -t textcall-receiver .        (from the repository root)
#   docker run --gpus all --network host -v textcall-data:/data \
#       -v /etc/textcall/tokens.txt:/run/secrets/textcall_tokens:ro textcall-receiver
#
# deploy/compose.yaml runs it with coturn (TURN) and Caddy (TLS). See deploy/README.md.
#
# The base only brings the CUDA driver plumbing: torch's CUDA wheel (pulled by the receiver extra)
# carries its own CUDA runtime libraries. The host needs an NVIDIA driver and the NVIDIA Container
# Toolkit. The embedded weights in model/weights are package data: `pip install .` ships them.
FROM nvidia/cuda:12.8.1-base-ubuntu24.04

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/textcall/venv \
    PATH=/opt/textcall/venv/bin:$PATH

# python, PortAudio for --play (harmless without a sound card), CA certificates for https
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv libportaudio2 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/textcall/src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY sender ./sender
COPY receiver ./receiver
COPY model ./model
RUN python3 -m venv "$VIRTUAL_ENV" \
 && pip install ".[receiver]" \
 && python -c "from model.talking_head import WEIGHTS_DIR as w; assert any(w.glob('*/model.safetensors')), f'no embedded weights in {w}: run python -m model.release first'"

# An unprivileged user owns only its data folder.
RUN useradd --system --uid 10001 --create-home --home-dir /home/textcall textcall \
 && mkdir -p /data && chown textcall:textcall /data
USER textcall
WORKDIR /home/textcall
VOLUME ["/data"]
EXPOSE 8765

HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8765/health', timeout=4).status == 200 else 1)"]

# Loopback only: TLS and the outside world come through the reverse proxy (compose.yaml). Tokens
# come from a secret file; TURN URL and credentials from the environment or --ice-config.
ENTRYPOINT ["textcall", "receive"]
CMD ["--host", "127.0.0.1", "--port", "8765", "--model", "default", "--device", "cuda", "--tokens", "/run/secrets/textcall_tokens", "--out", "/data/recordings"]
