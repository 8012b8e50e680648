"""One module per Lambda function's share of the API: start (start_solve), read and system (status),
cancel (cancel). Each exposes `router(...)`, which builds a fresh Router."""
