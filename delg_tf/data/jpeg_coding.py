"""Which entropy coding a JPEG uses, read from its frame marker, to explain a decode failure.

An arithmetic-coded JPEG (frame markers SOF9-SOF11, SOF13-SOF15 instead of the usual Huffman
SOF0-SOF3) is rare. libjpeg-turbo decodes it by default and so does the Pillow used here (tested
with a file written by `cjpeg -arithmetic`), as does `tf.io.decode_jpeg`; a Pillow built against
a libjpeg without arithmetic decoding rejects it as if it were corrupt. When Pillow fails on
such a file, the error says what the file is and how to re-encode it.
"""

from __future__ import annotations

ARITHMETIC_FRAMES = {0xC9: "SOF9", 0xCA: "SOF10", 0xCB: "SOF11", 0xCD: "SOF13", 0xCE: "SOF14",
                     0xCF: "SOF15"}  # fmt: skip
_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7}
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # TEM, RST0-7, SOI: no length field
HEADER_BYTES = 1 << 16  # the frame marker comes before the first scan, in the header


def arithmetic_frame(data: bytes) -> str | None:
    """The arithmetic-coding frame marker of a JPEG ("SOF9", ...), or None (Huffman, not a JPEG,
    or no frame marker in `data`).

    Args:
      data: the file's first bytes (`HEADER_BYTES` is enough for any real header).
    """
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in ARITHMETIC_FRAMES:
            return ARITHMETIC_FRAMES[marker]
        if marker in _HUFFMAN_FRAMES or marker in (0xDA, 0xD9):  # a frame, scan or end first
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def arithmetic_hint(data: bytes) -> str:
    """ "" or, for an arithmetic-coded JPEG, what to add to the message of a failed decode."""
    frame = arithmetic_frame(data)
    if frame is None:
        return ""
    return (
        f"; it is an arithmetic-coded JPEG ({frame}), which this Pillow's libjpeg may not "
        "decode: if the file is intact, re-encode it with Huffman coding "
        "(jpegtran -copy all in.jpg > out.jpg)"
    )
