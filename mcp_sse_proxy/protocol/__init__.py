"""Pure protocol logic: no I/O, no anyio, no httpx2."""
