"""A PPM text coder: caption and speech text in fewer bytes than DEFLATE (``Utterance.packed``).

DEFLATE codes a sentence as copies of earlier strings; on the short texts of a call (a batch of two
or three sentences, about 150 characters) most of it is literals at 4-5 bits each even with a
primed dictionary. PPM (prediction by partial matching; Cleary & Witten 1984, with Howard's "D"
escape estimate and exclusions as in Moffat's PPMC/PPMD) predicts each byte from the bytes before it
(up to :data:`ORDER` of them) and arithmetic-codes it: after a few hundred words of a call it spends
about 2.5-3 bits a character. Both sides build the same model, byte for byte, from the same preset
dictionary (``protocol/dictionaries/en-<n>.txt``) and then from every text of the connection in
order, sent packed or plain (:class:`~protocol.textpack.History` owns the model).

Everything is integer arithmetic on Python ints and dict insertion order, so the sender (pure Python,
no numpy) and the receiver decode the same. The coder is a Witten-Neal-Cleary arithmetic coder
with 32-bit registers; trailing zero bytes are dropped (the decoder reads missing bits as zeros).

Coding a message never changes the model (its updates are journalled and undone); both sides
:meth:`Model.learn` a text once it is certain, so a message the receiver refuses leaves the two
models alike. Decoding is untrusted input: :meth:`Model.decode` stops at a fixed output cap and at
the bits a well-formed message can have.
"""

from __future__ import annotations

ORDER = 4  # bytes of context; 4 measured best on the report script and held-out texts (docs/2026-12-06-every-byte.md)
END = 0x1E  # ASCII record separator closes each message: a control character, never in a valid text
_MAX_TOTAL = 1 << 13  # a context's counts are halved past this (keeps totals far below the coder's 2^30 range)

_BITS = 32
_TOP = (1 << _BITS) - 1
_HALF = 1 << (_BITS - 1)
_QUARTER = 1 << (_BITS - 2)
_SLACK = 64  # bits of a message the encoder may leave out (trailing zeros)


class DecodeError(ValueError):
    """Bytes that are not a message of this model (corrupt, truncated, or too long)."""


