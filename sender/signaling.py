"""The sender's side of signaling: POST the SDP offer, get the answer."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp
from aiortc import RTCSessionDescription

from protocol.rtc import SPARSE_CONSENT_INTERVAL


class SignalingError(Exception):
    """The receiver refused or could not be reached. ``status`` is the HTTP status, 0 if none."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status >= 500


async def exchange_offer(
    receiver_url: str,
    token: str,
    offer: RTCSessionDescription,
    *,
    timeout: float = 15.0,
    tls_ca: Path | None = None,
) -> RTCSessionDescription:
    """POST the offer; ``tls_ca`` is a PEM file to trust for an https:// receiver (otherwise the
    system's certificate authorities are used; certificates are always verified)."""
    url = receiver_url.rstrip("/") + "/offer"
    headers = {"Authorization": f"Bearer {token}"}
    # "textcall": this peer runs textcall, so its consent checks are sparse (protocol.rtc.sparse_consent)
    # and the receiver may make its own as sparse; a browser's offer has no such field
    body = {"sdp": offer.sdp, "type": offer.type, "textcall": {"consent_interval": SPARSE_CONSENT_INTERVAL}}
    ssl_context: ssl.SSLContext | bool = True
    if tls_ca is not None:
        try:
            ssl_context = ssl.create_default_context(cafile=str(tls_ca))
        except (OSError, ssl.SSLError) as exc:
            raise SignalingError(f"cannot use {tls_ca} as a trusted certificate: {exc}", 400) from exc
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http:
            async with http.post(url, json=body, headers=headers, ssl=ssl_context) as response:
                text = await response.text()
                if response.status != 200:
                    reason = text.strip() or response.reason or "no reason given"
                    raise SignalingError(
                        f"receiver answered {response.status}: {reason}", response.status
                    )
                try:
                    answer = await response.json(content_type=None)
                    return RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise SignalingError(f"receiver sent a malformed answer: {exc}", 502) from exc
    except aiohttp.ClientConnectorCertificateError as exc:  # retrying will not fix a certificate
        raise SignalingError(
            f"the certificate of {url} is not trusted ({exc.certificate_error}); "
            "pass --tls-ca with the receiver's certificate or its CA", 495
        ) from exc
    except aiohttp.ClientError as exc:
        raise SignalingError(f"cannot reach receiver at {url}: {exc}") from exc
    except TimeoutError as exc:
        raise SignalingError(f"receiver at {url} did not answer within {timeout:.0f} s") from exc
