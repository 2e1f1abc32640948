"""Reading a bit stream most significant bit first, with the codes HEVC and AV1 headers use."""

from __future__ import annotations


class BitReader:
    """u(n) (AV1 calls it f(n)), HEVC's Exp-Golomb ue() and se() (H.265 9.2), AV1's su(n) and ns(n) (AV1 4.10);
    reading past the end is a ValueError naming `what`."""

    def __init__(self, data: bytes, what: str = "header"):
        self.data, self.pos, self.what = data, 0, what

    def u(self, n: int) -> int:
        value = 0
        for _ in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError(f"truncated {self.what}")
            value = (value << 1) | ((self.data[byte] >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    f = u

    def ue(self) -> int:
        zeros = 0
        while not self.u(1):
            zeros += 1
            if zeros > 31:
                raise ValueError(f"malformed Exp-Golomb code in the {self.what}")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)

    def su(self, n: int) -> int:
        value = self.u(n)
        return value - (1 << n) if value & (1 << (n - 1)) else value

    def more_data(self) -> bool:
        """H.264 / H.265's more_rbsp_data(): whether anything but the trailing stop bit and zeros is left."""
        last = len(self.data) - 1
        while last >= 0 and self.data[last] == 0:
            last -= 1
        if last < 0:
            return False
        stop = last * 8 + 7 - (self.data[last] & -self.data[last]).bit_length() + 1  # the final 1 bit's position
        return self.pos < stop

    def ns(self, n: int) -> int:
        w = n.bit_length()
        m = (1 << w) - n
        v = self.u(w - 1)
        return v if v < m else (v << 1) - m + self.u(1)
