"""Services own their transactions and speak in DTOs."""
