"""Run with `python3 -m unittest -q` from this directory."""

# The example must run with the standard library alone, so it uses unittest rather than pytest.
# ruff: noqa: PT009, PT027

from __future__ import annotations

import unittest

from calculator import add, divide, mean, subtract


class CalculatorTest(unittest.TestCase):
    def test_add(self) -> None:
        self.assertEqual(add(2, 3), 5)

    def test_subtract(self) -> None:
        self.assertEqual(subtract(2, 3), -1)

    def test_divide(self) -> None:
        self.assertEqual(divide(7, 2), 3.5)
        with self.assertRaises(ZeroDivisionError):
            divide(1, 0)

    def test_mean_of_whole_numbers(self) -> None:
        self.assertEqual(mean([2, 4, 6]), 4)

    def test_mean_keeps_the_fraction(self) -> None:
        self.assertEqual(mean([1, 2]), 1.5)
        self.assertAlmostEqual(mean([0.1, 0.2, 0.4]), 0.7 / 3)

    def test_mean_of_nothing_is_an_error(self) -> None:
        with self.assertRaises(ValueError):
            mean([])


if __name__ == "__main__":
    unittest.main()
