"""Data access: row locks, conditional status moves, row-to-DTO mapping and read-only queries."""
