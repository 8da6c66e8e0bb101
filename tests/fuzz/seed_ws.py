#!/usr/bin/env python3
# seed_ws.py: writes the seed corpus of the ws fuzz target
# (tests/fuzz/corpus/ws/): what exec clients send berthd after the
# upgrade, framed by RFC 6455 (masked, as clients must), behind the flags
# byte fuzz_ws.c reads (0x01 berth.exec.v1 negotiated, bits 1-3 the read
# size 4^n, 0x10 a header value line first).
#
#   python3 tests/fuzz/seed_ws.py tests/fuzz/corpus/ws
#
# Writes fixed bytes (the masks are fixed too): the same files every run.
import os
import struct
import sys

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
CHANNELS, HEADER = 0x01, 0x10


def chunk(n):
    """The flags bits for reads of 4**n bytes."""
    return n << 1


def frame(op, payload, fin=True, mask=b"\x37\xfa\x21\x3d", masked=True):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        head = bytes([b0, (0x80 if masked else 0) | n])
    elif n < 65536:
        head = bytes([b0, (0x80 if masked else 0) | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, (0x80 if masked else 0) | 127]) + struct.pack(">Q", n)
    if not masked:
        return head + payload
    return head + mask + bytes(c ^ mask[i % 4] for i, c in enumerate(payload))


def close(code=1000, reason=b""):
    return frame(CLOSE, struct.pack(">H", code) + reason)


SEEDS = {
    # The Azure CLI's way: no subprotocol, the password, input, a close.
    "cli-session": bytes([chunk(7)]) + frame(TEXT, b"s3cret-pass") +
    frame(BINARY, b"ls -l /\n") + frame(TEXT, b"exit\n") + close(),
    # berth.exec.v1: input, a resize, end of input.
    "channels-session": bytes([CHANNELS | chunk(7)]) + frame(TEXT, b"s3cret-pass") +
    frame(BINARY, b"\x00echo hi\n") + frame(BINARY, b"\x0224 80") +
    frame(BINARY, b"\x01") + close(1000, b"bye"),
    # Fragments with a ping between them, read a byte at a time.
    "fragmented": bytes([CHANNELS | chunk(0)]) + frame(TEXT, b"s3c", fin=False) +
    frame(PING, b"are you there") + frame(CONT, b"ret", fin=False) +
    frame(CONT, b"-pass") + frame(BINARY, b"\x00cat", fin=False) +
    frame(CONT, b" /etc/hostname\n", mask=b"\x00\x00\x00\x00") + close(),
    # Control frames alone: ping, an unsolicited pong, a close with a reason.
    "control": bytes([chunk(2)]) + frame(PING, b"") + frame(PONG, b"pong") +
    close(1001, b"going away"),
    # Sizes: odd spellings, too large, negative, cut short, unknown channel.
    "resize-edges": bytes([CHANNELS | chunk(3)]) + frame(TEXT, b"pw") +
    frame(BINARY, b"\x02 +0999 1000") + frame(BINARY, b"\x021001 5") +
    frame(BINARY, b"\x02-1 -1") + frame(BINARY, b"\x0224") +
    frame(BINARY, b"\x02" + b"9" * 30 + b" 1") + frame(BINARY, b"\x03junk") +
    frame(BINARY, b"\x00") + frame(BINARY, b""),
    # A 16-bit and a 64-bit length: a 300-byte password (sent as ""), then
    # a message over the 64 KiB limit (closed 1009), cut short.
    "lengths": bytes([chunk(5)]) + frame(BINARY, b"p" * 300) +
    frame(BINARY, b"x" * 70000)[:2048],
    # A password that is not UTF-8, in a binary frame; an invalid text frame.
    "password-binary": bytes([chunk(7)]) + frame(BINARY, b"\xff\xfe\x00pw") +
    frame(TEXT, b"\xc3\x28"),
    # A client frame without a mask: a protocol error.
    "unmasked": bytes([chunk(7)]) + frame(TEXT, b"s3cret", masked=False),
    # Handshake header values ahead of the frames: RFC 6455's sample key,
    # the tokens among others, a key that is not 16 bytes.
    "header-key": bytes([HEADER | chunk(7)]) + b"dGhlIHNhbXBsZSBub25jZQ==\n" +
    frame(TEXT, b"pw"),
    "header-tokens": bytes([HEADER | CHANNELS | chunk(7)]) +
    b"keep-alive, Upgrade , berth.exec.v1,WebSocket\n" + frame(TEXT, b"pw"),
    "header-badkey": bytes([HEADER | chunk(1)]) + b"dGhlIHNhbXBsZSBub25jZQ=x\n" + close(),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/fuzz/corpus/ws"
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
