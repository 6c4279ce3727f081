"""Splitting CPU accesses of any length and alignment into port-sized words."""

__all__ = ["split_words"]


def split_words(addr, size, word_bytes):
    """Yield ``(word_addr, offset, length)`` for each port word an access touches.

    ``word_addr`` is aligned to ``word_bytes``; the access covers bytes ``offset`` to
    ``offset + length - 1`` of that word.

    >>> list(split_words(0x1006, 5, 8))
    [(4096, 6, 2), (4104, 0, 3)]
    """
    end = addr + size
    while addr < end:
        word_addr = addr - addr % word_bytes
        length = min(end, word_addr + word_bytes) - addr
        yield word_addr, addr - word_addr, length
        addr += length
