# textcall sender: the light side of a call (aiortc, aiohttp, protobuf; no torch, no numpy stack).
#
#   docker build -f deploy/sender.Dockerfile -t textcall-sender .            (from the repository root)
#   docker run --rm -it --network host -e TEXTCALL_TOKEN=... textcall-sender \
#       --receiver https://call.example.org --ice-server turn:call.example.org:3478?transport=udp \
#       --ice-username textcall --ice-credential "$TURN_PASSWORD"
#
# --network host lets ICE offer the laptop's own addresses; behind NAT the TURN server relays.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/textcall/src
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY sender ./sender
COPY receiver ./receiver
COPY model ./model
# the base dependencies only: `textcall receive` would say it needs the receiver extra
RUN pip install . \
 && python -c "import importlib.util as u; assert u.find_spec('torch') is None, 'the sender must not pull torch'"

RUN useradd --system --uid 10001 --create-home --home-dir /home/textcall textcall
USER textcall
WORKDIR /home/textcall

ENTRYPOINT ["textcall", "send"]
CMD ["--help"]
