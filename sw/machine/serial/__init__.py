"""The machine on a board, over the host link (``--backend serial:PORT[@BAUD]``)."""