class _Encoder:
    def __init__(self) -> None:
        self.low, self.high, self.pending = 0, _TOP, 0
        self.bits: list[int] = []

    def _emit(self, bit: int) -> None:
        self.bits.append(bit)
        if self.pending:
            self.bits.extend([bit ^ 1] * self.pending)
            self.pending = 0

    def encode(self, cum: int, freq: int, total: int) -> None:
        span = self.high - self.low + 1
        self.high = self.low + span * (cum + freq) // total - 1
        self.low = self.low + span * cum // total
        while True:
            if self.high < _HALF:
                self._emit(0)
            elif self.low >= _HALF:
                self._emit(1)
                self.low -= _HALF
                self.high -= _HALF
            elif self.low >= _QUARTER and self.high < _HALF + _QUARTER:
                self.pending += 1
                self.low -= _QUARTER
                self.high -= _QUARTER
            else:
                break
            self.low = 2 * self.low
            self.high = 2 * self.high + 1

    def finish(self) -> bytes:
        self.pending += 1
        self._emit(0 if self.low < _QUARTER else 1)
        bits = self.bits + [0] * (-len(self.bits) % 8)
        out = bytes(int("".join(map(str, bits[i:i + 8])), 2) for i in range(0, len(bits), 8))
        # the decoder reads missing bits as zeros, so trailing zero bytes are dropped; but no more
        # than _SLACK bits of what it reads may be missing (its stop for garbage)
        keep = max(0, -(-(len(self.bits) - _SLACK) // 8))
        out = out.rstrip(b"\x00")
        return out + bytes(max(0, keep - len(out)))


class _Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0  # next bit to read
        self.low, self.high = 0, _TOP
        self.value = 0
        for _ in range(_BITS):
            self.value = 2 * self.value + self._bit()

    def _bit(self) -> int:
        index = self.position >> 3
        bit = (self.data[index] >> (7 - (self.position & 7))) & 1 if index < len(self.data) else 0
        self.position += 1
        return bit

    def target(self, total: int) -> int:
        span = self.high - self.low + 1
        return ((self.value - self.low + 1) * total - 1) // span

    def consume(self, cum: int, freq: int, total: int) -> None:
        span = self.high - self.low + 1
        self.high = self.low + span * (cum + freq) // total - 1
        self.low = self.low + span * cum // total
        while True:
            if self.high < _HALF:
                pass
            elif self.low >= _HALF:
                self.low -= _HALF
                self.high -= _HALF
                self.value -= _HALF
            elif self.low >= _QUARTER and self.high < _HALF + _QUARTER:
                self.low -= _QUARTER
                self.high -= _QUARTER
                self.value -= _QUARTER
            else:
                break
            self.low = 2 * self.low
            self.high = 2 * self.high + 1
            self.value = 2 * self.value + self._bit()


class Model:
    """An adaptive order-``order`` PPM model over bytes (PPMD escapes, exclusions, update exclusion).

    :meth:`encode` and :meth:`decode` code one message and learn from it; :meth:`learn` learns from
    text without coding it (the preset dictionary, or a message sent uncompressed)."""

    def __init__(self, order: int = ORDER) -> None:
        self.order = order
        # tables[k]: context (the k bytes before) -> {byte: count}, in first-seen order
        self.tables: list[dict[bytes, dict[int, int]]] = [{} for _ in range(order + 1)]
        self.context = b""
        self._journal: list[tuple] | None = None

    # -- learning ------------------------------------------------------------------------------
    def _update(self, symbol: int, found: int) -> None:
        """Count ``symbol`` in every context of order >= ``found`` (update exclusion), then move on."""
        context = self.context
        journal = self._journal
        for k in range(max(found, 0), min(self.order, len(context)) + 1):
            key = context[len(context) - k:]
            table = self.tables[k].get(key)
            if table is None:
                table = self.tables[k][key] = {}
                if journal is not None:
                    journal.append((k, key, None))
            elif journal is not None:
                journal.append((k, key, dict(table)))
            table[symbol] = table.get(symbol, 0) + 1
            if sum(table.values()) > _MAX_TOTAL:
                for s in list(table):
                    table[s] = (table[s] + 1) // 2
        self.context = (context + bytes((symbol,)))[-self.order:] if self.order else b""

    def prime(self, data: bytes) -> None:
        """Learn ``data`` as running text (the preset dictionary), with no end marker."""
        for symbol in data:
            self._update(symbol, self._found_order(symbol))

    def learn(self, message: bytes) -> None:
        """Learn one message and its end marker: the state is then what coding it would have left."""
        if END in message:
            raise ValueError("message contains the end marker 0x1E")
        self.prime(message + bytes((END,)))

    def _trial(self):
        """Journal every update from here on, to be undone by :meth:`_undo`."""
        self._journal = []
        return self.context

    def _found_order(self, symbol: int) -> int:
        context = self.context
        excluded: set[int] = set()
        for k in range(min(self.order, len(context)), -1, -1):
            table = self.tables[k].get(context[len(context) - k:])
            if table and symbol in table and symbol not in excluded:
                return k
            if table:
                excluded.update(table)
        return -1

    # -- coding --------------------------------------------------------------------------------
    def _contexts(self):
        context = self.context
        for k in range(min(self.order, len(context)), -1, -1):
            table = self.tables[k].get(context[len(context) - k:])
            if table:
                yield k, table

    def encode(self, message: bytes) -> bytes:
        """Code ``message`` (which must not contain :data:`END`). The model is left as it was:
        :meth:`learn` it once it is certain to be sent (both sides learn every text in the same order)."""
        if END in message:
            raise ValueError("message contains the end marker 0x1E")
        saved_context = self._trial()
        try:
            return self._encode(message)
        finally:
            self._undo(saved_context)

    def _encode(self, message: bytes) -> bytes:
        encoder = _Encoder()
        for symbol in message + bytes((END,)):
            excluded: set[int] = set()
            found = -1
            for k, table in self._contexts():
                items = [(s, c) for s, c in table.items() if s not in excluded]
                if not items:
                    continue
                total = 2 * sum(c for _, c in items)  # PPMD: a symbol 2c-1, the escape one per distinct symbol
                if symbol in table and symbol not in excluded:
                    cum = 0
                    for s, c in items:
                        if s == symbol:
                            break
                        cum += 2 * c - 1
                    encoder.encode(cum, 2 * table[symbol] - 1, total)
                    found = k
                    break
                encoder.encode(total - len(items), len(items), total)
                excluded.update(table)
            else:
                rest = [s for s in range(256) if s not in excluded]
                encoder.encode(rest.index(symbol), 1, len(rest))
            self._update(symbol, found)
        return encoder.finish()

    def decode(self, data: bytes, max_bytes: int) -> bytes:
        """The message in ``data``; raises :class:`DecodeError` when it is not a message or decodes
        to more than ``max_bytes``. Like :meth:`encode`, it leaves the model as it was."""
        saved_context = self._trial()
        try:
            return self._decode(data, max_bytes)
        finally:
            self._undo(saved_context)

    def _decode(self, data: bytes, max_bytes: int) -> bytes:
        decoder = _Decoder(data)
        out = bytearray()
        # a message's decoder reads its emitted bits plus _BITS - 1 (the encoder keeps enough bytes
        # that at most _SLACK of them are missing); past that it is garbage
        limit = 8 * len(data) + _BITS + _SLACK
        while True:
            excluded: set[int] = set()
            symbol, found = -1, -1
            for k, table in self._contexts():
                items = [(s, c) for s, c in table.items() if s not in excluded]
                if not items:
                    continue
                total = 2 * sum(c for _, c in items)
                target = decoder.target(total)
                if target >= total - len(items):
                    decoder.consume(total - len(items), len(items), total)
                    excluded.update(table)
                    continue
                cum = 0
                for s, c in items:
                    if target < cum + 2 * c - 1:
                        symbol, found = s, k
                        break
                    cum += 2 * c - 1
                decoder.consume(cum, 2 * table[symbol] - 1, total)
                break
            if symbol < 0:
                rest = [s for s in range(256) if s not in excluded]
                if not rest:  # escaped from every byte: only garbage does that
                    raise DecodeError("packed text is corrupt")
                index = decoder.target(len(rest))
                if not 0 <= index < len(rest):
                    raise DecodeError("packed text is corrupt")
                symbol = rest[index]
                decoder.consume(index, 1, len(rest))
            self._update(symbol, found)
            if symbol == END:
                return bytes(out)
            out.append(symbol)
            if len(out) > max_bytes:
                raise DecodeError(f"packed decodes to more than {max_bytes} bytes")
            if decoder.position > limit:
                raise DecodeError("packed text is truncated or corrupt (no end marker)")

    def _undo(self, context: bytes) -> None:
        for k, key, before in reversed(self._journal or []):
            if before is None:
                self.tables[k].pop(key, None)
            else:
                self.tables[k][key] = before
        self.context = context
        self._journal = None

    def copy(self) -> "Model":
        twin = Model(self.order)
        twin.tables = [{key: dict(table) for key, table in tables.items()} for tables in self.tables]
        twin.context = self.context
        return twin
